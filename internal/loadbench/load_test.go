package loadbench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/wire"
)

// settings of one `make bench-load` run.
func window() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("BENCH_LOAD_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 4 * time.Second
}

func clientCounts(tb testing.TB) []int {
	v := os.Getenv("BENCH_LOAD_CLIENTS")
	if v == "" {
		return []int{1, 8, 32}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			tb.Fatalf("BENCH_LOAD_CLIENTS=%q: want a list of positive counts", v)
		}
		out = append(out, n)
	}
	return out
}

// result is one case's figures.
type result struct {
	accepted, failed     int
	refused              int64 // submissions that failed (not retried: a run without a request key)
	busy, retried        int64 // retries after 429 (backlog full), after 503 or a failed connection
	acceptedPerSec       float64
	completedPerSec      float64
	submitP50, submitP99 time.Duration
	e2eP50, e2eP99       time.Duration
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[int(p*float64(len(d)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r result) String() string {
	return fmt.Sprintf("accepted/s %8.1f  completed/s %8.1f  submit p50 %7.2f ms p99 %7.2f ms  e2e p50 %7.2f ms p99 %7.2f ms  (%d runs, %d not succeeded, %d submissions failed, %d retries after 429, %d after 503/connection)",
		r.acceptedPerSec, r.completedPerSec, ms(r.submitP50), ms(r.submitP99), ms(r.e2eP50), ms(r.e2eP99), r.accepted, r.failed, r.refused, r.busy, r.retried)
}

// drive submits no-op runs from clients goroutines for d, then waits until
// every accepted run is terminal. Sync runs wait inside the request. The
// client retries as the CLI does (a 429 after its Retry-After); the
// retries are counted, and a submission's latency includes them.
func drive(tb testing.TB, cl *client.Client, clients int, async bool, d time.Duration) result {
	tb.Helper()
	ctx := context.Background()
	var busy, retried atomic.Int64
	retry := client.DefaultRetry
	retry.Notify = func(e client.RetryEvent) {
		if e.Status == http.StatusTooManyRequests {
			busy.Add(1)
		} else {
			retried.Add(1)
		}
	}
	cl = cl.WithRetry(retry)
	var (
		mu     sync.Mutex
		submit []time.Duration
		ids    []string
		errs   atomic.Int64
	)
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(stop) {
				t0 := time.Now()
				e, err := cl.Run(ctx, "noop", wire.RunRequest{Async: async})
				lat := time.Since(t0)
				if err != nil {
					if errs.Add(1) == 1 {
						tb.Logf("submit: %v", err)
					}
					continue
				}
				mu.Lock()
				submit = append(submit, lat)
				ids = append(ids, e.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	accepting := time.Since(start)
	if n := errs.Load(); n > 0 {
		tb.Errorf("%d submissions failed", n)
	}
	// Until every accepted run is terminal.
	var (
		e2e    []time.Duration
		last   time.Time
		failed int
	)
	work := make(chan string)
	var wmu sync.Mutex
	var ww sync.WaitGroup
	for range min(32, max(1, len(ids))) {
		ww.Go(func() {
			for id := range work {
				e := awaitTerminal(tb, cl, id)
				wmu.Lock()
				if e.Status != execution.Succeeded {
					failed++
				}
				if e.EndedAt != nil {
					e2e = append(e2e, e.EndedAt.Sub(e.CreatedAt))
					if e.EndedAt.After(last) {
						last = *e.EndedAt
					}
				}
				wmu.Unlock()
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	ww.Wait()
	r := result{accepted: len(ids), failed: failed, refused: errs.Load(), busy: busy.Load(), retried: retried.Load(), acceptedPerSec: float64(len(ids)) / accepting.Seconds(),
		submitP50: pct(submit, 0.5), submitP99: pct(submit, 0.99), e2eP50: pct(e2e, 0.5), e2eP99: pct(e2e, 0.99)}
	if !last.IsZero() {
		r.completedPerSec = float64(len(ids)) / last.Sub(start).Seconds()
	}
	if failed > 0 {
		tb.Errorf("%d of %d runs did not succeed", failed, len(ids))
	}
	return r
}

// awaitTerminal waits up to 5 min for execution id to end.
func awaitTerminal(tb testing.TB, cl *client.Client, id string) *wire.Execution {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		e, err := cl.Wait(context.Background(), id, 60*time.Second)
		if err != nil {
			tb.Errorf("wait %s: %v", id, err)
			return &wire.Execution{ID: id, Status: execution.Failed}
		}
		if e.Status.Terminal() {
			return e
		}
	}
	tb.Errorf("execution %s not terminal within 5 min", id)
	return &wire.Execution{ID: id, Status: execution.Failed}
}

// floorServer is the least an API run can cost: an HTTPS handler that
// writes one record, fsyncs it and runs the same no-op, then answers.
func floorServer(tb testing.TB, script string) *httptest.Server {
	tb.Helper()
	f, err := os.OpenFile(filepath.Join(tb.TempDir(), "floor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	var seq atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec, _ := json.Marshal(map[string]any{"id": seq.Add(1), "service": "noop", "status": "queued", "at": time.Now()})
		if _, err := f.Write(append(rec, '\n')); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if err := f.Sync(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if err := exec.Command(script).Run(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"succeeded"}`))
	}))
	srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	tb.Cleanup(srv.Close)
	return srv
}

// driveFloor is drive for the floor server: sync requests only.
func driveFloor(tb testing.TB, srv *httptest.Server, clients int, d time.Duration) result {
	tb.Helper()
	hc := srv.Client()
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(stop) {
				t0 := time.Now()
				resp, err := hc.Post(srv.URL+"/run", "application/json", strings.NewReader(`{}`))
				if err != nil {
					tb.Error(err)
					return
				}
				resp.Body.Close()
				l := time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					tb.Errorf("floor server: %s", resp.Status)
					return
				}
				mu.Lock()
				lat = append(lat, l)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	return result{accepted: len(lat), acceptedPerSec: float64(len(lat)) / el, completedPerSec: float64(len(lat)) / el,
		submitP50: pct(lat, 0.5), submitP99: pct(lat, 0.99), e2eP50: pct(lat, 0.5), e2eP99: pct(lat, 0.99)}
}

// bareExec is the no-op started with os/exec, one at a time.
func bareExec(tb testing.TB, script string, d time.Duration) time.Duration {
	tb.Helper()
	var lat []time.Duration
	for stop := time.Now().Add(d); time.Now().Before(stop); {
		t0 := time.Now()
		if err := exec.Command(script).Run(); err != nil {
			tb.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	return pct(lat, 0.5)
}

// BenchmarkLoad is `make bench-load`. It runs once whatever -benchtime
// says (the window is BENCH_LOAD_SECONDS) and prints its table on lines
// starting "load", "floor" and "ceiling".
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
	}
	b.StopTimer()
	d := window()
	counts := clientCounts(b)
	repo, script := noopRepo(b, filepath.Join(b.TempDir(), "repo"))
	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }

	say("load  reference: bare os/exec of the no-op, p50 %.2f ms", ms(bareExec(b, script, time.Second)))
	floor := floorServer(b, script)
	for _, n := range counts {
		say("floor sync  clients=%-3d %s", n, driveFloor(b, floor, n, d))
	}
	for _, c := range ceilings(b, d) {
		say("ceiling %-22s %8.1f/s (32 goroutines, tight loop)", c.name, c.perSec)
	}

	setups := []struct {
		name  string
		start func(testing.TB, string) *client.Client
	}{
		{"all-in-one", allInOne},
		{"distributed", distributed},
	}
	for _, s := range setups {
		cl := s.start(b, repo)
		for _, async := range []bool{true, false} {
			mode := "sync "
			if async {
				mode = "async"
			}
			for _, n := range counts {
				say("load  %-11s %s clients=%-3d %s", s.name, mode, n, drive(b, cl, n, async, d))
			}
		}
	}
}
