package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/logtest"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/store/cache"
	"github.com/autogate/autogate/internal/store/fence"
)

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not synchronising on time
	}
}

type fakeAdmin struct {
	created bool
	calls   atomic.Int32
}

func (a *fakeAdmin) EnsureAdmin(context.Context, string) (bool, error) {
	a.calls.Add(1)
	return a.created, nil
}

type fakeSweeper struct{ sweeps, marks, inQueue atomic.Int32 }

func (s *fakeSweeper) MarkDeadLetters(context.Context, int) (int, error) {
	s.marks.Add(1)
	return 0, nil
}

func (s *fakeSweeper) Sweep(_ context.Context, p gateway.SweepPolicy) (gateway.SweepResult, error) {
	s.sweeps.Add(1)
	s.inQueue.Store(int32(p.InQueue))
	return gateway.SweepResult{}, nil
}

type fakeQueue struct{}

func (fakeQueue) Depth(context.Context) (int, int, error)                  { return 3, 1, nil }
func (fakeQueue) DeadLetterDepth(context.Context) (int, error)             { return 2, nil }
func (fakeQueue) VisibilityTimeout(context.Context) (time.Duration, error) { return time.Minute, nil }

type fakeMeter struct {
	mu     sync.Mutex
	depths []int
	states []bool
}

func (m *fakeMeter) QueueDepth(v, f int) {
	m.mu.Lock()
	m.depths = append(m.depths, v, f)
	m.mu.Unlock()
}
func (m *fakeMeter) DeadLetterDepth(n int) {
	m.mu.Lock()
	m.depths = append(m.depths, n)
	m.mu.Unlock()
}
func (m *fakeMeter) LeaseState(active bool, _ int64) {
	m.mu.Lock()
	m.states = append(m.states, active)
	m.mu.Unlock()
}

// fakeTunnel stands for the manager tunnel: up from Run until ctx ends.
type fakeTunnel struct{ up, closed atomic.Bool }

func (f *fakeTunnel) Run(ctx context.Context, epoch int64) error {
	f.up.Store(true)
	<-ctx.Done()
	f.up.Store(false)
	f.closed.Store(true)
	return nil
}

// fakeLease runs terms the test ends by hand: ending one cancels its ctx
// first, as a failed renewal would, and then waits for OnStarted.
type fakeLease struct {
	epoch int64
}

func (l *fakeLease) start(t *testing.T, cb lease.Callbacks) (term lease.Term, end func(), done <-chan struct{}) {
	t.Helper()
	l.epoch++
	term = lease.Term{Holder: "n1", Epoch: l.epoch, Address: "https://n1"}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	ch := make(chan struct{})
	cb.OnNewLeader(term)
	go func() {
		defer close(ch)
		cb.OnStarted(ctx, term)
	}()
	return term, cancel, ch
}

