package ecsagent_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/ecsagent"
)

// agent is a fake ECS agent: it records each PUT body and answers with the
// next canned reply (status, body); past the list it reports the state asked.
type agent struct {
	mu      sync.Mutex
	bodies  []map[string]any
	replies []reply
}

type reply struct {
	status int
	body   string
}

func (a *agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut || r.URL.Path != "/v3/abc/task-protection/v1/state" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.bodies = append(a.bodies, b)
	var rep reply
	if len(a.replies) > 0 {
		rep, a.replies = a.replies[0], a.replies[1:]
	}
	a.mu.Unlock()
	if rep.status == 0 {
		rep = reply{200, `{"protection":{"ExpirationDate":null,"ProtectionEnabled":` + jsonBool(b["ProtectionEnabled"]) + `,"TaskArn":"arn:aws:ecs:us-east-1:111111111111:task/c/abc"}}`}
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func jsonBool(v any) string {
	if v == true {
		return "true"
	}
	return "false"
}

func newAgent(t *testing.T, replies ...reply) (*agent, *ecsagent.Client) {
	t.Helper()
	a := &agent{replies: replies}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	c, ok, err := ecsagent.FromEnv(func(k string) string {
		if k == ecsagent.URIEnv {
			return srv.URL + "/v3/abc"
		}
		return ""
	})
	if err != nil || !ok {
		t.Fatalf("FromEnv: %v %v", ok, err)
	}
	return a, c
}

func TestSetProtectionBodies(t *testing.T) {
	a, c := newAgent(t)
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
	want := []map[string]any{
		{"ProtectionEnabled": true, "ExpiresInMinutes": 10.0},
		{"ProtectionEnabled": true, "ExpiresInMinutes": 2.0},
		{"ProtectionEnabled": false},
	}
	if len(a.bodies) != len(want) {
		t.Fatalf("bodies %v, want %v", a.bodies, want)
	}
	for i := range want {
		if len(a.bodies[i]) != len(want[i]) {
			t.Errorf("body %d = %v, want %v", i, a.bodies[i], want[i])
		}
		for k, v := range want[i] {
			if a.bodies[i][k] != v {
				t.Errorf("body %d = %v, want %v", i, a.bodies[i], want[i])
			}
		}
	}
}

func TestSetProtectionErrors(t *testing.T) {
	tests := []struct {
		name  string
		reply reply
		want  string
	}{
		{"access denied", reply{400, `{"requestID":"r1","error":{"Arn":"arn:aws:ecs:us-east-1:1:task/c/abc","Code":"AccessDeniedException","Message":"not authorized to perform: ecs:UpdateTaskProtection"}}`}, "AccessDeniedException"},
		{"throttled", reply{200, `{"error":{"Code":"ThrottlingException","Message":"Rate exceeded"}}`}, "ThrottlingException"},
		{"failure", reply{200, `{"failure":{"Arn":"arn:aws:ecs:us-east-1:1:task/c/abc","Detail":null,"Reason":"TASK_NOT_VALID"}}`}, "TASK_NOT_VALID"},
		{"server error", reply{500, "agent broken"}, "HTTP 500: agent broken"},
		{"not json", reply{200, "<html>"}, "unexpected answer"},
		{"other state", reply{200, `{"protection":{"ProtectionEnabled":false}}`}, "reports false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := newAgent(t, tt.reply)
			err := c.SetProtection(t.Context(), true, time.Minute)
			if !errors.Is(err, ecsagent.ErrProtection) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrProtection mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSetProtectionRejectsBadExpiry(t *testing.T) {
	a, c := newAgent(t)
	for _, d := range []time.Duration{0, -time.Minute, ecsagent.MaxExpiry + time.Minute} {
		if err := c.SetProtection(t.Context(), true, d); !errors.Is(err, ecsagent.ErrProtection) {
			t.Errorf("expiry %v: err = %v, want ErrProtection", d, err)
		}
	}
	if len(a.bodies) != 0 {
		t.Errorf("the agent was called with a bad expiry: %v", a.bodies)
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
