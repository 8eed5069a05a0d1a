package execution

import (
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/resource"
)

func TestTransitions(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	allowed := map[[2]Status]bool{
		{Queued, Running}: true, {Queued, Canceled}: true, {Queued, Failed}: true,
		{Running, Succeeded}: true, {Running, Failed}: true, {Running, TimedOut}: true,
		{Running, Canceled}: true, {Running, Lost}: true,
		{Lost, Queued}: true, // guarded: a retryable service with attempts left (see below)
	}
	for _, from := range Statuses {
		for _, to := range Statuses {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				e := &Execution{ID: "x", Status: from, Attempt: 1, Spec: &resource.Service{Retryable: true}}
				err := e.Transition(to, now, "")
				if want := allowed[[2]Status{from, to}]; want != (err == nil) {
					t.Fatalf("Transition err = %v, want allowed=%v", err, want)
				}
				if err != nil {
					if !errors.Is(err, ErrTransition) || e.Status != from {
						t.Errorf("refused transition changed status to %s or err %v is not ErrTransition", e.Status, err)
					}
					return
				}
				if to.Terminal() && (e.EndedAt == nil || !e.EndedAt.Equal(now)) {
					t.Errorf("terminal %s without EndedAt", to)
				}
				if to == Running && e.StartedAt == nil {
					t.Error("running without StartedAt")
				}
			})
		}
	}
}

func TestTerminalNeverMoves(t *testing.T) {
	for _, s := range Statuses {
		if !s.Terminal() {
			continue
		}
		for _, to := range Statuses {
			if s == Lost && to == Queued {
				continue // the retry edge, guarded: TestRetryEdgeGuard
			}
			if CanTransition(s, to) {
				t.Errorf("terminal %s may move to %s", s, to)
			}
		}
	}
}

func TestRetry(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name      string
		retryable bool
		attempt   int
		want      bool
	}{
		{"not retryable", false, 1, false},
		{"retryable first loss", true, 1, true},
		{"retryable out of attempts", true, MaxAttempts, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Execution{ID: "x", Status: Running, Attempt: tt.attempt, Spec: &resource.Service{Retryable: tt.retryable}}
			if err := e.Transition(Lost, now, "runner died"); err != nil {
				t.Fatal(err)
			}
			if got := e.Retry(now); got != tt.want {
				t.Fatalf("Retry = %v, want %v", got, tt.want)
			}
			want := Lost
			if tt.want {
				want = Queued
			}
			if e.Status != want {
				t.Errorf("status %s, want %s", e.Status, want)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	seen := map[string]bool{}
	for i := range 1000 {
		id := NewID(base.Add(time.Duration(i) * time.Millisecond))
		if err := ValidateID(id); err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("duplicate ID %s", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Error("IDs made in time order do not sort in time order")
	}
	for _, bad := range []string{"", "short", "01ARZ3NDEKTSV4RRFFQ69G5FAU!", "01arz3ndektsv4rrffq69g5fav", "../../../../../../../../etc"} {
		if ValidateID(bad) == nil {
			t.Errorf("ValidateID(%q) accepted", bad)
		}
	}
}

func TestRetryEdgeGuard(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		spec *resource.Service
		att  int
		want bool
	}{
		{"retryable, attempts left", &resource.Service{Retryable: true}, 1, true},
		{"retryable, out of attempts", &resource.Service{Retryable: true}, MaxAttempts, false},
		{"not retryable", &resource.Service{}, 1, false},
		{"no snapshot", nil, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Execution{ID: "x", Status: Lost, Attempt: tt.att, Spec: tt.spec}
			err := e.Transition(Queued, now, "")
			if (err == nil) != tt.want {
				t.Fatalf("lost → queued err = %v, want allowed=%v", err, tt.want)
			}
			if err != nil && (!errors.Is(err, ErrTransition) || e.Status != Lost) {
				t.Errorf("refused retry changed status to %s or err %v is not ErrTransition", e.Status, err)
			}
		})
	}
}
