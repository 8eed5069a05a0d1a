package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
)

// The lease holder's CloudWatch metric, in Embedded Metric Format: the
// active node (gateway or manager) writes one line on stdout as its term
// starts and one a minute while it lasts. ECS's awslogs driver ships
// stdout to CloudWatch Logs, which turns each line into a data point of
// Autogate/ActiveHolder{Cluster}, value 1, with no PutMetricData call and
// no IAM permission. The stacks' "no active gateway/manager" alarms fire
// when a minute passes with no point: no node held the lease, whether the
// tasks are down or all up as standbys (e.g. every renewal throttled).
const (
	emfNamespace  = "Autogate"
	emfMetricName = "ActiveHolder"
	// emfEvery is how often the active writes the line: CloudWatch's
	// 1-minute period, so each period of a held lease gets a point.
	emfEvery = time.Minute
)

// emfRecord is one EMF line: the _aws metadata names the metric and its
// dimension; the Cluster and ActiveHolder members carry their values.
// Node and Epoch are plain properties (searchable in Logs Insights, not
// dimensions, so they add no metric of their own).
type emfRecord struct {
	AWS          emfMeta `json:"_aws"`
	Cluster      string  `json:"Cluster"`
	ActiveHolder int     `json:"ActiveHolder"`
	Node         string  `json:"Node"`
	Epoch        int64   `json:"Epoch"`
}

type emfMeta struct {
	// Timestamp is milliseconds since the Unix epoch.
	Timestamp         int64            `json:"Timestamp"`
	CloudWatchMetrics []emfMetricGroup `json:"CloudWatchMetrics"`
}

type emfMetricGroup struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// emfLine is the EMF line (with its newline) saying term's holder is
// active in cluster at now.
func emfLine(now time.Time, cluster string, term lease.Term) ([]byte, error) {
	b, err := json.Marshal(emfRecord{
		AWS: emfMeta{Timestamp: now.UnixMilli(), CloudWatchMetrics: []emfMetricGroup{{
			Namespace: emfNamespace, Dimensions: [][]string{{"Cluster"}},
			Metrics: []emfMetric{{Name: emfMetricName, Unit: "Count"}},
		}}},
		Cluster: cluster, ActiveHolder: 1, Node: term.Holder, Epoch: term.Epoch,
	})
	if err != nil {
		return nil, fmt.Errorf("emf line: %w", err)
	}
	return append(b, '\n'), nil
}

// activeMetric writes the ActiveHolder line while a term lasts.
type activeMetric struct {
	out     io.Writer // stdout
	clk     clock.Clock
	cluster string
	log     *slog.Logger
}

// run writes one line at once and one every emfEvery until ctx ends.
// Each line goes out in a single Write, so it never interleaves with the
// other stdout lines.
func (m *activeMetric) run(ctx context.Context, term lease.Term) {
	for {
		line, err := emfLine(m.clk.Now(), m.cluster, term)
		if err == nil {
			_, err = m.out.Write(line)
		}
		if err != nil {
			m.log.Warn("write the active-holder metric", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.clk.After(emfEvery):
		}
		if ctx.Err() != nil {
			return // the term ended as the minute passed: no point for it
		}
	}
}
