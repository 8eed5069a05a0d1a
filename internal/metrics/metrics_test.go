package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/autogate/autogate/internal/execution"
)

// scrape GETs m's handler like a Prometheus server without an Accept
// header and returns the body.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read /metrics body: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d, body %q", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: Content-Type %q, want text/plain; version=0.0.4…", ct)
	}
	return string(body)
}

// samples returns the sample lines of the metric family name (for a
// histogram, its _bucket, _sum and _count lines), in exposition order.
func samples(body, name string) []string {
	var out []string
	for line := range strings.Lines(body) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		metric, _, _ := strings.Cut(line, " ")
		metric, _, _ = strings.Cut(metric, "{")
		switch metric {
		case name, name + "_bucket", name + "_sum", name + "_count":
			out = append(out, line)
		}
	}
	return out
}

func TestHandlerSamples(t *testing.T) {
	const l = `node="n1",role="runner"`
	tests := []struct {
		name   string
		record func(m *Metrics)
		metric string
		want   []string
	}{
		{
			name:   "runs exported at zero from start",
			record: func(*Metrics) {},
			metric: "autogate_runs_total",
			want: []string{
				`autogate_runs_total{` + l + `,status="canceled"} 0`,
				`autogate_runs_total{` + l + `,status="failed"} 0`,
				`autogate_runs_total{` + l + `,status="lost"} 0`,
				`autogate_runs_total{` + l + `,status="succeeded"} 0`,
				`autogate_runs_total{` + l + `,status="timed_out"} 0`,
			},
		},
		{
			name: "runs by status, non-terminal as other",
			record: func(m *Metrics) {
				m.RunFinished(execution.Succeeded, time.Second)
				m.RunFinished(execution.Succeeded, time.Second)
				m.RunFinished(execution.Lost, time.Second)
				m.RunFinished(execution.Queued, time.Second)
				m.RunFinished("bogus", time.Second)
			},
			metric: "autogate_runs_total",
			want: []string{
				`autogate_runs_total{` + l + `,status="canceled"} 0`,
				`autogate_runs_total{` + l + `,status="failed"} 0`,
				`autogate_runs_total{` + l + `,status="lost"} 1`,
				`autogate_runs_total{` + l + `,status="other"} 2`,
				`autogate_runs_total{` + l + `,status="succeeded"} 2`,
				`autogate_runs_total{` + l + `,status="timed_out"} 0`,
			},
		},
		{
			name: "run duration histogram",
			record: func(m *Metrics) {
				m.RunFinished(execution.Succeeded, 300*time.Millisecond)
				m.RunFinished(execution.Failed, 90*time.Second)
				m.RunFinished(execution.Failed, -time.Second) // clock step: observed as 0
			},
			metric: "autogate_run_duration_seconds",
			want: []string{
				`autogate_run_duration_seconds_bucket{` + l + `,le="0.1"} 1`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="0.25"} 1`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="0.5"} 2`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="1"} 2`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="2.5"} 2`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="5"} 2`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="10"} 2`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="30"} 2`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="60"} 2`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="120"} 3`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="300"} 3`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="600"} 3`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="1800"} 3`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="3600"} 3`,
				`autogate_run_duration_seconds_bucket{` + l + `,le="+Inf"} 3`,
				`autogate_run_duration_seconds_sum{` + l + `} 90.3`,
				`autogate_run_duration_seconds_count{` + l + `} 3`,
			},
		},
		{
			name: "runs in flight",
			record: func(m *Metrics) {
				m.RunStarted()
				m.RunStarted()
				m.RunStarted()
				m.RunEnded()
			},
			metric: "autogate_runs_in_flight",
			want:   []string{`autogate_runs_in_flight{` + l + `} 2`},
		},
		{
			name:   "queue depth zero from start",
			record: func(*Metrics) {},
			metric: "autogate_queue_messages",
			want: []string{
				`autogate_queue_messages{` + l + `,state="in_flight"} 0`,
				`autogate_queue_messages{` + l + `,state="visible"} 0`,
			},
		},
		{
			name: "queue depth is the last seen",
			record: func(m *Metrics) {
				m.QueueDepth(40, 12)
				m.QueueDepth(7, 3)
			},
			metric: "autogate_queue_messages",
			want: []string{
				`autogate_queue_messages{` + l + `,state="in_flight"} 3`,
				`autogate_queue_messages{` + l + `,state="visible"} 7`,
			},
		},
		{
			name:   "dead letters",
			record: func(m *Metrics) { m.DeadLetterDepth(2) },
			metric: "autogate_dead_letter_messages",
			want:   []string{`autogate_dead_letter_messages{` + l + `} 2`},
		},
		{
			name:   "lease held",
			record: func(m *Metrics) { m.LeaseState(true, 4) },
			metric: "autogate_lease_active",
			want:   []string{`autogate_lease_active{` + l + `} 1`},
		},
		{
			name: "lease lost keeps the epoch",
			record: func(m *Metrics) {
				m.LeaseState(true, 4)
				m.LeaseState(false, 4)
			},
			metric: "autogate_lease_epoch",
			want:   []string{`autogate_lease_epoch{` + l + `} 4`},
		},
		{
			name: "lease lost is inactive",
			record: func(m *Metrics) {
				m.LeaseState(true, 4)
				m.LeaseState(false, 4)
			},
			metric: "autogate_lease_active",
			want:   []string{`autogate_lease_active{` + l + `} 0`},
		},
		{
			name: "calls per execution",
			record: func(m *Metrics) {
				m.ObserveExecutionCalls(5)
				m.ObserveExecutionCalls(7)
				m.ObserveExecutionCalls(60)
				_, done := m.TrackCalls(t.Context()) // no calls made: observes 0
				done()
				done() // observes once only
			},
			metric: "autogate_aws_api_calls_per_execution",
			want: []string{
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="1"} 1`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="2"} 1`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="3"} 1`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="4"} 1`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="5"} 2`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="6"} 2`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="8"} 3`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="10"} 3`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="15"} 3`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="20"} 3`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="30"} 3`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="50"} 3`,
				`autogate_aws_api_calls_per_execution_bucket{` + l + `,le="+Inf"} 4`,
				`autogate_aws_api_calls_per_execution_sum{` + l + `} 72`,
				`autogate_aws_api_calls_per_execution_count{` + l + `} 4`,
			},
		},
		{
			name:   "no AWS calls, no AWS series",
			record: func(*Metrics) {},
			metric: "autogate_aws_api_calls_total",
			want:   nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New("n1", RoleRunner)
			tt.record(m)
			got := samples(scrape(t, m), tt.metric)
			if !slices.Equal(got, tt.want) {
				t.Errorf("samples of %s:\ngot  %q\nwant %q", tt.metric, got, tt.want)
			}
		})
	}
}

func TestHandlerHelpAndType(t *testing.T) {
	body := scrape(t, New("n1", RoleGateway))
	tests := []struct {
		metric, typ string
	}{
		{"autogate_runs_total", "counter"},
		{"autogate_run_duration_seconds", "histogram"},
		{"autogate_runs_in_flight", "gauge"},
		{"autogate_queue_messages", "gauge"},
		{"autogate_dead_letter_messages", "gauge"},
		{"autogate_lease_active", "gauge"},
		{"autogate_lease_epoch", "gauge"},
		{"autogate_aws_api_calls_per_execution", "histogram"},
	}
	for _, tt := range tests {
		t.Run(tt.metric, func(t *testing.T) {
			want := "# TYPE " + tt.metric + " " + tt.typ + "\n"
			if !strings.Contains(body, want) {
				t.Errorf("scrape lacks %q", want)
			}
			if !strings.Contains(body, "# HELP "+tt.metric+" ") {
				t.Errorf("scrape lacks HELP for %s", tt.metric)
			}
		})
	}
	t.Run("runtime collectors carry the constant labels", func(t *testing.T) {
		got := samples(body, "go_goroutines")
		if len(got) != 1 || !strings.HasPrefix(got[0], `go_goroutines{node="n1",role="gateway"} `) {
			t.Errorf("go_goroutines samples: got %q, want one with node and role labels", got)
		}
	})
}

func TestRegistryIsPrivate(t *testing.T) {
	a, b := New("a", RoleRunner), New("b", RoleRunner)
	a.RunFinished(execution.Succeeded, time.Second)

	t.Run("other instance unaffected", func(t *testing.T) {
		got := samples(scrape(t, b), "autogate_runs_total")
		want := `autogate_runs_total{node="b",role="runner",status="succeeded"} 0`
		if !slices.Contains(got, want) {
			t.Errorf("got %q, want it to contain %q", got, want)
		}
	})
	t.Run("default registry untouched", func(t *testing.T) {
		mfs, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatalf("gather default registry: %v", err)
		}
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "autogate_") {
				t.Errorf("default registry has %s, want no autogate_ metrics", mf.GetName())
			}
		}
	})
}

func TestInvalidUTF8Labels(t *testing.T) {
	m := New("n\xff1", RoleLambda) // must not panic
	got := samples(scrape(t, m), "autogate_runs_in_flight")
	want := []string{"autogate_runs_in_flight{node=\"n\uFFFD1\",role=\"lambda\"} 0"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	// None of these may panic.
	m.RunStarted()
	m.RunEnded()
	m.RunFinished(execution.Succeeded, time.Second)
	m.QueueDepth(1, 2)
	m.DeadLetterDepth(3)
	m.LeaseState(true, 9)
	m.ObserveExecutionCalls(4)
	_, done := m.TrackCalls(t.Context())
	if got := done(); got != 0 {
		t.Errorf("TrackCalls total on nil Metrics: got %d, want 0", got)
	}
	if got := len(m.AWSAPIOptions()); got != 1 {
		t.Errorf("AWSAPIOptions on nil Metrics: got %d options, want 1", got)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics handler: got status %d, want 404", rec.Code)
	}
}
