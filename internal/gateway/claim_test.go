package gateway

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/store"
)

// fakeLocal is a LocalRunner double with a fixed number of free slots.
type fakeLocal struct {
	free     int
	started  []*execution.Execution
	envs     []queue.Envelope
	canceled int
}

func (f *fakeLocal) Reserve() (Reservation, string, time.Duration, bool) {
	if f.free == 0 {
		return nil, "", 0, false
	}
	f.free--
	return fakeReservation{f}, "gw-local", 7 * time.Second, true
}

type fakeReservation struct{ f *fakeLocal }

func (r fakeReservation) Start(env queue.Envelope, e *execution.Execution) {
	r.f.started = append(r.f.started, e)
	r.f.envs = append(r.f.envs, env)
}

func (r fakeReservation) Cancel() { r.f.canceled++; r.f.free++ }

var (
	_ LocalRunner = (*fakeLocal)(nil)
	_ Reservation = fakeReservation{}
)

// writeCounter counts the writes that reach the store; failCreate, when
// set, refuses creates as a fenced store does once the term is over.
type writeCounter struct {
	store.Store
	writes     atomic.Int32
	failCreate error
}

func (s *writeCounter) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	if s.failCreate != nil {
		return store.Record{}, s.failCreate
	}
	s.writes.Add(1)
	return s.Store.Create(ctx, rec)
}

func (s *writeCounter) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	s.writes.Add(1)
	return s.Store.Update(ctx, rec)
}

// Issue 15 item 3: with a free local slot, a run is recorded already claimed
// by the local runner, in the one write that records it, and handed over
// without a message; without one it is queued and sent as before; a claim
// the store refuses starts nothing and frees the slot.
func TestSubmitClaimsLocally(t *testing.T) {
	for _, tc := range []struct {
		name       string
		free       int
		failCreate error
		wantStatus execution.Status
		wantErr    error
	}{
		{name: "free slot", free: 1, wantStatus: execution.Running},
		{name: "no free slot", free: 0, wantStatus: execution.Queued},
		{name: "claim refused", free: 1, failCreate: store.ErrFenced, wantErr: store.ErrFenced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, rec, _ := newGateway(t)
			cs := &writeCounter{Store: g.Catalog.Store, failCreate: tc.failCreate}
			g.Catalog.Store = cs
			local := &fakeLocal{free: tc.free}
			g.Local = local
			e, err := g.Submit(t.Context(), RunRequest{Service: "s"})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Submit = %v, want %v", err, tc.wantErr)
				}
				if local.canceled != 1 || len(local.started) != 0 || len(rec.sent) != 0 || cs.writes.Load() != 0 {
					t.Fatalf("refused claim: canceled %d started %d sent %d writes %d; want the slot freed and nothing else",
						local.canceled, len(local.started), len(rec.sent), cs.writes.Load())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.writes.Load(); got != 1 {
				t.Errorf("store writes = %d, want 1", got)
			}
			got, err := g.Catalog.Execution(t.Context(), e.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.wantStatus || e.Status != tc.wantStatus {
				t.Fatalf("recorded %s, returned %s; want %s", got.Status, e.Status, tc.wantStatus)
			}
			if tc.wantStatus == execution.Queued {
				if len(rec.sent) != 1 || len(local.started) != 0 {
					t.Fatalf("sent %d, started %d; want it queued and sent", len(rec.sent), len(local.started))
				}
				return
			}
			if len(rec.sent) != 0 || len(local.started) != 1 || local.canceled != 0 {
				t.Fatalf("sent %d, started %d, canceled %d; want it handed over, no message", len(rec.sent), len(local.started), local.canceled)
			}
			if got.Node != "gw-local" || got.Attempt != 1 || got.HeartbeatEvery != 7*time.Second || got.StartedAt == nil || !got.HeldBy("gw-local", 1) {
				t.Errorf("recorded claim node %q attempt %d heartbeat %v started %v; want held by gw-local, attempt 1, 7s",
					got.Node, got.Attempt, got.HeartbeatEvery, got.StartedAt)
			}
			handed := local.started[0]
			if handed == e || handed.Version != got.Version || handed.Status != execution.Running {
				t.Errorf("handed over %p v%d %s; want a copy at the recorded version %d", handed, handed.Version, handed.Status, got.Version)
			}
			if env := local.envs[0]; env.ExecutionID != e.ID || env.Check() != nil {
				t.Errorf("handed envelope %+v (%v); want a valid one for %s", env, env.Check(), e.ID)
			}
		})
	}
}
