package tunnel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Protocol is the version of the frame protocol this package speaks. Hello
// and Welcome carry it; a peer refuses a version it does not know.
const Protocol = 1

// Size limits.
const (
	// DefaultMaxFrame is the largest WebSocket message either side accepts,
	// 2 MiB. A bigger message closes the connection with status 1009.
	DefaultMaxFrame = 2 << 20
	// MinMaxFrame is the smallest frame limit that can be configured: room
	// for a chunk and its header.
	MinMaxFrame = 64 << 10
	// headerRoom is what a frame's length prefix and JSON header may take
	// on top of its body; bodies are limited to the frame limit minus it.
	headerRoom = 32 << 10
	// DefaultChunk is the body bytes a response frame carries at most, so
	// one large response cannot hold the connection's write side for long.
	DefaultChunk = 256 << 10
	// DefaultMaxResponse caps one response's body, 32 MiB: both ends buffer
	// it whole.
	DefaultMaxResponse = 32 << 20
)

// FrameType says what a frame is.
type FrameType uint8

// The frame types. Direction is gateway (G) to manager (M) or back.
const (
	// FrameHello (G→M) is the first frame: who is connecting, at what epoch.
	FrameHello FrameType = 1 + iota
	// FrameWelcome (M→G) admits the connection. A refusal is a WebSocket
	// close with one of the Close* codes instead.
	FrameWelcome
	// FrameRequest (M→G) is one HTTP request with its whole body.
	FrameRequest
	// FrameResponse (G→M) is the status, headers and first body chunk of
	// the answer to request ID; More says whether FrameBody frames follow.
	FrameResponse
	// FrameBody (G→M) is a further body chunk of request ID's answer.
	FrameBody
	// FrameCancel (M→G): the caller of request ID gave up; stop working on it.
	FrameCancel
	// FramePing (G→M) is the heartbeat; FramePong (M→G) answers it. Any
	// frame proves the peer alive; these flow when nothing else does.
	FramePing
	FramePong
)

var frameNames = [...]string{"", "hello", "welcome", "request", "response", "body", "cancel", "ping", "pong"}

func (t FrameType) String() string {
	if int(t) < len(frameNames) && t != 0 {
		return frameNames[t]
	}
	return fmt.Sprintf("frame(%d)", uint8(t))
}

// Hello introduces a gateway: the active of Cluster, node Node, in lease
// term Epoch.
type Hello struct {
	Protocol int    `json:"protocol"`
	Cluster  string `json:"cluster"`
	Node     string `json:"node"`
	Epoch    int64  `json:"epoch"`
	Version  string `json:"version,omitempty"`
}

// Welcome admits a gateway and tells it how to behave.
type Welcome struct {
	Protocol int `json:"protocol"`
	// Manager is the node ID of the manager that admitted the connection.
	Manager string `json:"manager"`
	// HeartbeatMillis is how often the gateway must send FramePing.
	HeartbeatMillis int64 `json:"heartbeatMillis"`
	// MaxFrame is the manager's frame limit; the gateway sends nothing larger.
	MaxFrame int `json:"maxFrame"`
}

// Heartbeat returns the heartbeat period, at least 10 ms.
func (w Welcome) Heartbeat() time.Duration {
	return max(time.Duration(w.HeartbeatMillis)*time.Millisecond, 10*time.Millisecond)
}

// Caller is who the manager says sent a request: one of the manager's users
// and its role there. The gateway decides what that caller may do.
type Caller struct {
	User string `json:"user"`
	Role string `json:"role"`
}

// RequestHead is the non-body part of a forwarded HTTP request.
type RequestHead struct {
	Method string `json:"method"`
	// Path is the gateway path, /v1/…, already unescaped as in url.URL.Path.
	Path string `json:"path"`
	// RawPath is url.URL.RawPath when the path had escapes that matter.
	RawPath  string      `json:"rawPath,omitempty"`
	RawQuery string      `json:"rawQuery,omitempty"`
	Header   http.Header `json:"header,omitempty"`
	Caller   Caller      `json:"caller"`
	// TimeoutMillis is how long the manager waits for the answer; the
	// gateway cancels the request's context then.
	TimeoutMillis int64 `json:"timeoutMillis"`
}

// ResponseHead is the non-body part of a forwarded HTTP response.
type ResponseHead struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
}

