package execution

import (
	"errors"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/resource"
)

// TestMethodsFollowEdges walks every status, in every variant of record the
// rules look at, through every rule method, and holds the moves they make
// against CanTransition: no method makes a move the table refuses, and every
// edge of the table is made by some method.
func TestMethodsFollowEdges(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	old := now.Add(-time.Hour)
	const node, after = "n1", 30 * time.Second
	methods := map[string]func(e *Execution) error{
		"Start":           func(e *Execution) error { return e.Start(node, 10*time.Second, now) },
		"Claim":           func(e *Execution) error { return e.Claim(node, now) },
		"Beat":            func(e *Execution) error { return e.Beat(node, 1, now) },
		"LoseAttempt":     func(e *Execution) error { _, err := e.LoseAttempt(now, "gone"); return err },
		"LoseStale":       func(e *Execution) error { _, err := e.LoseStale(now, after); return err },
		"RequestCancel":   func(e *Execution) error { return e.RequestCancel(now) },
		"FailUnstarted":   func(e *Execution) error { return e.FailUnstarted(now, "too late") },
		"Retry":           func(e *Execution) error { e.Retry(now); return nil },
		"Resend":          func(e *Execution) error { return e.Resend(now) },
		"ExpireUnstarted": func(e *Execution) error { return e.ExpireUnstarted(now) },
		"Progress":        func(e *Execution) error { return e.Progress(node, 1, Output{Data: "x", Bytes: 1}, Output{}) },
		"Follow":          func(e *Execution) error { return e.Follow(now, time.Minute) },
		"MarkDeadLettered": func(e *Execution) error {
			return e.MarkDeadLettered()
		},
	}
	for _, st := range Statuses {
		methods["Finish→"+string(st)] = func(e *Execution) error { return e.Finish(node, 1, now, st, "done", false) }
	}
	methods["Finish canceled"] = func(e *Execution) error { return e.Finish(node, 1, now, Succeeded, "", true) }

	variants := func(from Status) []*Execution {
		var out []*Execution
		for _, retryable := range []bool{false, true} {
			for _, attempt := range []int{1, MaxAttempts} {
				for _, cancel := range []bool{false, true} {
					for _, hb := range []time.Time{now, old} {
						out = append(out, &Execution{ID: "x", Status: from, Node: node, Attempt: attempt, StartBy: hb,
							CancelRequested: cancel, Heartbeat: &hb, StartedAt: &hb,
							Spec: &resource.Service{Retryable: retryable}})
					}
				}
			}
		}
		return out
	}
	seen := map[[2]Status]bool{}
	for _, from := range Statuses {
		for name, m := range methods {
			for _, e := range variants(from) {
				err := m(e)
				if err != nil && e.Status != from {
					t.Errorf("%s from %s failed (%v) but moved the record to %s", name, from, err, e.Status)
				}
				if e.Status == from {
					continue
				}
				edge := [2]Status{from, e.Status}
				seen[edge] = true
				// LoseAttempt makes two edges in one call: running → lost → queued.
				if from == Running && e.Status == Queued {
					seen[[2]Status{Running, Lost}], seen[[2]Status{Lost, Queued}] = true, true
					continue
				}
				if !CanTransition(from, e.Status) {
					t.Errorf("%s moved %s → %s, an edge CanTransition refuses", name, from, e.Status)
				}
			}
		}
	}
	for _, from := range Statuses {
		for _, to := range Statuses {
			if CanTransition(from, to) && !seen[[2]Status{from, to}] {
				t.Errorf("edge %s → %s is made by no method", from, to)
			}
		}
	}
}

func TestStaleAfterPolicy(t *testing.T) {
	for _, hb := range []time.Duration{500 * time.Millisecond, 10 * time.Second, time.Minute} {
		if got := StaleAfter(hb); got != StaleHeartbeats*hb || got <= hb {
			t.Errorf("StaleAfter(%v) = %v, want %d heartbeats", hb, got, StaleHeartbeats)
		}
	}
}