type fixture struct {
	raw    *bolt.Store
	shared *fence.Store
	lead   *leadership
	clk    *clock.Fake
	sweep  *fakeSweeper
	tun    *fakeTunnel
	meter  *fakeMeter
	admin  *fakeAdmin
	ld     *leader
	out    *logtest.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	raw, err := bolt.Open(filepath.Join(t.TempDir(), "db"), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	f := &fixture{raw: raw, shared: fence.New(raw), lead: &leadership{}, clk: clock.NewFake(time.Now()),
		sweep: &fakeSweeper{}, tun: &fakeTunnel{}, meter: &fakeMeter{}, admin: &fakeAdmin{created: true}, out: &logtest.Buffer{}}
	log := slog.New(slog.DiscardHandler)
	duty := gatewayDuty{tunnel: f.tun, sweep: &sweepLoop{clk: f.clk, gw: f.sweep, queue: fakeQueue{}, meter: f.meter,
		staleAfter: time.Minute, interval: sweepEvery, log: log}}
	f.ld = &leader{name: "autogate server", shared: f.shared, fenced: func(lease.Term) store.Store { return raw },
		lead: f.lead, auth: f.admin, passFile: "/data/admin-password", stdout: f.out, stderr: f.out, log: log,
		state: f.meter.LeaseState, duty: duty.run}
	return f
}

// sweepEvery is the sweep interval the fixture runs with.
const sweepEvery = 30 * time.Second

func rec(name string) store.Record {
	return store.Record{Key: store.Key{Cluster: "c1", Kind: resource.KindService, Name: name}, Data: []byte(`{}`)}
}

func TestTermEndStopsTheDutiesAtOnce(t *testing.T) {
	f := newFixture(t)
	var prepared atomic.Bool
	f.ld.prepare = func(ctx context.Context, term lease.Term) {
		if active, _ := f.lead.Active(); active {
			t.Error("active before prepare (reconcile) finished")
		}
		prepared.Store(true)
	}
	l := &fakeLease{epoch: 6}
	term, end, done := l.start(t, f.ld.callbacks())
	eventually(t, "the node to go active", func() bool { a, _ := f.lead.Active(); return a })
	if !prepared.Load() || f.admin.calls.Load() != 1 {
		t.Errorf("prepare ran %v, admin ensured %d times; want both once before active", prepared.Load(), f.admin.calls.Load())
	}
	if _, got := f.lead.Active(); got != term {
		t.Errorf("term: got %+v want %+v", got, term)
	}
	if _, err := f.shared.Create(t.Context(), rec("during")); err != nil {
		t.Fatalf("write during the term: %v", err)
	}
	eventually(t, "the tunnel to come up", f.tun.up.Load)

	// One sweep as the term starts (a take-over finds a dead holder's runs
	// at once), then one per 30 s of (fake) time.
	eventually(t, "the first sweep", func() bool { return f.sweep.sweeps.Load() == 1 })
	eventually(t, "the sweep loop to wait", func() bool { return f.clk.Waiters() == 1 })
	f.clk.Advance(sweepEvery)
	eventually(t, "a sweep", func() bool { return f.sweep.sweeps.Load() == 2 })
	if f.sweep.marks.Load() != 2 {
		t.Errorf("dead letters marked %d times, want 2", f.sweep.marks.Load())
	}
	if got := f.sweep.inQueue.Load(); got != 4 {
		t.Errorf("sweep told the queue holds %d messages, want 4 (3 visible + 1 in flight)", got)
	}
	eventually(t, "the sweep loop to wait again", func() bool { return f.clk.Waiters() == 1 })

	end()
	// Right after the term's ctx is cancelled, before the duties wind down.
	if active, _ := f.lead.Active(); active {
		t.Error("still active after the term ended")
	}
	if _, err := f.shared.Create(t.Context(), rec("after")); !errors.Is(err, lease.ErrNotLeader) {
		t.Errorf("write after the term: got %v want lease.ErrNotLeader", err)
	}
	if _, err := f.raw.Get(t.Context(), rec("after").Key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused write landed: %v", err)
	}
	// The duties stop without any time passing.
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the term's duties did not stop when its ctx ended")
	}
	if !f.tun.closed.Load() || f.tun.up.Load() {
		t.Error("the manager tunnel is still up after the term")
	}
	f.clk.Advance(10 * sweepEvery)
	if got := f.sweep.sweeps.Load(); got != 2 {
		t.Errorf("sweeps after the term: got %d want 2 (the loop stopped)", got)
	}
	f.meter.mu.Lock()
	states, depths := slices.Clone(f.meter.states), slices.Clone(f.meter.depths)
	f.meter.mu.Unlock()
	if !slices.Equal(states, []bool{true, false}) {
		t.Errorf("lease states: got %v want [true false]", states)
	}
	if !slices.Equal(depths, []int{3, 1, 2, 3, 1, 2}) {
		t.Errorf("queue depths recorded: got %v want [3 1 2] twice", depths)
	}
	out := f.out.String()
	for _, want := range []string{"created user admin; its password is in /data/admin-password", "autogate server: active (epoch 7)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if _, err := f.shared.Create(t.Context(), rec("between")); !errors.Is(err, lease.ErrNotLeader) {
		t.Errorf("write between terms: got %v want lease.ErrNotLeader", err)
	}

	// The next term writes again.
	_, end2, done2 := l.start(t, f.ld.callbacks())
	eventually(t, "the second term", func() bool { a, term := f.lead.Active(); return a && term.Epoch == 8 })
	if _, err := f.shared.Create(t.Context(), rec("next")); err != nil {
		t.Errorf("write in the next term: %v", err)
	}
	end2()
	<-done2
}

