package ecsagent_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/ecsagent"
	"github.com/autogate/autogate/internal/ecsagent/ecsagenttest"
)

func client(t *testing.T, replies ...ecsagenttest.Reply) (*ecsagenttest.Agent, *ecsagent.Client) {
	t.Helper()
	a, uri := ecsagenttest.Start(t, replies...)
	c, ok, err := ecsagent.FromEnv(func(k string) string {
		if k == ecsagent.URIEnv {
			return uri
		}
		return ""
	})
	if err != nil || !ok {
		t.Fatalf("FromEnv: %v %v", ok, err)
	}
	return a, c
}

func TestSetProtectionBodies(t *testing.T) {
	a, c := client(t)
	ctx := t.Context()
	if err := c.SetProtection(ctx, true, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.SetProtection(ctx, true, 90*time.Second); err != nil { // rounded up to 2 minutes
		t.Fatal(err)
	}
	if err := c.SetProtection(ctx, false, time.Hour); err != nil {
		t.Fatal(err)
	}
	want := []ecsagenttest.Call{{Enabled: true, Minutes: 10, Fields: 2}, {Enabled: true, Minutes: 2, Fields: 2}, {Enabled: false, Fields: 1}}
	got := a.Calls()
	if len(got) != len(want) {
		t.Fatalf("calls %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSetProtectionErrors(t *testing.T) {
	tests := []struct {
		name  string
		reply ecsagenttest.Reply
		want  string
	}{
		{"access denied", ecsagenttest.AccessDenied, "AccessDeniedException"},
		{"throttled", ecsagenttest.Throttled, "ThrottlingException"},
		{"failure", ecsagenttest.NotValid, "TASK_NOT_VALID"},
		{"error with 200", ecsagenttest.Reply{Status: 200, Body: `{"error":{"Code":"RequestCanceled","Message":"Timed out calling Amazon ECS Task Protection API"}}`}, "RequestCanceled"},
		{"server error", ecsagenttest.Reply{Status: 500, Body: "agent broken"}, "HTTP 500: agent broken"},
		{"not json", ecsagenttest.Reply{Status: 200, Body: "<html>"}, "unexpected answer"},
		{"other state", ecsagenttest.Reply{Status: 200, Body: `{"protection":{"ProtectionEnabled":false}}`}, "reports false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := client(t, tt.reply)
			err := c.SetProtection(t.Context(), true, time.Minute)
			if !errors.Is(err, ecsagent.ErrProtection) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrProtection mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSetProtectionRejectsBadExpiry(t *testing.T) {
	a, c := client(t)
	for _, d := range []time.Duration{0, -time.Minute, ecsagent.MaxExpiry + time.Minute} {
		if err := c.SetProtection(t.Context(), true, d); !errors.Is(err, ecsagent.ErrProtection) {
			t.Errorf("expiry %v: err = %v, want ErrProtection", d, err)
		}
	}
	if calls := a.Calls(); len(calls) != 0 {
		t.Errorf("the agent was called with a bad expiry: %+v", calls)
	}
}

func TestSetProtectionUnreachableAndCanceled(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	c, err := ecsagent.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.SetProtection(ctx, true, time.Minute); !errors.Is(err, ecsagent.ErrProtection) {
		t.Errorf("hung agent: err = %v, want ErrProtection", err)
	}
	close(stop)
	srv.Close()
	if err := c.SetProtection(t.Context(), false, 0); !errors.Is(err, ecsagent.ErrProtection) || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("closed agent: err = %v, want ErrProtection (unreachable)", err)
	}
}

func TestFromEnv(t *testing.T) {
	if c, ok, err := ecsagent.FromEnv(func(string) string { return "" }); c != nil || ok || err != nil {
		t.Errorf("outside ECS: %v %v %v, want no client and no error", c, ok, err)
	}
	if _, ok, err := ecsagent.FromEnv(func(string) string { return "not a url" }); ok || !errors.Is(err, ecsagent.ErrProtection) {
		t.Errorf("bad URI: ok %v err %v, want ErrProtection", ok, err)
	}
}