func TestStaleAndHeldBy(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	tests := []struct {
		name  string
		e     Execution
		stale bool
		held  bool
	}{
		{"fresh", Execution{Status: Running, Node: "n", Attempt: 1, Heartbeat: at(29 * time.Second)}, false, true},
		{"at the limit", Execution{Status: Running, Node: "n", Attempt: 1, Heartbeat: at(30 * time.Second)}, true, true},
		{"no heartbeat, old start", Execution{Status: Running, Node: "n", Attempt: 1, StartedAt: at(time.Minute)}, true, true},
		{"no heartbeat at all", Execution{Status: Running, Node: "n", Attempt: 1}, true, true},
		{"other node", Execution{Status: Running, Node: "m", Attempt: 1, Heartbeat: at(0)}, false, false},
		{"later attempt", Execution{Status: Running, Node: "n", Attempt: 2, Heartbeat: at(0)}, false, false},
		{"holder's longer period wins", Execution{Status: Running, Node: "n", Attempt: 1, HeartbeatEvery: 20 * time.Second, Heartbeat: at(59 * time.Second)}, false, true},
		{"holder's period, past it", Execution{Status: Running, Node: "n", Attempt: 1, HeartbeatEvery: 20 * time.Second, Heartbeat: at(time.Minute)}, true, true},
		{"holder's shorter period: the judge's wins", Execution{Status: Running, Node: "n", Attempt: 1, HeartbeatEvery: time.Second, Heartbeat: at(10 * time.Second)}, false, true},
		{"queued is never stale", Execution{Status: Queued, Heartbeat: at(time.Hour)}, false, false},
		{"ended", Execution{Status: Succeeded, Node: "n", Attempt: 1, Heartbeat: at(time.Hour)}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Stale(now, 30*time.Second); got != tt.stale {
				t.Errorf("Stale = %v, want %v", got, tt.stale)
			}
			if got := tt.e.HeldBy("n", 1); got != tt.held {
				t.Errorf("HeldBy = %v, want %v", got, tt.held)
			}
			// StaleAt is the instant Stale turns true: a sweeper waking
			// then finds the attempt stale, a moment earlier it does not.
			at := tt.e.StaleAt(30 * time.Second)
			switch {
			case tt.e.Status != Running && !at.IsZero():
				t.Errorf("StaleAt of a %s execution = %v, want zero", tt.e.Status, at)
			case tt.e.Status == Running && !at.IsZero():
				if !tt.e.Stale(at, 30*time.Second) || tt.e.Stale(at.Add(-time.Millisecond), 30*time.Second) {
					t.Errorf("StaleAt = %v is not where Stale turns true", at)
				}
				if got := !now.Before(at); got != tt.stale {
					t.Errorf("StaleAt %v against now %v says stale=%v, want %v", at, now, got, tt.stale)
				}
			}
		})
	}
}

func TestLoseStale(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	old, fresh := now.Add(-time.Minute), now.Add(-time.Second)
	tests := []struct {
		name      string
		hb        time.Time
		retryable bool
		attempt   int
		want      Status
		requeued  bool
		err       error
	}{
		{"fresh holder wins", fresh, true, 1, Running, false, ErrUnchanged},
		{"stale, not retryable", old, false, 1, Lost, false, nil},
		{"stale, retryable", old, true, 1, Queued, true, nil},
		{"stale, retryable, last attempt", old, true, MaxAttempts, Lost, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hb := tt.hb
			e := &Execution{ID: "x", Status: Running, Node: "dead", Attempt: tt.attempt, Heartbeat: &hb, StartedAt: &hb,
				Spec: &resource.Service{Retryable: tt.retryable}}
			requeued, err := e.LoseStale(now, 30*time.Second)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if e.Status != tt.want || requeued != tt.requeued {
				t.Errorf("status %s requeued %v, want %s %v", e.Status, requeued, tt.want, tt.requeued)
			}
			if tt.err == nil && e.Reason == "" {
				t.Error("no reason recorded")
			}
			if tt.requeued && (e.StartedAt != nil || e.EndedAt != nil) {
				t.Errorf("re-queued with times started %v ended %v", e.StartedAt, e.EndedAt)
			}
		})
	}
}

func TestRequestCancel(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		e      Execution
		want   Status
		flag   bool
		errIs  error
		errNil bool
	}{
		{"queued is canceled at once", Execution{Status: Queued}, Canceled, true, nil, true},
		{"running is flagged", Execution{Status: Running}, Running, true, nil, true},
		{"flagged again changes nothing", Execution{Status: Running, CancelRequested: true}, Running, true, ErrUnchanged, false},
		{"ended", Execution{Status: Succeeded}, Succeeded, false, ErrFinished, false},
		{"lost", Execution{Status: Lost}, Lost, false, ErrFinished, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			err := e.RequestCancel(now)
			if tt.errNil != (err == nil) || (tt.errIs != nil && !errors.Is(err, tt.errIs)) {
				t.Fatalf("err = %v, want %v", err, tt.errIs)
			}
			if e.Status != tt.want || e.CancelRequested != tt.flag {
				t.Errorf("status %s flag %v, want %s %v", e.Status, e.CancelRequested, tt.want, tt.flag)
			}
		})
	}
}

