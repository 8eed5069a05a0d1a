package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestLogsFollowReconnects: `logs -f` prints each stream as it comes,
// resumes with Last-Event-ID after the connection drops mid-run (nothing
// printed twice, nothing skipped), and exits with the service's exit code.
func TestLogsFollowReconnects(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/executions/X1/output" || r.Header.Get("Authorization") != "Bearer agt_x" {
			http.Error(w, `{"status":404,"detail":"no"}`, http.StatusNotFound)
			return
		}
		mu.Lock()
		asked = append(asked, r.Header.Get("Last-Event-ID"))
		n := len(asked)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1: // then the connection drops
			fmt.Fprint(w, ": keepalive\n\nevent: output\nid: 7.0\ndata: {\"stream\":\"stdout\",\"text\":\"line 1\\n\"}\n\n")
			fmt.Fprint(w, "event: output\nid: 7.5\ndata: {\"stream\":\"stderr\",\"text\":\"warn\\n\"}\n\n")
		case 2:
			http.Error(w, `{"status":503,"detail":"standby"}`, http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, "event: output\nid: 14.5\ndata: {\"stream\":\"stdout\",\"text\":\"line 2\\n\"}\n\n")
			fmt.Fprint(w, "event: end\ndata: {\"status\":\"failed\",\"exitCode\":3}\n\n")
		}
	})
	var out, errb bytes.Buffer
	a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
	code := a.Main(context.Background(), []string{"logs", "-f", "X1", "--config", cfg})
	if code != 3 || out.String() != "line 1\nline 2\n" || !strings.HasPrefix(errb.String(), "warn\n") || !strings.Contains(errb.String(), "failed (exit code 3)") {
		t.Errorf("exit %d stdout %q stderr %q; want 3, each line once", code, out.String(), errb.String())
	}
	if want := []string{"", "7.5", "7.5"}; strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Errorf("Last-Event-ID of each connection: %q, want %q", asked, want)
	}
}

func TestLogsFollowUnknown(t *testing.T) {
	cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"status":404,"detail":"execution X2 not found"}`)
	})
	var out, errb bytes.Buffer
	a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
	if code := a.Main(context.Background(), []string{"logs", "-f", "X2", "--config", cfg}); code == 0 || !strings.Contains(errb.String(), "X2 not found") {
		t.Errorf("exit %d stderr %q; want a failure naming the execution, no retry loop", code, errb.String())
	}
}