// Frame is one WebSocket message of the tunnel. Exactly the field that
// matches Type is set (none for Body, Cancel, Ping, Pong).
type Frame struct {
	Type     FrameType     `json:"type"`
	ID       uint64        `json:"id,omitempty"`
	Hello    *Hello        `json:"hello,omitempty"`
	Welcome  *Welcome      `json:"welcome,omitempty"`
	Request  *RequestHead  `json:"request,omitempty"`
	Response *ResponseHead `json:"response,omitempty"`
	// More is set on response and body frames that are not the last one.
	More bool `json:"more,omitempty"`
	// Body travels after the JSON header, raw: never base64.
	Body []byte `json:"-"`
}

// Encode lays f out as one binary WebSocket message: a 4-byte big-endian
// header length, the JSON header, then the body. It returns a
// *FrameTooLargeError (errors.Is ErrFrameTooLarge) if the message would
// exceed limit bytes; nothing is sent then and the connection is unharmed.
func Encode(f *Frame, limit int) ([]byte, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	head, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode %s frame: %w", f.Type, err)
	}
	n := 4 + len(head) + len(f.Body)
	if n > limit {
		return nil, &FrameTooLargeError{Size: n, Limit: limit}
	}
	buf := make([]byte, 4, n)
	binary.BigEndian.PutUint32(buf, uint32(len(head)))
	buf = append(buf, head...)
	return append(buf, f.Body...), nil
}

// Decode parses one message made by Encode. Unknown JSON fields are
// ignored, so a newer peer may add some; a frame whose type-specific part
// is missing is an error (ErrBadFrame). The body aliases msg.
func Decode(msg []byte) (*Frame, error) {
	if len(msg) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the length prefix", ErrBadFrame, len(msg))
	}
	hl := binary.BigEndian.Uint32(msg)
	if uint64(hl) > uint64(len(msg)-4) {
		return nil, fmt.Errorf("%w: header length %d exceeds the %d bytes that follow", ErrBadFrame, hl, len(msg)-4)
	}
	var f Frame
	if err := json.Unmarshal(msg[4:4+hl], &f); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadFrame, err)
	}
	if body := msg[4+hl:]; len(body) > 0 {
		f.Body = body
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return &f, nil
}

// check enforces that each type carries its part and only bodies where
// bodies belong.
func (f *Frame) check() error {
	var ok bool
	switch f.Type {
	case FrameHello:
		ok = f.Hello != nil
	case FrameWelcome:
		ok = f.Welcome != nil
	case FrameRequest:
		ok = f.Request != nil && f.ID != 0
	case FrameResponse:
		ok = f.Response != nil && f.ID != 0
	case FrameBody, FrameCancel:
		ok = f.ID != 0
	case FramePing, FramePong:
		ok = true
	default:
		return fmt.Errorf("%w: unknown type %d", ErrBadFrame, f.Type)
	}
	if !ok {
		return fmt.Errorf("%w: %s frame without its ID or header", ErrBadFrame, f.Type)
	}
	if len(f.Body) > 0 && f.Type != FrameRequest && f.Type != FrameResponse && f.Type != FrameBody {
		return fmt.Errorf("%w: %s frame with a body", ErrBadFrame, f.Type)
	}
	return nil
}

// forwardedRequestHeaders are the request headers the manager passes on.
// Authorization never is: the gateway trusts the tunnel, not the token.
var forwardedRequestHeaders = []string{"Accept", "Content-Type", "X-Request-Id", "Last-Event-ID"}

// forwardedResponseHeaders are the response headers the manager passes back.
var forwardedResponseHeaders = []string{"Content-Type", "Location", "Retry-After", "X-Request-Id", "Link"}

// FilterRequestHeader keeps only the headers a forwarded request carries.
func FilterRequestHeader(h http.Header) http.Header { return filter(h, forwardedRequestHeaders) }

// FilterResponseHeader keeps only the headers a forwarded response carries.
func FilterResponseHeader(h http.Header) http.Header { return filter(h, forwardedResponseHeaders) }

func filter(h http.Header, keep []string) http.Header {
	out := http.Header{}
	for _, k := range keep {
		if v := h.Values(k); len(v) > 0 {
			out[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
		}
	}
	return out
}
