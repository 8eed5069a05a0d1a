package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// Issue 12 items 1 and 2 and issue 17 item 2, with real processes on
// DynamoDB Local (and fauxqs): executions under faults of the active
// gateway.

// faultHeartbeat is the heartbeat the pause test runs with: a run whose
// holder stopped is stale execution.StaleAfter(faultHeartbeat) after its
// last heartbeat.
const faultHeartbeat = time.Second

// lostHeartbeat is the heartbeat of the kill test, the product's default:
// long enough that the dead holder's heartbeat is still young when the new
// active takes over, so only a sweep that wakes when the attempt turns
// stale finds it.
const lostHeartbeat = execution.DefaultHeartbeat

// lostBound is how soon after its holder died a run must be declared lost
// (or re-queued): the stale-after policy from the last heartbeat, plus a
// take-over (the dead holder was the active, whose sweeper must be
// replaced: lease 2.4 s + a poll) and slack for a loaded machine running
// race-built binaries.
var lostBound = execution.StaleAfter(lostHeartbeat) + 3*time.Second + 5*time.Second

// setupHold creates repository "hold" and services "hold" (sleeps secs s)
// and "hold-retry" (the same, retryable).
func setupHold(t testing.TB, cl *client.Client, dir string, secs int) {
	t.Helper()
	repoDir := filepath.Join(dir, fmt.Sprintf("hold-repo-%d", time.Now().UnixNano()))
	gitRepo(t, repoDir, map[string]string{"hold.sh": fmt.Sprintf("#!/bin/sh\nsleep %d\necho held\n", secs)},
		map[string]os.FileMode{"hold.sh": 0o755})
	ctx := context.Background()
	if err := cl.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "hold"}, URL: repoDir}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*resource.Service{
		{Meta: resource.Meta{Name: "hold"}, Type: resource.Executable, Repository: "hold", Filename: "hold.sh"},
		{Meta: resource.Meta{Name: "hold-retry"}, Type: resource.Executable, Repository: "hold", Filename: "hold.sh", Retryable: true},
	} {
		if err := cl.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

// byID lists the executions (up to 1000) by ID.
func byID(t testing.TB, cl *client.Client) map[string]*wire.Execution {
	t.Helper()
	es, err := cl.Executions(context.Background(), client.ExecutionFilter{Limit: 1000})
	if err != nil {
		t.Fatalf("list executions: %v", err)
	}
	m := make(map[string]*wire.Execution, len(es))
	for _, e := range es {
		m[e.ID] = e
	}
	return m
}

// percentile is the p-quantile (0..1) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	return ds[int(p*float64(len(ds)-1))]
}

// killActiveLocal waits until `running` of the runs ids run on the active
// gateway of c (local execution), kills it with SIGKILL and returns, per
// run that was running there, how long after the kill it was seen lost or
// re-queued (an error for one not seen so within bound), the new active's
// client and the killed node's index.
func killActiveLocal(t testing.TB, c *cluster, tok string, ids []string, running int, bound time.Duration) ([]time.Duration, *client.Client, int) {
	t.Helper()
	a := c.active(-1)
	cl := c.clientWith(a, tok)
	dead := fmt.Sprintf("gw-%d", a)
	var held []string
	for deadline := time.Now().Add(60 * time.Second); len(held) < running; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d runs running on %s within 60s", len(held), running, dead)
		}
		held = held[:0]
		all := byID(t, cl)
		for _, id := range ids {
			if e := all[id]; e != nil && e.Status == execution.Running && e.Node == dead {
				held = append(held, id)
			}
		}
		tick(50 * time.Millisecond)
	}
	c.kill(a, syscall.SIGKILL)
	killed := time.Now()
	c.nodes[a].Killed = true
	_ = c.nodes[a].wait() // killed: the error says so
	b := c.active(a)
	cl = c.clientWith(b, tok)
	seen := map[string]time.Duration{}
	for len(seen) < len(held) {
		if time.Since(killed) > bound {
			break
		}
		all := byID(t, cl)
		for _, id := range held {
			if _, ok := seen[id]; ok {
				continue
			}
			if e := all[id]; e != nil && !(e.Status == execution.Running && e.Node == dead) {
				seen[id] = time.Since(killed)
			}
		}
		tick(50 * time.Millisecond)
	}
	var times []time.Duration
	for _, id := range held {
		d, ok := seen[id]
		if !ok {
			t.Errorf("run %s still running on the dead gateway %s %v after kill -9", id, dead, time.Since(killed).Round(time.Millisecond))
			continue
		}
		times = append(times, d)
	}
	slices.Sort(times)
	return times, cl, a
}

