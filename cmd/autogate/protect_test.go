package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// fakeAgent is the ECS container agent's task scale-in protection endpoint
// ($ECS_AGENT_URI/task-protection/v1/state) as the runner binary sees it on
// ECS: it records every state asked for and answers the way the agent
// does.
type fakeAgent struct {
	srv *httptest.Server

	mu    sync.Mutex
	calls []agentCall
	bad   []string // requests the agent would not understand
}

// agentCall is one PUT of the protection state.
type agentCall struct {
	Enabled bool
	Minutes int
	At      time.Time
}

func newFakeAgent(t testing.TB) *fakeAgent {
	t.Helper()
	a := &fakeAgent{}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAgent) serve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ProtectionEnabled *bool `json:"ProtectionEnabled"`
		ExpiresInMinutes  *int  `json:"ExpiresInMinutes"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&body)
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Method != http.MethodPut || r.URL.Path != "/task-protection/v1/state" || err != nil || body.ProtectionEnabled == nil {
		a.bad = append(a.bad, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"Code":"InvalidParameterException","Message":"bad request"}}`)
		return
	}
	c := agentCall{Enabled: *body.ProtectionEnabled, At: time.Now()}
	if body.ExpiresInMinutes != nil {
		c.Minutes = *body.ExpiresInMinutes
	}
	a.calls = append(a.calls, c)
	expires := ""
	if c.Enabled {
		expires = c.At.Add(time.Duration(c.Minutes) * time.Minute).UTC().Format(time.RFC3339)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"protection": map[string]any{
		"ProtectionEnabled": c.Enabled, "ExpirationDate": expires,
		"TaskArn": "arn:aws:ecs:us-east-1:111111111111:task/autogate-ha-1/0123456789abcdef",
	}})
}

// last is the state the runner asked for last (ok false: none yet).
func (a *fakeAgent) last() (agentCall, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.calls) == 0 {
		return agentCall{}, false
	}
	return a.calls[len(a.calls)-1], true
}

// since is the calls made after t.
func (a *fakeAgent) since(t time.Time) []agentCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []agentCall
	for _, c := range a.calls {
		if !c.At.Before(t) {
			out = append(out, c)
		}
	}
	return out
}

// TestRunnerTaskProtection (issue 14.6): the real `autogate runner` with
// ECS_AGENT_URI pointing at a fake ECS agent protects its task from
// scale-in while it holds a run (with an expiry) and drops the protection
// once it is idle; on SIGTERM it keeps running the run within its shutdown
// grace, finishes it, and drops the protection; past the grace the run is
// killed, recorded lost, and the protection dropped as well.
func TestRunnerTaskProtection(t *testing.T) {
	requireTool(t, "git")
	agent := newFakeAgent(t)
	d := newDistributed(t, 1)
	cl := d.client(d.active(-1))
	ctx := context.Background()
	repo := filepath.Join(d.dir, "nap-repo")
	gitRepo(t, repo, map[string]string{"nap.sh": "#!/bin/sh\nsleep 4\necho nap-done\n", "long.sh": "#!/bin/sh\nsleep 60\n"},
		map[string]os.FileMode{"nap.sh": 0o755, "long.sh": 0o755})
	for _, o := range []resource.Object{
		&resource.Repository{Meta: resource.Meta{Name: "naps"}, URL: repo},
		&resource.Service{Meta: resource.Meta{Name: "nap"}, Type: resource.Executable, Repository: "naps", Filename: "nap.sh"},
		&resource.Service{Meta: resource.Meta{Name: "long"}, Type: resource.Executable, Repository: "naps", Filename: "long.sh"},
	} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The runners run "on ECS": the agent sets ECS_AGENT_URI in the task
	// (the gateway is already up and has none).
	d.env = append(slices.Clip(d.env), "ECS_AGENT_URI="+agent.srv.URL)
	const grace = 20 * time.Second
	r := d.startRunner(0, "--shutdown-grace", grace.String()) // the last flag wins

	protected := func(t *testing.T, what string) {
		t.Helper()
		c, ok := agent.last()
		if !ok || !c.Enabled || c.Minutes <= 0 {
			t.Fatalf("%s: last protection call %+v (any: %v); want ProtectionEnabled=true with an expiry", what, c, ok)
		}
	}
	unprotected := func(t *testing.T, what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			if c, ok := agent.last(); ok && !c.Enabled {
				return
			}
			if time.Now().After(deadline) {
				c, _ := agent.last()
				t.Fatalf("%s: protection still %+v 15s later; want it dropped", what, c)
			}
			tick(50 * time.Millisecond)
		}
	}

	t.Run("protected while a run is in flight, dropped after", func(t *testing.T) {
		e, err := cl.Run(ctx, "nap", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		runningOn(t, cl, e.ID)
		// The runner turns protection on before it starts the service.
		protected(t, "while running")
		got := await(t, cl, e.ID)
		if got.Status != execution.Succeeded || got.Stdout.Data != "nap-done\n" {
			t.Fatalf("run: %s %q (%s), want succeeded", got.Status, got.Stdout.Data, got.Reason)
		}
		unprotected(t, "after the run")
	})

	// sigtermMidRun runs service on r, checks the runner is protected
	// while it runs, sends r SIGTERM and waits for it to exit; it returns
	// the execution's ID, when SIGTERM was sent and how long r took to exit.
	sigtermMidRun := func(t *testing.T, r *server, service string) (id string, sigterm time.Time, took time.Duration) {
		t.Helper()
		e, err := cl.Run(ctx, service, wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		runningOn(t, cl, e.ID)
		protected(t, "before SIGTERM")
		sigterm = time.Now()
		if err := r.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := r.wait(); err != nil {
			t.Errorf("runner exit after SIGTERM: %v", err)
		}
		return e.ID, sigterm, time.Since(sigterm)
	}

	t.Run("SIGTERM mid-run: the run finishes within the grace", func(t *testing.T) {
		id, _, took := sigtermMidRun(t, r, "nap")
		got, err := cl.Execution(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != execution.Succeeded || got.Stdout.Data != "nap-done\n" {
			t.Errorf("after SIGTERM: %s %q (%s), want succeeded", got.Status, got.Stdout.Data, got.Reason)
		}
		if took >= grace {
			t.Errorf("runner took %v after SIGTERM, want the run to finish within the %v grace", took, grace)
		}
		if c, ok := agent.last(); !ok || c.Enabled {
			t.Errorf("runner exited with protection %+v; want it dropped", c)
		}
		t.Logf("SIGTERM to exit: %v (grace %v)", took, grace)
	})

	t.Run("SIGTERM past the grace: run lost, protection dropped", func(t *testing.T) {
		r := d.startRunner(1, "--shutdown-grace", "1s")
		id, sigterm, _ := sigtermMidRun(t, r, "long")
		got, err := cl.Execution(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != execution.Lost {
			t.Errorf("after the grace: %s (%s), want lost", got.Status, got.Reason)
		}
		calls := agent.since(sigterm)
		if len(calls) == 0 || calls[len(calls)-1].Enabled {
			t.Errorf("protection calls after SIGTERM: %+v; want the last to drop it", calls)
		}
	})

	agent.mu.Lock()
	defer agent.mu.Unlock()
	if len(agent.bad) > 0 {
		t.Errorf("requests the ECS agent would refuse: %v", agent.bad)
	}
}
