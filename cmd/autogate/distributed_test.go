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

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/proctest"
	sqsqueue "github.com/autogate/autogate/internal/queue/sqs/sqstest"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// Distributed execution with real processes: gateways on DynamoDB Local
// push to a fauxqs queue; `autogate runner` processes run the services.

type distributed struct {
	*cluster
	q       sqsqueue.Queues
	runners []*server
	repo    string
}

func newDistributed(t testing.TB, gateways int) *distributed {
	t.Helper()
	return newDistributedID(t, "ha-1", gateways)
}

// newDistributedID is newDistributed for cluster id, with extra gateway flags.
func newDistributedID(t testing.TB, id string, gateways int, extra ...string) *distributed {
	t.Helper()
	q := sqsqueue.New(t, sqsqueue.Options{MaxReceiveCount: 3, Visibility: 2 * time.Second})
	d := &distributed{q: q}
	d.cluster = newClusterID(t, id, gateways, append([]string{"--execution", "queue", "--queue-url", q.URL, "--dlq-url", q.DLQURL}, extra...)...)
	d.repo = filepath.Join(d.dir, "repo")
	gitRepo(t, d.repo, map[string]string{
		"noop.sh":  "#!/bin/sh\necho ran\n",
		"slow.sh":  "#!/bin/sh\nsleep \"${1:-2}\"\necho slow-done\n",
		"sleep.sh": "#!/bin/sh\nsleep 60\n",
	}, map[string]os.FileMode{"noop.sh": 0o755, "slow.sh": 0o755, "sleep.sh": 0o755})
	return d
}

// startRunner starts runner process i.
func (d *distributed) startRunner(i int, extra ...string) *server {
	d.t.Helper()
	dir := filepath.Join(d.dir, fmt.Sprintf("runner-%d", i))
	logPath := filepath.Join(dir, fmt.Sprintf("runner-%d.log", time.Now().UnixNano()))
	args := append([]string{"runner", "--cluster", d.id, "--table", d.table, "--queue-url", d.q.URL,
		"--node", fmt.Sprintf("runner-%d", i), "--data-dir", dir, "--concurrency", "4", "--heartbeat", "500ms",
		"--shutdown-grace", "10s", "--log-level", "debug"}, extra...)
	s := &server{Proc: proctest.Start(d.t, logPath, append(os.Environ(), d.env...), binPath, args...), t: d.t, dataDir: dir}
	s.waitLine("receiving from")
	d.runners = append(d.runners, s)
	return s
}

func (d *distributed) setup(cl *client.Client) {
	d.t.Helper()
	ctx := context.Background()
	if err := cl.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "r"}, URL: d.repo}); err != nil {
		d.t.Fatal(err)
	}
	for _, s := range []*resource.Service{
		{Meta: resource.Meta{Name: "noop"}, Type: resource.Executable, Repository: "r", Filename: "noop.sh"},
		{Meta: resource.Meta{Name: "slow"}, Type: resource.Executable, Repository: "r", Filename: "slow.sh"},
		{Meta: resource.Meta{Name: "slow-retry"}, Type: resource.Executable, Repository: "r", Filename: "slow.sh", Retryable: true},
		{Meta: resource.Meta{Name: "sleeper"}, Type: resource.Executable, Repository: "r", Filename: "sleep.sh"},
	} {
		if err := cl.Create(ctx, s); err != nil {
			d.t.Fatal(err)
		}
	}
}

// await waits up to 90 s for execution id to reach a terminal state.
func await(t testing.TB, cl *client.Client, id string) *wire.Execution {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		e, err := cl.Wait(context.Background(), id, 10*time.Second)
		if err != nil {
			t.Fatalf("wait %s: %v", id, err)
		}
		if e.Status.Terminal() {
			return e
		}
	}
	t.Fatalf("execution %s not finished within 90s", id)
	return nil
}

func runningOn(t *testing.T, cl *client.Client, id string) *wire.Execution {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		e, err := cl.Execution(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if e.Status == execution.Running {
			return e
		}
		tick(50 * time.Millisecond)
	}
	t.Fatalf("execution %s never started", id)
	return nil
}

