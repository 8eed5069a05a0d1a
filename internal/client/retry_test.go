package client

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/wire"
)

// script answers each request with the next status of its list (the last
// repeats); -1 drops the connection without an answer.
type script struct {
	mu       sync.Mutex
	statuses []int
	calls    atomic.Int64
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	s.mu.Lock()
	st := s.statuses[0]
	if len(s.statuses) > 1 {
		s.statuses = s.statuses[1:]
	}
	s.mu.Unlock()
	switch st {
	case -1:
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	case 200:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"x1","status":"queued"}`))
	case 429:
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"detail":"backlog full"}`, st)
	default:
		http.Error(w, `{"detail":"standby"}`, st)
	}
}

func TestRetry(t *testing.T) {
	fast := Retry{Busy: 200 * time.Millisecond, Failover: 200 * time.Millisecond, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	tests := []struct {
		name     string
		statuses []int
		call     func(c *Client) error
		wantErr  int // status of the final error; 0: success
		calls    int64
		retried  []int // statuses announced to Notify
	}{
		{"429 then success, any call", []int{429, 429, 200}, func(c *Client) error { _, err := c.Run(t.Context(), "s", wire.RunRequest{}); return err }, 0, 3, []int{429, 429}},
		{"503 on a run without key is not repeated", []int{503, 200}, func(c *Client) error { _, err := c.Run(t.Context(), "s", wire.RunRequest{}); return err }, 503, 1, nil},
		{"503 on a run with a key is retried", []int{503, 200}, func(c *Client) error {
			_, err := c.Run(t.Context(), "s", wire.RunRequest{RequestKey: "k"})
			return err
		}, 0, 2, []int{503}},
		{"GET across a dropped connection and a standby", []int{-1, 503, 200}, func(c *Client) error { _, err := c.Execution(t.Context(), "x1"); return err }, 0, 3, []int{0, 503}},
		{"GET across a load balancer's dead (502) and hung (504) target", []int{502, 504, 200}, func(c *Client) error { _, err := c.Execution(t.Context(), "x1"); return err }, 0, 3, []int{502, 504}},
		{"502 on a run without key is not repeated", []int{502, 200}, func(c *Client) error { _, err := c.Run(t.Context(), "s", wire.RunRequest{}); return err }, 502, 1, nil},
		{"dropped connection on a POST without key is not repeated", []int{-1, 200}, func(c *Client) error { _, err := c.Run(t.Context(), "s", wire.RunRequest{}); return err }, -1, 1, nil},
		{"other errors are not retried", []int{409, 200}, func(c *Client) error { _, err := c.Execution(t.Context(), "x1"); return err }, 409, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &script{statuses: tt.statuses}
			srv := httptest.NewServer(sc)
			defer srv.Close()
			c, err := New(srv.URL, "tok", TLS{})
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			r := fast
			r.Notify = func(e RetryEvent) {
				got = append(got, e.Status)
				if !strings.Contains(e.String(), "retrying in") {
					t.Errorf("retry message %q", e.String())
				}
			}
			err = tt.call(c.WithRetry(r))
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Errorf("call failed: %v", err)
			case tt.wantErr > 0 && StatusOf(err) != tt.wantErr:
				t.Errorf("call = %v, want status %d", err, tt.wantErr)
			case tt.wantErr < 0 && (err == nil || StatusOf(err) != 0):
				t.Errorf("call = %v, want a connection error", err)
			}
			if n := sc.calls.Load(); n != tt.calls {
				t.Errorf("%d requests reached the server, want %d", n, tt.calls)
			}
			if len(got) != len(tt.retried) || !equal(got, tt.retried) {
				t.Errorf("retries announced %v, want %v", got, tt.retried)
			}
		})
	}
}

func equal(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRetryBounded: a server that only ever answers 503 (or refuses
// connections) makes an idempotent call give up after the failover budget,
// and one that only answers 429 after the busy budget.
func TestRetryBounded(t *testing.T) {
	budget := 50 * time.Millisecond
	r := Retry{Busy: budget, Failover: budget, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	for _, st := range []int{503, 429} {
		sc := &script{statuses: []int{st}}
		srv := httptest.NewServer(sc)
		c, _ := New(srv.URL, "", TLS{})
		var waited time.Duration
		rr := r
		rr.Notify = func(e RetryEvent) { waited += e.Wait }
		_, err := c.WithRetry(rr).Execution(t.Context(), "x1")
		srv.Close()
		if StatusOf(err) != st || sc.calls.Load() < 3 {
			t.Errorf("always %d: %v after %d requests, want %d after several", st, err, sc.calls.Load(), st)
		}
		if waited > budget {
			t.Errorf("always %d: waited %v in all, want at most the budget %v", st, waited, budget)
		}
	}
	// Connection refused: nothing listens on a closed listener's port.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c, _ := New("http://"+addr, "", TLS{})
	var n int
	r.Notify = func(RetryEvent) { n++ }
	if _, err := c.WithRetry(r).Execution(t.Context(), "x1"); err == nil || StatusOf(err) != 0 || n < 2 {
		t.Errorf("refused: %v after %d retries, want a connection error after several", err, n)
	}
}