// Issue 12 item 1: kill -9 of the active gateway with local runs in flight
// (and a backlog in its in-process queue): the new active declares each
// run the dead one held lost, or re-queues it when retryable, within
// lostBound of the kill, whatever the sweep interval (30 s here), and no run
// is left non-terminal.
func TestLocalKillActiveLeavesNothingStuck(t *testing.T) {
	c := newClusterID(t, "stuck-1", 2, "--heartbeat", lostHeartbeat.String(), "--concurrency", "4")
	a := c.active(-1)
	tok := c.login(a)
	cl := c.clientWith(a, tok)
	setupHold(t, cl, c.dir, 4)
	var ids []string
	retry := map[string]bool{}
	for i := range 8 { // 4 run, 4 wait in the in-process queue
		svc := "hold"
		if i%2 == 1 {
			svc = "hold-retry"
		}
		// A request key lets the client re-send a submission that a
		// loaded machine's lease hiccup answered 503, with no duplicate.
		e, err := cl.Run(context.Background(), svc, wire.RunRequest{Async: true, RequestKey: fmt.Sprintf("stuck-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
		retry[e.ID] = svc == "hold-retry"
	}
	times, cl, _ := killActiveLocal(t, c, tok, ids, 4, 2*lostBound)
	if len(times) > 0 {
		t.Logf("holder's death → lost or re-queued: %d runs, min %v, p50 %v, max %v (bound %v)", len(times),
			times[0].Round(time.Millisecond), percentile(times, 0.5).Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond), lostBound)
		if worst := times[len(times)-1]; worst > lostBound {
			t.Errorf("a run was declared lost %v after its holder died, over the bound %v", worst, lostBound)
		}
	}
	// Everything ends: lost (not retryable), or re-run and succeeded, or
	// run from the backlog by the new active.
	deadline := time.Now().Add(90 * time.Second)
	for {
		all := byID(t, cl)
		open := 0
		for _, id := range ids {
			if e := all[id]; e == nil || !e.Status.Terminal() {
				open++
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d runs still not terminal 90s after the take-over", open, len(ids))
		}
		tick(200 * time.Millisecond)
	}
	counts := map[execution.Status]int{}
	for id, e := range byID(t, cl) {
		if !slices.Contains(ids, id) {
			continue
		}
		counts[e.Status]++
		if e.Status == execution.Lost && retry[id] {
			t.Errorf("retryable run %s ended lost after its first attempt: %s", id, e.Reason)
		}
	}
	t.Logf("after the take-over: %v", counts)
	if counts[execution.Lost] == 0 || counts[execution.Succeeded] == 0 {
		t.Errorf("outcomes %v: want the dead holder's non-retryable runs lost and the rest succeeded", counts)
	}
}

// Issue 12 item 2: the active, paused (SIGSTOP) past its lease with a
// backlog in its in-process queue and then resumed, starts none of it: no
// run has the deposed gateway as its node with a start after the take-over.
func TestLocalPausedActiveStartsNothing(t *testing.T) {
	c := newClusterID(t, "fence-1", 2, "--heartbeat", faultHeartbeat.String(), "--concurrency", "1")
	a := c.active(-1)
	tok := c.login(a)
	cl := c.clientWith(a, tok)
	setupHold(t, cl, c.dir, 1)
	var ids []string
	for range 8 { // 1 runs, 7 wait in a's in-process queue
		e, err := cl.Run(context.Background(), "hold", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	deposed := fmt.Sprintf("gw-%d", a)
	c.kill(a, syscall.SIGSTOP)
	b := c.active(a)
	takeover := time.Now()
	// Past the lease and past the stale-after policy of the paused run.
	tick(execution.StaleAfter(faultHeartbeat) + time.Second)
	c.kill(a, syscall.SIGCONT)
	resumed := time.Now()
	clB := c.clientWith(b, tok)
	deadline := time.Now().Add(90 * time.Second)
	var all map[string]*wire.Execution
	for {
		all = byID(t, clB)
		open := 0
		for _, id := range ids {
			if e := all[id]; e == nil || !e.Status.Terminal() {
				open++
			}
		}
		if open == 0 && time.Since(resumed) > 3*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d runs not terminal 90s after the take-over", open, len(ids))
		}
		tick(200 * time.Millisecond)
	}
	late := 0
	counts := map[string]int{}
	for _, id := range ids {
		e := all[id]
		counts[e.Node+" "+string(e.Status)]++
		if e.Node == deposed && e.StartedAt != nil && e.StartedAt.After(takeover) {
			late++
			t.Errorf("run %s started on the deposed gateway %s at %v, %v after the take-over", id, deposed,
				e.StartedAt.Format(time.StampMilli), e.StartedAt.Sub(takeover).Round(time.Millisecond))
		}
	}
	t.Logf("runs by node and status: %v; started by the deposed gateway after the take-over: %d", counts, late)
}

// queueCount reads how many messages the work queue holds (visible, in
// flight and delayed).
func queueCount(t *testing.T, d *distributed) int {
	t.Helper()
	out, err := d.q.Client.GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(d.q.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("queue attributes %v: %v", out.Attributes, err)
		}
		n += k
	}
	return n
}

// Issue 17 item 2: a take-over with queued runs whose messages are still in
// the queue (no runner up yet) sends no duplicates, at the take-over or in
// the sweeps after it, well past the time after which a message is
// presumed lost; the runs then succeed once each.
func TestDistributedTakeoverSendsNoDuplicates(t *testing.T) {
	t.Setenv("AUTOGATE_SWEEP_INTERVAL", "1s") // gateways read it; the queue's visibility is 2 s
	d := newDistributedID(t, "dup-1", 2)
	a := d.active(-1)
	tok := d.login(a)
	cl := d.clientWith(a, tok)
	d.setup(cl)
	const runs = 10
	var ids []string
	for range runs {
		e, err := cl.Run(context.Background(), "noop", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	if n := queueCount(t, d); n != runs {
		t.Fatalf("queue holds %d messages after %d submissions", n, runs)
	}
	d.kill(a, syscall.SIGKILL)
	d.nodes[a].Killed = true
	_ = d.nodes[a].wait()
	b := d.active(a)
	cl = d.clientWith(b, tok)
	// Watch past the presumed-lost time (visibility 2 s + 5 s) and a few
	// 1 s sweeps of the new active.
	most := 0
	for end := time.Now().Add(2*time.Second + 5*time.Second + 4*time.Second); time.Now().Before(end); {
		most = max(most, queueCount(t, d))
		tick(250 * time.Millisecond)
	}
	t.Logf("messages in the queue after the take-over: at most %d for %d queued runs", most, runs)
	if most != runs {
		t.Errorf("the queue held up to %d messages for %d queued runs: the take-over sent duplicates", most, runs)
	}
	d.startRunner(0)
	for _, id := range ids {
		if e := await(t, cl, id); e.Status != execution.Succeeded || e.Attempt != 1 {
			t.Errorf("run %s: %s attempt %d (%s); want succeeded at the first attempt", id, e.Status, e.Attempt, e.Reason)
		}
	}
}

// BenchmarkHolderDeath is the bound of issue 12: per iteration it kills the
// active gateway of a two-gateway cluster (local execution, DynamoDB Local)
// with SIGKILL while it runs 4 services, and times until each of those runs
// is declared lost by the new active; then it restarts the killed gateway
// as a standby. It reports p50/p99/max over all runs, per heartbeat of
// BENCH_HEARTBEAT, a comma-separated list (default "10s,default": the former
// default as the baseline, then the product's default, started without
// --heartbeat), each a sub-benchmark on a cluster of its own in the same
// run. A run is lost execution.StaleAfter(heartbeat) after its holder's last
// heartbeat (make bench-lost). The binary is built without -race.
func BenchmarkHolderDeath(b *testing.B) {
	usePlainBinary(b)
	list := os.Getenv("BENCH_HEARTBEAT")
	if list == "" {
		list = "10s,default"
	}
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		hb, flags := execution.DefaultHeartbeat, []string{"--concurrency", "4"}
		if v != "default" {
			var err error
			if hb, err = time.ParseDuration(v); err != nil {
				b.Fatalf("BENCH_HEARTBEAT %q: %v", v, err)
			}
			flags = append(flags, "--heartbeat", hb.String())
		}
		b.Run("heartbeat="+v, func(b *testing.B) { benchHolderDeath(b, hb, flags) })
	}
}

// benchHolderDeath is one BenchmarkHolderDeath heartbeat: the gateways run
// with flags, whose heartbeat is hb.
func benchHolderDeath(b *testing.B, hb time.Duration, flags []string) {
	c := newClusterID(b, "death-"+hb.String(), 2, flags...)
	a := c.active(-1)
	tok := c.login(a)
	setupHold(b, c.clientWith(a, tok), c.dir, 600)
	var times []time.Duration
	for b.Loop() {
		a := c.active(-1)
		cl := c.clientWith(a, tok)
		var ids []string
		for range 4 {
			e, err := cl.Run(context.Background(), "hold", wire.RunRequest{Async: true})
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, e.ID)
		}
		addr := strings.TrimPrefix(c.nodes[a].url, "https://")
		ts, _, killed := killActiveLocal(b, c, tok, ids, 4, execution.StaleAfter(hb)+time.Minute)
		times = append(times, ts...)
		c.nodes[killed] = c.start(killed, addr)
	}
	if len(times) == 0 {
		b.Fatal("no run was declared lost")
	}
	slices.Sort(times)
	b.ReportMetric(percentile(times, 0.5).Seconds(), "p50-s")
	b.ReportMetric(percentile(times, 0.99).Seconds(), "p99-s")
	b.ReportMetric(times[len(times)-1].Seconds(), "max-s")
	b.Logf("holder's death → lost, heartbeat %v (stale after %v), %d runs: p50 %v p99 %v max %v", hb, execution.StaleAfter(hb), len(times),
		percentile(times, 0.5).Round(time.Millisecond), percentile(times, 0.99).Round(time.Millisecond), times[len(times)-1].Round(time.Millisecond))
}