func TestDistributed(t *testing.T) {
	d := newDistributed(t, 1)
	a := d.active(-1)
	cl := d.client(a)
	d.setup(cl)
	d.startRunner(0)
	ctx := context.Background()

	t.Run("gateway to queue to runner", func(t *testing.T) {
		e, err := cl.Run(ctx, "noop", wire.RunRequest{})
		if err != nil {
			t.Fatal(err)
		}
		e = await(t, cl, e.ID)
		if e.Status != execution.Succeeded || e.Node != "runner-0" || e.Stdout.Data != "ran\n" {
			t.Errorf("execution = %s on %s, stdout %q; want succeeded on runner-0", e.Status, e.Node, e.Stdout.Data)
		}
		nodes, err := cl.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, n := range nodes {
			kinds[n.Kind+"/"+n.Role] = true
		}
		if !kinds["runner/runner"] || !kinds["gateway/active"] {
			t.Errorf("get nodes = %+v, want the active gateway and the runner", nodes)
		}
	})

	t.Run("duplicate delivery runs once", func(t *testing.T) {
		e, err := cl.Run(ctx, "slow", wire.RunRequest{Async: true, Inputs: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		// Deliver the same envelope twice more, as SQS may.
		body := fmt.Sprintf(`{"v":1,"executionId":%q,"cluster":%q,"service":"slow","serviceVersion":1,"deadline":%q,"timeoutSeconds":300}`,
			e.ID, d.id, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		for range 2 {
			if _, err := d.q.Client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(d.q.URL), MessageBody: aws.String(body)}); err != nil {
				t.Fatal(err)
			}
		}
		e = await(t, cl, e.ID)
		if e.Status != execution.Succeeded || e.Attempt != 1 {
			t.Errorf("execution = %s attempt %d, want succeeded on the first and only attempt", e.Status, e.Attempt)
		}
	})

	t.Run("runner killed mid-run", func(t *testing.T) {
		for _, tt := range []struct {
			service string
			want    execution.Status
			attempt int
		}{
			{"slow", execution.Lost, 1},
			{"slow-retry", execution.Succeeded, 2},
		} {
			e, err := cl.Run(ctx, tt.service, wire.RunRequest{Async: true})
			if err != nil {
				t.Fatal(err)
			}
			r := runningOn(t, cl, e.ID)
			victim := d.runners[len(d.runners)-1]
			if r.Node != fmt.Sprintf("runner-%d", len(d.runners)-1) {
				t.Fatalf("running on %s", r.Node)
			}
			victim.Cmd.Process.Signal(syscall.SIGKILL)
			victim.Killed = true
			victim.wait()
			d.startRunner(len(d.runners))
			got := await(t, cl, e.ID)
			if got.Status != tt.want || got.Attempt != tt.attempt {
				t.Errorf("%s after kill -9: %s attempt %d (%s); want %s attempt %d", tt.service, got.Status, got.Attempt, got.Reason, tt.want, tt.attempt)
			}
		}
		lost, err := cl.Executions(ctx, client.ExecutionFilter{Status: "lost"})
		if err != nil || len(lost) != 1 {
			t.Errorf("get executions --status lost = %d, %v; want 1", len(lost), err)
		}
	})

	t.Run("graceful runner shutdown finishes the run", func(t *testing.T) {
		e, err := cl.Run(ctx, "slow", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		runningOn(t, cl, e.ID)
		victim := d.runners[len(d.runners)-1]
		victim.Cmd.Process.Signal(syscall.SIGTERM)
		if err := victim.wait(); err != nil {
			t.Errorf("runner exit after SIGTERM: %v", err)
		}
		got, err := cl.Execution(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != execution.Succeeded || got.Stdout.Data != "slow-done\n" {
			t.Errorf("after graceful shutdown: %s %q, want succeeded", got.Status, got.Stdout.Data)
		}
		d.startRunner(len(d.runners))
	})

	t.Run("cancel reaches the runner", func(t *testing.T) {
		e, err := cl.Run(ctx, "sleeper", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		runningOn(t, cl, e.ID)
		start := time.Now()
		if _, err := cl.Cancel(ctx, e.ID); err != nil {
			t.Fatal(err)
		}
		got := await(t, cl, e.ID)
		if got.Status != execution.Canceled {
			t.Errorf("after cancel: %s (%s), want canceled", got.Status, got.Reason)
		}
		t.Logf("cancel took %v to stop the service on its runner", time.Since(start))
	})

	t.Run("runner shutdown past its grace records the run lost", func(t *testing.T) {
		victim := d.runners[len(d.runners)-1]
		victim.stop()
		d.startRunner(len(d.runners), "--shutdown-grace", "1s")
		e, err := cl.Run(ctx, "sleeper", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatal(err)
		}
		runningOn(t, cl, e.ID)
		victim = d.runners[len(d.runners)-1]
		victim.Cmd.Process.Signal(syscall.SIGTERM)
		if err := victim.wait(); err != nil {
			t.Errorf("runner exit after SIGTERM: %v", err)
		}
		got, err := cl.Execution(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != execution.Lost {
			t.Errorf("after the grace period: %s (%s), want lost", got.Status, got.Reason)
		}
		d.startRunner(len(d.runners))
	})

	t.Run("poison message to the DLQ and redrive", func(t *testing.T) {
		before, _ := d.q.Count(t, d.q.DLQURL)
		if _, err := d.q.Client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(d.q.URL), MessageBody: aws.String("not an envelope")}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			if v, _ := d.q.Count(t, d.q.DLQURL); v == before+1 {
				break
			}
			if time.Now().After(deadline) {
				raw, _ := os.ReadFile(d.runners[len(d.runners)-1].LogPath)
				t.Fatalf("poison message never reached the DLQ; runner log:\n%s", raw)
			}
			tick(200 * time.Millisecond)
		}
		n, err := cl.Redrive(ctx, 10)
		if err != nil || n != before+1 {
			t.Fatalf("redrive = %d, %v; want %d moved", n, err, before+1)
		}
		if v, _ := d.q.Count(t, d.q.DLQURL); v != 0 {
			t.Errorf("DLQ still holds %d after redrive", v)
		}
	})
}

func TestDistributedGatewayFailover(t *testing.T) {
	d := newDistributed(t, 2)
	a := d.active(-1)
	tok := d.login(a)
	cl := d.clientWith(a, tok)
	d.setup(cl)
	d.startRunner(0)
	var ids []string
	for i := range 20 {
		if i == 10 {
			d.kill(a, syscall.SIGKILL)
			d.nodes[a].Killed = true
			d.nodes[a].wait()
			b := d.active(a)
			cl = d.clientWith(b, tok)
		}
		e, err := cl.Run(context.Background(), "noop", wire.RunRequest{Async: true})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		ids = append(ids, e.ID)
	}
	terminal := map[execution.Status]int{}
	for _, id := range ids {
		terminal[await(t, cl, id).Status]++
	}
	if terminal[execution.Succeeded] != len(ids) {
		t.Errorf("of %d accepted runs: %v; want all succeeded", len(ids), terminal)
	}
	all, err := cl.Executions(context.Background(), client.ExecutionFilter{Limit: 1000})
	if err != nil || len(all) != len(ids) {
		t.Errorf("the cluster records %d executions (%v), want exactly %d", len(all), err, len(ids))
	}
}

// BenchmarkDispatch runs a no-op executable service through one gateway, the
// SQS queue and 1, 2 or 4 runner processes (make bench-dispatch), on the
// binary built without -race. It reports executions per second, p50/p99
// queue-to-start and end-to-end latency, and the AWS API calls seen by the
// gateway's and runners' metrics:
//
//   - idle: before the runs, every node's calls over a quiet window
//     (BENCH_QUIET_SECONDS, default 25: longer than one 20 s long poll) as
//     calls per second per gateway and per runner (lease, node heartbeats,
//     sweeps, empty long polls);
//   - per execution: the execution's own path (scope "execution" and every
//     receive), the heartbeats of running executions (scope "heartbeat"),
//     and all calls of the run window less the idle rate times the window
//     (net), so background work is attributed apart, not spread over runs.
func BenchmarkDispatch(b *testing.B) {
	usePlainBinary(b)
	// An idle runner's calls are long polls of up to sqs.MaxWait (20 s),
	// counted when they return: a shorter window would miss them.
	quiet := 25 * time.Second
	if s, err := strconv.Atoi(os.Getenv("BENCH_QUIET_SECONDS")); err == nil && s > 0 {
		quiet = time.Duration(s) * time.Second
	}
	for _, runners := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("runners=%d", runners), func(b *testing.B) {
			d := newDistributed(b, 1)
			a := d.active(-1)
			cl := d.client(a)
			d.setup(cl)
			// metricURLs[0] is the gateway's, then one per runner.
			metricURLs := []string{d.nodes[a].url + "/metrics"}
			for i := range runners {
				r := d.startRunner(i, "--metrics-listen", "127.0.0.1:0", "--log-level", "warn")
				line := r.waitLine("metrics on")
				metricURLs = append(metricURLs, line[strings.Index(line, "http://"):])
			}
			// Warm every runner's checkout cache.
			for range 2 * runners {
				if e, err := cl.Run(context.Background(), "noop", wire.RunRequest{}); err != nil || e.Status != execution.Succeeded {
					b.Fatalf("warm-up: %v %+v", err, e)
				}
			}
			scrapeEach := func() []awsCalls {
				out := make([]awsCalls, len(metricURLs))
				for i, u := range metricURLs {
					out[i] = scrapeAWSCalls(b, u)
				}
				return out
			}
			sum := func(per []awsCalls) awsCalls {
				all := awsCalls{}
				for _, c := range per {
					for k, v := range c {
						all[k] += v
					}
				}
				return all
			}
			// The idle rate: nothing submitted, every node doing only its
			// background work.
			idle0, t0 := scrapeEach(), time.Now()
			tick(quiet)
			idle1, idleWin := scrapeEach(), time.Since(t0)
			var gwIdle, runnerIdle float64
			for i := range metricURLs {
				rate := idle1[i].sub(idle0[i]).total() / idleWin.Seconds()
				if i == 0 {
					gwIdle = rate
				} else {
					runnerIdle += rate / float64(runners)
				}
			}
			idleRate := gwIdle + runnerIdle*float64(runners)
			idleByKey := sum(idle1).sub(sum(idle0))

			before, winStart := sum(scrapeEach()), time.Now()
			var ids []string
			start := time.Now()
			for b.Loop() {
				e, err := cl.Run(context.Background(), "noop", wire.RunRequest{Async: true})
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, e.ID)
			}
			var q2s, e2e []time.Duration
			var last time.Time
			for _, id := range ids {
				e := await(b, cl, id)
				if e.Status != execution.Succeeded {
					b.Fatalf("%s %s: %s", id, e.Status, e.Reason)
				}
				q2s = append(q2s, e.StartedAt.Sub(e.CreatedAt))
				e2e = append(e2e, e.EndedAt.Sub(e.CreatedAt))
				if e.EndedAt.After(last) {
					last = *e.EndedAt
				}
			}
			b.StopTimer()
			delta, win := sum(scrapeEach()).sub(before), time.Since(winStart)
			pct := func(d []time.Duration, p float64) float64 {
				slices.Sort(d)
				return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
			}
			n := float64(len(ids))
			b.ReportMetric(n/last.Sub(start).Seconds(), "exec/s")
			b.ReportMetric(pct(q2s, 0.5), "q2s-p50-ms")
			b.ReportMetric(pct(q2s, 0.99), "q2s-p99-ms")
			b.ReportMetric(pct(e2e, 0.5), "e2e-p50-ms")
			b.ReportMetric(pct(e2e, 0.99), "e2e-p99-ms")
			// The execution's own path (what TestDistributedCallsPerExecution
			// bounds), then what runs alongside: heartbeats of running
			// executions; then every call of the window less the idle rate.
			path, _ := delta.perExecution(len(ids))
			var hb, bg float64
			for k, v := range delta {
				switch scope, op, _ := strings.Cut(k, " "); {
				case op == "SQS.ReceiveMessage":
				case scope == "heartbeat":
					hb += v
				case scope == "background":
					bg += v
				}
			}
			idleInWin := idleRate * win.Seconds()
			b.ReportMetric(path, "aws-calls/exec")
			b.ReportMetric(hb/n, "heartbeat-calls/exec")
			b.ReportMetric(bg/n, "background-calls/exec")
			b.ReportMetric((delta.total()-idleInWin)/n, "net-calls/exec")
			b.ReportMetric(gwIdle, "idle-calls/s/gateway")
			b.ReportMetric(runnerIdle, "idle-calls/s/runner")
			b.Logf("runners=%d: idle %.2f calls/s per gateway, %.2f per runner over %v: %s", runners, gwIdle, runnerIdle, idleWin.Round(time.Millisecond), idleByKey.oneLine())
			b.Logf("runners=%d: %d runs in %v: %.0f calls, of which %.0f the idle rate would have made: %s",
				runners, len(ids), win.Round(time.Millisecond), delta.total(), idleInWin, delta.oneLine())
		})
	}
}
