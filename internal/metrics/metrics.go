package metrics

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/autogate/autogate/internal/execution"
)

// The roles passed to New.
const (
	RoleGateway = "gateway"
	RoleRunner  = "runner"
	RoleLambda  = "lambda"
)

// otherStatus is the status label of a run recorded with a non-terminal or
// unknown status, so a wiring mistake shows up instead of adding a series.
const otherStatus = "other"

// runDurationBuckets spans a no-op service (tens of milliseconds, the
// dispatch benchmark) to a long tofu apply (an hour), in seconds.
var runDurationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// callsPerExecutionBuckets resolves the handful of calls a run should cost
// (claim, heartbeats, record, delete) one by one, then coarsens.
var callsPerExecutionBuckets = []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50}

// Metrics is one process's instruments on a private registry. Its methods
// are safe for concurrent use, and a nil *Metrics records nothing.
type Metrics struct {
	reg *prometheus.Registry

	runs              *prometheus.CounterVec
	runDuration       prometheus.Histogram
	runsInFlight      prometheus.Gauge
	queueMessages     *prometheus.GaugeVec
	deadLetters       prometheus.Gauge
	leaseActive       prometheus.Gauge
	leaseEpoch        prometheus.Gauge
	awsCalls          *prometheus.CounterVec
	awsAttempts       *prometheus.CounterVec
	callsPerExecution prometheus.Histogram
}

// New returns the instruments of one process. node (the node ID) and role
// (RoleGateway, RoleRunner or RoleLambda) become constant labels on every
// series, the Go runtime and process collectors included. Invalid UTF-8 in
// either is replaced rather than rejected, so New cannot fail.
func New(node, role string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autogate_runs_total",
			Help: "Executions this process ran to an end, by recorded status.",
		}, []string{"status"}),
		runDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autogate_run_duration_seconds",
			Help:    "Wall time of each run counted in autogate_runs_total, in seconds.",
			Buckets: runDurationBuckets,
		}),
		runsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autogate_runs_in_flight",
			Help: "Runs started and not yet ended.",
		}),
		queueMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autogate_queue_messages",
			Help: "Approximate work queue depth as last seen: visible (waiting) and in_flight (received, not deleted).",
		}, []string{"state"}),
		deadLetters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autogate_dead_letter_messages",
			Help: "Approximate dead-letter queue depth as last seen.",
		}),
		leaseActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autogate_lease_active",
			Help: "1 while this node holds the cluster lease, else 0.",
		}),
		leaseEpoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autogate_lease_epoch",
			Help: "Epoch of the last lease term this node held or observed.",
		}),
		awsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autogate_aws_api_calls_total",
			Help: "AWS API operations invoked, once per operation whatever the retries, by scope (execution, heartbeat, background).",
		}, []string{"aws_service", "operation", "outcome", "scope"}),
		awsAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autogate_aws_api_attempts_total",
			Help: "HTTP attempts made for AWS API operations, retries included.",
		}, []string{"aws_service", "operation", "outcome"}),
		callsPerExecution: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "autogate_aws_api_calls_per_execution",
			Help:    "AWS API calls one execution cost this process.",
			Buckets: callsPerExecutionBuckets,
		}),
	}
	for _, st := range execution.Statuses {
		if st.Terminal() {
			m.runs.WithLabelValues(string(st))
		}
	}
	m.queueMessages.WithLabelValues("visible")
	m.queueMessages.WithLabelValues("in_flight")

	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{
		"node": strings.ToValidUTF8(node, "\uFFFD"),
		"role": strings.ToValidUTF8(role, "\uFFFD"),
	}, m.reg)
	// The set is fixed and distinct, so registration fails only on a bug in
	// this file, which the tests would catch.
	wrapped.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.runs, m.runDuration, m.runsInFlight,
		m.queueMessages, m.deadLetters,
		m.leaseActive, m.leaseEpoch,
		m.awsCalls, m.awsAttempts, m.callsPerExecution,
	)
	return m
}

// Handler serves the registry in the Prometheus text format (the format
// is negotiated; a scraper without an Accept header gets text 0.0.4). Mount
// it at GET /metrics. A nil *Metrics yields a 404 handler.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// RunFinished counts one run that this process ended, by the status it
// recorded, and observes its duration. Pass the status the run ended in:
// a lost attempt that was re-queued for retry is execution.Lost, not the
// execution's new status. Non-terminal or unknown statuses are counted
// as "other". Negative durations are observed as 0.
func (m *Metrics) RunFinished(status execution.Status, d time.Duration) {
	if m == nil {
		return
	}
	label := otherStatus
	if status.Terminal() {
		label = string(status)
	}
	m.runs.WithLabelValues(label).Inc()
	m.runDuration.Observe(max(d, 0).Seconds())
}

// RunStarted adds one to autogate_runs_in_flight. Pair every call with
// RunEnded (defer it).
func (m *Metrics) RunStarted() {
	if m == nil {
		return
	}
	m.runsInFlight.Inc()
}

// RunEnded subtracts one from autogate_runs_in_flight.
func (m *Metrics) RunEnded() {
	if m == nil {
		return
	}
	m.runsInFlight.Dec()
}

// QueueDepth records the work queue's approximate depth as just seen:
// visible messages waiting for a runner and in-flight messages received
// but not yet deleted (what sqs.Queue.Depth returns).
func (m *Metrics) QueueDepth(visible, inFlight int) {
	if m == nil {
		return
	}
	m.queueMessages.WithLabelValues("visible").Set(float64(visible))
	m.queueMessages.WithLabelValues("in_flight").Set(float64(inFlight))
}

// DeadLetterDepth records the dead-letter queue's approximate depth as just
// seen (what sqs.Queue.DeadLetterDepth returns).
func (m *Metrics) DeadLetterDepth(n int) {
	if m == nil {
		return
	}
	m.deadLetters.Set(float64(n))
}

// LeaseState records whether this node holds the cluster lease and the
// epoch of the term concerned. Call it with true when a term starts and
// with false (same epoch) when it ends.
func (m *Metrics) LeaseState(active bool, epoch int64) {
	if m == nil {
		return
	}
	v := 0.0
	if active {
		v = 1
	}
	m.leaseActive.Set(v)
	m.leaseEpoch.Set(float64(epoch))
}

// ObserveExecutionCalls observes the number of AWS API calls one execution
// cost this process (usually CallCounter.Total).
func (m *Metrics) ObserveExecutionCalls(n int64) {
	if m == nil {
		return
	}
	m.callsPerExecution.Observe(float64(n))
}

// Heartbeat returns a context whose AWS calls count as scope="heartbeat"
// (see the package function Heartbeat); a method so that consumers reach it
// through their Meter interface.
func (m *Metrics) Heartbeat(ctx context.Context) context.Context { return Heartbeat(ctx) }

// TrackCalls attaches a new CallCounter to ctx, like WithCallCounter, and
// returns a function to call when the execution is over: the first call
// observes the counter's total in autogate_aws_api_calls_per_execution and
// every call returns that total. It lets a consumer count per execution
// through a small interface of standard types:
//
//	TrackCalls(ctx context.Context) (context.Context, func() int64)
func (m *Metrics) TrackCalls(ctx context.Context) (context.Context, func() int64) {
	ctx, cc := WithCallCounter(ctx)
	var once sync.Once
	var total int64
	return ctx, func() int64 {
		once.Do(func() {
			total = cc.Total()
			m.ObserveExecutionCalls(total)
		})
		return total
	}
}