func TestStartAndFinish(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	e := &Execution{ID: "x", Status: Queued, DeadLettered: true, Reason: "in the DLQ"}
	if err := e.Start("n", time.Second, now); err != nil || !e.HeldBy("n", 1) || e.DeadLettered {
		t.Fatalf("Start: err %v, held %v, dead-lettered %v", err, e.HeldBy("n", 1), e.DeadLettered)
	}
	if err := e.Start("m", time.Second, now); !errors.Is(err, ErrUnchanged) || !e.HeldBy("n", 1) {
		t.Fatalf("second Start: err %v, want ErrUnchanged and the first holder kept", err)
	}
	later := now.Add(time.Second)
	if err := e.Beat("n", 1, later); err != nil || !e.Heartbeat.Equal(later) {
		t.Fatalf("Beat: err %v heartbeat %v", err, e.Heartbeat)
	}
	if err := e.Beat("m", 1, later); !errors.Is(err, ErrUnchanged) {
		t.Errorf("Beat by a non-holder: %v, want ErrUnchanged", err)
	}
	if err := e.Finish("n", 2, later, Succeeded, "", false); !errors.Is(err, ErrUnchanged) || e.Status != Running {
		t.Errorf("Finish by an old attempt: %v (status %s), want ErrUnchanged", err, e.Status)
	}
	e.CancelRequested = true
	if err := e.Finish("n", 1, later, Succeeded, "", false); err != nil || e.Status != Canceled {
		t.Errorf("Finish with a cancel requested: %v, status %s; want canceled", err, e.Status)
	}

	// A cancel requested before a lost attempt was re-queued stops the retry.
	q := &Execution{ID: "y", Status: Queued, CancelRequested: true}
	if err := q.Start("n", time.Second, now); err != nil || q.Status != Canceled || q.Attempt != 0 {
		t.Errorf("Start of a cancel-requested run: %v, status %s attempt %d; want canceled unstarted", err, q.Status, q.Attempt)
	}
}

func TestProgressAndFollow(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	out := Output{Data: "line 1\n", Bytes: 7}
	e := &Execution{ID: "x", Status: Running, Node: "n1", Attempt: 1}
	if err := e.Progress("n2", 1, out, Output{}); !errors.Is(err, ErrUnchanged) || e.Stdout != (Output{}) {
		t.Errorf("another node's progress: err %v, stdout %+v; want ErrUnchanged and nothing recorded", err, e.Stdout)
	}
	if err := e.Progress("n1", 1, out, Output{}); err != nil || e.Stdout != out {
		t.Errorf("holder's progress: err %v, stdout %+v", err, e.Stdout)
	}
	if err := e.Progress("n1", 1, out, Output{}); !errors.Is(err, ErrUnchanged) {
		t.Errorf("the same output again: err %v, want ErrUnchanged (no write)", err)
	}

	if e.Followed(now) {
		t.Error("followed before anyone followed")
	}
	if err := e.Follow(now, time.Minute); err != nil || !e.Followed(now.Add(59*time.Second)) || e.Followed(now.Add(time.Minute)) {
		t.Errorf("Follow: err %v, until %v", err, e.FollowedUntil)
	}
	if err := e.Follow(now.Add(29*time.Second), time.Minute); !errors.Is(err, ErrUnchanged) {
		t.Errorf("renewing with more than half the ttl left: err %v, want ErrUnchanged", err)
	}
	if err := e.Follow(now.Add(31*time.Second), time.Minute); err != nil || !e.FollowedUntil.Equal(now.Add(91*time.Second)) {
		t.Errorf("renewing with less than half left: err %v, until %v", err, e.FollowedUntil)
	}
	e.Status = Succeeded
	if err := e.Follow(now.Add(50*time.Second), time.Minute); !errors.Is(err, ErrUnchanged) {
		t.Errorf("following an ended run: err %v, want ErrUnchanged", err)
	}
}

func TestRetryClearsTheLostAttemptsOutput(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	e := &Execution{ID: "x", Status: Running, Node: "n1", Attempt: 1, Spec: &resource.Service{Retryable: true},
		Stdout: Output{Data: "half", Bytes: 4}, CreatedAt: now}
	requeued, err := e.LoseAttempt(now, "gone")
	if err != nil || !requeued || e.Stdout != (Output{}) {
		t.Errorf("requeued %v, err %v, stdout %+v; want the next attempt to start with no output", requeued, err, e.Stdout)
	}
}

// The default heartbeat and the bound it gives (issue 12 item 1): a dead
// holder's attempt is stale 3 heartbeats after its last beat, and with the
// default that leaves room, under 30 s, for the active's sweep to wake and
// for a take-over when the holder was the active itself (lease 2.4 s plus a
// poll, rounded up to 5 s here).
func TestDefaultHeartbeatBound(t *testing.T) {
	if DefaultHeartbeat != 5*time.Second {
		t.Errorf("DefaultHeartbeat = %v, want 5s", DefaultHeartbeat)
	}
	const takeover = 5 * time.Second
	if got := StaleAfter(DefaultHeartbeat); got+takeover >= 30*time.Second {
		t.Errorf("stale after %v + take-over %v = %v: want under 30s", got, takeover, got+takeover)
	}
	// A holder that died right after a beat is judged from that beat.
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := &Execution{ID: "x", Status: Queued}
	if err := e.Start("n1", DefaultHeartbeat, start); err != nil {
		t.Fatal(err)
	}
	if at := e.StaleAt(StaleAfter(DefaultHeartbeat)); !at.Equal(start.Add(15 * time.Second)) {
		t.Errorf("stale at %v, want 15s after the start", at.Sub(start))
	}
	if e.Stale(start.Add(15*time.Second-time.Millisecond), StaleAfter(DefaultHeartbeat)) {
		t.Error("stale before 3 heartbeats passed")
	}
	if !e.Stale(start.Add(15*time.Second), StaleAfter(DefaultHeartbeat)) {
		t.Error("not stale 3 heartbeats after the last beat")
	}
}
