package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/http"
	"reflect"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	tests := []struct {
		name string
		f    Frame
	}{
		{"hello", Frame{Type: FrameHello, Hello: &Hello{Protocol: 1, Cluster: "eu-1", Node: "gw-1", Epoch: 7, Version: "v1"}}},
		{"welcome", Frame{Type: FrameWelcome, Welcome: &Welcome{Protocol: 1, Manager: "m-1", HeartbeatMillis: 5000, MaxFrame: 1 << 20}}},
		{"request with body", Frame{Type: FrameRequest, ID: 3, Request: &RequestHead{Method: "POST", Path: "/v1/services/a/run",
			RawQuery: "x=1", Header: http.Header{"Content-Type": {"application/json"}}, Caller: Caller{User: "alice", Role: "operator"},
			TimeoutMillis: 60000}, Body: []byte(`{"async":true}`)}},
		{"response, more to come", Frame{Type: FrameResponse, ID: 3, Response: &ResponseHead{Status: 201}, More: true, Body: []byte{0, 1, 2, 0xff}}},
		{"last body chunk", Frame{Type: FrameBody, ID: 3, Body: []byte("tail")}},
		{"cancel", Frame{Type: FrameCancel, ID: 9}},
		{"ping", Frame{Type: FramePing}},
		{"pong", Frame{Type: FramePong}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := Encode(&tt.f, DefaultMaxFrame)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(msg)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.f) {
				t.Errorf("round trip:\ngot  %+v\nwant %+v", *got, tt.f)
			}
		})
	}
}

func TestEncodeRefusesOversizedFrame(t *testing.T) {
	f := &Frame{Type: FrameBody, ID: 1, Body: make([]byte, 1000)}
	_, err := Encode(f, 900)
	var fe *FrameTooLargeError
	if !errors.As(err, &fe) || !errors.Is(err, ErrFrameTooLarge) || fe.Limit != 900 || fe.Size <= 1000 {
		t.Errorf("Encode over the limit = %v, want a FrameTooLargeError over 1000 bytes with limit 900", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	withHeader := func(head string, body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(head)))
		return append(append(b, head...), body...)
	}
	tests := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"short prefix", []byte{0, 0}},
		{"header length past the end", binary.BigEndian.AppendUint32(nil, 100)},
		{"bad JSON", withHeader("{", "")},
		{"unknown type", withHeader(`{"type":99}`, "")},
		{"hello without hello", withHeader(`{"type":1}`, "")},
		{"request without ID", withHeader(`{"type":3,"request":{"method":"GET","path":"/v1/x"}}`, "")},
		{"body on a ping", withHeader(`{"type":7}`, "x")},
		{"cancel without ID", withHeader(`{"type":6}`, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := Decode(tt.msg); !errors.Is(err, ErrBadFrame) {
				t.Errorf("Decode = %+v, %v; want ErrBadFrame", f, err)
			}
		})
	}
}

func TestFilterHeaders(t *testing.T) {
	in := http.Header{"Authorization": {"Bearer agt_x"}, "Content-Type": {"application/json"}, "Cookie": {"a=b"},
		"X-Request-Id": {"r1"}, "Accept": {"application/json"}}
	got := FilterRequestHeader(in)
	want := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r1"}, "Accept": {"application/json"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FilterRequestHeader = %v, want %v (never the token)", got, want)
	}
	out := FilterResponseHeader(http.Header{"Content-Type": {"application/problem+json"}, "Set-Cookie": {"x"}, "Retry-After": {"1"}})
	if len(out) != 2 || out.Get("Set-Cookie") != "" {
		t.Errorf("FilterResponseHeader = %v", out)
	}
}

func FuzzDecode(f *testing.F) {
	for _, fr := range []Frame{
		{Type: FrameHello, Hello: &Hello{Protocol: 1, Cluster: "a", Node: "n", Epoch: 1}},
		{Type: FrameRequest, ID: 1, Request: &RequestHead{Method: "GET", Path: "/v1/x"}, Body: []byte("b")},
		{Type: FrameResponse, ID: 2, Response: &ResponseHead{Status: 200}, More: true},
		{Type: FramePing},
	} {
		msg, err := Encode(&fr, DefaultMaxFrame)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg)
	}
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, msg []byte) {
		fr, err := Decode(msg)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("Decode error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		again, err := Encode(fr, len(msg)+DefaultMaxFrame)
		if err != nil {
			t.Fatalf("re-encode a decoded frame: %v", err)
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("decode the re-encoded frame: %v", err)
		}
		if back.Type != fr.Type || back.ID != fr.ID || back.More != fr.More || !bytes.Equal(back.Body, fr.Body) {
			t.Fatalf("re-encoding changed the frame: %+v → %+v", fr, back)
		}
	})
}