func TestStandbyObservesTheLeader(t *testing.T) {
	lead := &leadership{}
	if active, term := lead.Active(); active || term != (lease.Term{}) {
		t.Errorf("fresh: got %v %+v", active, term)
	}
	other := lease.Term{Holder: "n2", Epoch: 3}
	lead.observe(other)
	if active, term := lead.Active(); active || term != other {
		t.Errorf("standby: got %v %+v want false %+v", active, term, other)
	}
	ctx, cancel := context.WithCancel(t.Context())
	mine := lease.Term{Holder: "n1", Epoch: 4}
	lead.activate(ctx, mine)
	lead.observe(other) // a stale observation while active changes nothing
	if active, term := lead.Active(); !active || term != mine {
		t.Errorf("active: got %v %+v want true %+v", active, term, mine)
	}
	cancel()
	// Deposed, it names the holder the lease item named last (where its
	// standby forwarder sends requests), not itself.
	if active, term := lead.Active(); active || term != other {
		t.Errorf("after the term's ctx ended: got %v %+v want false %+v", active, term, other)
	}
	lead.deactivate(mine)
	if _, term := lead.Active(); term != other {
		t.Errorf("after deactivate: names %+v, want the observed %+v", term, other)
	}
}

func TestDrainOrder(t *testing.T) {
	tests := []struct {
		name     string
		finishes bool // the process group ends by itself within the grace
	}{
		{"services finish within the grace", true},
		{"services outlive the grace", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var steps []string
			step := func(s string) { mu.Lock(); steps = append(steps, s); mu.Unlock() }
			killed := make(chan struct{})
			d := drain{
				stopLease: func() { step("stop lease") },
				release:   func(context.Context) error { step("release"); return errors.New("gone") },
				stopRecv:  func() { step("stop receiving") },
				http:      &http.Server{},
				grace:     50 * time.Millisecond,
				kill:      func() { step("kill"); close(killed) },
				log:       slog.New(slog.DiscardHandler),
			}
			want := errors.New("group")
			err := d.run(t.Context(), func() error {
				if !tt.finishes {
					<-killed
				}
				return want
			})
			if !errors.Is(err, want) {
				t.Errorf("error: got %v want %v", err, want)
			}
			if got := []string{"stop lease", "release", "stop receiving", "kill"}; !slices.Equal(steps, got) {
				t.Errorf("steps: got %v want %v", steps, got)
			}
		})
	}
}

func TestPruneLoop(t *testing.T) {
	clk := clock.NewFake(time.Now())
	var n atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- pruneLoop(ctx, clk, func(context.Context) (int, error) { n.Add(1); return 0, nil }, slog.New(slog.DiscardHandler))
	}()
	eventually(t, "the first prune", func() bool { return n.Load() == 1 && clk.Waiters() == 1 })
	clk.Advance(pruneEvery - time.Second)
	if n.Load() != 1 {
		t.Errorf("pruned %d times before the hour, want 1", n.Load())
	}
	clk.Advance(time.Second)
	eventually(t, "the hourly prune", func() bool { return n.Load() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("prune loop: %v", err)
	}
}

