package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/emulator"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
	"github.com/autogate/autogate/internal/wire"
)

// TestLoadKeepsLease (issue 17): 64 concurrent clients submit async no-op
// runs for 30 s to the only gateway of a cluster (`--execution queue` on
// DynamoDB Local, one runner, default lease settings). The active must
// never step down and never answer 503, while the backlog limit answers
// 429 to the excess and the open runs stay within the limit. Before the
// lease had its own connections and kept slow renewals, a 10 s burst of 32
// clients made the active depose itself in every trial.
func TestLoadKeepsLease(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 45 s")
	}
	const (
		clients    = 64
		maxBacklog = 200
	)
	load := 30 * time.Second
	if v, err := time.ParseDuration(os.Getenv("AUTOGATE_LOAD_DURATION")); err == nil && v > 0 {
		load = v
	}
	// The race detector multiplies the gateway's CPU time: this test is
	// about the product under load, not about data races (every other
	// process test covers those).
	usePlainBinary(t)
	d := newDistributedID(t, "load-1", 1, "--max-backlog", strconv.Itoa(maxBacklog), "--log-level", "info")
	a := d.active(-1)
	admin := d.client(a)
	d.setup(admin)
	d.startRunner(0, "--log-level", "info")
	if e, err := admin.Run(t.Context(), "noop", wire.RunRequest{}); err != nil || e.Status != "succeeded" {
		t.Fatalf("warm-up run: %v %+v", err, e)
	}
	// No retries: the test counts every answer itself.
	cl := admin.WithRetry(client.Retry{})

	// The backlog as the table holds it, sampled beside the load through a
	// client of the test's own.
	st, err := storedynamo.New(storedynamo.NewClient(emulator.AWSConfig(t, emulator.DynamoDB(t)), storedynamo.ClientOptions{}),
		storedynamo.Config{Table: d.table})
	if err != nil {
		t.Fatal(err)
	}
	cat := &catalog.Catalog{Store: st, Cluster: d.id}

	var accepted, busy, unavailable, other atomic.Int64
	var firstErr atomic.Value
	ctx, stop := context.WithTimeout(context.Background(), load)
	defer stop()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, err := cl.Run(ctx, "noop", wire.RunRequest{Async: true})
				switch st := client.StatusOf(err); {
				case err == nil:
					accepted.Add(1)
				case ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
				case st == http.StatusTooManyRequests:
					busy.Add(1)
					// More impatient than the CLI's Retry-After: keep the
					// excess coming.
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				case st == http.StatusServiceUnavailable:
					unavailable.Add(1)
					firstErr.CompareAndSwap(nil, err)
				default:
					other.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	var high int
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for ctx.Err() == nil {
			if n, err := cat.CountOpenExecutions(context.Background()); err == nil {
				high = max(high, n)
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	<-sampled

	logRaw, err := os.ReadFile(d.nodes[a].LogPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(logRaw)
	stepDowns := strings.Count(log, `"msg":"stepping down"`)
	slowRenewals := strings.Count(log, `"msg":"lease renewed"`)
	failedCalls := strings.Count(log, `"msg":"lease renewal call failed"`)
	t.Logf("%d clients for %v: %d accepted (%.0f/s), %d answered 429, %d answered 503, %d other errors; "+
		"step-downs %d, renewal rounds needing more than one call %d, failed renewal calls %d; backlog high-water %d (limit %d)",
		clients, load, accepted.Load(), float64(accepted.Load())/load.Seconds(), busy.Load(), unavailable.Load(), other.Load(),
		stepDowns, slowRenewals, failedCalls, high, maxBacklog)
	if stepDowns != 0 {
		var lines []string
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "lease") || strings.Contains(l, "stepping") || strings.Contains(l, "active") {
				lines = append(lines, l)
			}
		}
		t.Errorf("the active stepped down %d times under load; its lease log:\n%s", stepDowns, strings.Join(lines, "\n"))
	}
	if unavailable.Load() != 0 || other.Load() != 0 {
		t.Errorf("%d answers 503 and %d other errors, want none; first: %v", unavailable.Load(), other.Load(), firstErr.Load())
	}
	if busy.Load() == 0 {
		t.Errorf("no submission got 429: the load never reached the backlog limit %d", maxBacklog)
	}
	if accepted.Load() == 0 {
		t.Error("no submission was accepted")
	}
	// Admission reserves a place per submission, so only index lag lets
	// the table run past the limit; the concurrent submitters bound that.
	if high > maxBacklog+clients {
		t.Errorf("backlog high-water %d, over the limit %d by more than the %d clients", high, maxBacklog, clients)
	}
	if !d.ready(a) {
		t.Error("the gateway is no longer the active")
	}
}