func TestTermEndingDuringSetUpIsNeverActive(t *testing.T) {
	f := newFixture(t)
	var ran atomic.Bool
	f.ld.duty = func(context.Context, lease.Term) { ran.Store(true) }
	ctx, cancel := context.WithCancel(t.Context())
	f.ld.prepare = func(context.Context, lease.Term) { cancel() } // the lease is lost while reconciling
	f.ld.term(ctx, lease.Term{Holder: "n1", Epoch: 2})
	if ran.Load() {
		t.Error("the duty ran for a term that had ended")
	}
	if active, _ := f.lead.Active(); active {
		t.Error("reported active")
	}
	if strings.Contains(f.out.String(), "active (epoch") {
		t.Errorf("printed %q", f.out.String())
	}
	if _, err := f.shared.Create(t.Context(), rec("x")); !errors.Is(err, lease.ErrNotLeader) {
		t.Errorf("write after the term: got %v want lease.ErrNotLeader", err)
	}
}

// staleSweeper reports a running attempt that turns stale 5 s after each
// pass.
type staleSweeper struct {
	fakeSweeper
	clk clock.Clock
}

func (s *staleSweeper) Sweep(ctx context.Context, p gateway.SweepPolicy) (gateway.SweepResult, error) {
	s.fakeSweeper.Sweep(ctx, p)
	return gateway.SweepResult{NextStale: s.clk.Now().Add(5 * time.Second)}, nil
}

// The sweep loop wakes when the earliest running attempt turns stale, not
// only every interval: a dead holder's run is declared lost within the
// stale-after policy of its last heartbeat.
func TestSweepWakesWhenARunTurnsStale(t *testing.T) {
	clk := clock.NewFake(time.Now())
	sw := &staleSweeper{clk: clk}
	loop := sweepLoop{clk: clk, gw: sw, queue: fakeQueue{}, meter: &fakeMeter{}, staleAfter: time.Minute,
		interval: sweepEvery, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); loop.run(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the first pass", func() bool { return sw.sweeps.Load() == 1 && clk.Waiters() == 1 })
	clk.Advance(5 * time.Second)
	eventually(t, "a pass when the attempt turns stale", func() bool { return sw.sweeps.Load() == 2 })
}

// The term's cache serves reads only while the term lasts and starts each
// term empty: what another active wrote between our terms is read fresh.
func TestTermCache(t *testing.T) {
	f := newFixture(t)
	c := cache.New(f.shared, clock.Real{}, 0, resource.KindService)
	f.ld.cache = c
	ctx := t.Context()
	read := func() string {
		t.Helper()
		r, err := c.Get(ctx, rec("s").Key)
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Data)
	}
	l := &fakeLease{epoch: 1}
	_, end, done := l.start(t, f.ld.callbacks())
	eventually(t, "the node to go active", func() bool { a, _ := f.lead.Active(); return a })
	if _, err := c.Create(ctx, rec("s")); err != nil {
		t.Fatal(err)
	}
	read()
	read()
	if hits, misses := c.Stats(); hits != 1 || misses != 1 {
		t.Errorf("during the term: %d hits, %d misses; want 1, 1", hits, misses)
	}
	end()
	<-done
	// Another active's write, after our term.
	cur, _ := f.raw.Get(ctx, rec("s").Key)
	cur.Data = []byte(`{"by":"the other active"}`)
	if _, err := f.raw.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != string(cur.Data) {
		t.Errorf("between terms: read %s, want the other active's write", got)
	}
	_, end2, done2 := l.start(t, f.ld.callbacks())
	eventually(t, "the second term", func() bool { a, term := f.lead.Active(); return a && term.Epoch == 3 })
	if got := read(); got != string(cur.Data) {
		t.Errorf("next term: read %s, want the other active's write", got)
	}
	if hits, misses := c.Stats(); hits != 1 || misses != 2 {
		t.Errorf("after the next term's first read: %d hits, %d misses; want 1, 2 (it starts empty)", hits, misses)
	}
	end2()
	<-done2
}
