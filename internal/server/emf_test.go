package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/lease"
)

// parsedEMF is what CloudWatch reads from an EMF line, decoded without the
// production types so a renamed field fails here.
type parsedEMF struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	Cluster      *string  `json:"Cluster"`
	ActiveHolder *float64 `json:"ActiveHolder"`
	Node         string   `json:"Node"`
	Epoch        int64    `json:"Epoch"`
}

// emfLines parses every ActiveHolder line in out, failing on a line that
// mentions the metric but is not one JSON object.
func emfLines(t *testing.T, out string) []parsedEMF {
	t.Helper()
	var got []parsedEMF
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, `"_aws"`) {
			continue
		}
		var p parsedEMF
		dec := json.NewDecoder(strings.NewReader(l))
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("EMF line %q: %v", l, err)
		}
		if dec.More() {
			t.Fatalf("EMF line %q holds more than one JSON value", l)
		}
		got = append(got, p)
	}
	return got
}

func TestEMFLineShape(t *testing.T) {
	now := time.Date(2026, 12, 2, 15, 4, 5, 678_000_000, time.UTC)
	line, err := emfLine(now, "prod-eu", lease.Term{Holder: "gw-a", Epoch: 9})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(line), "}\n") || strings.Count(string(line), "\n") != 1 {
		t.Fatalf("got %q, want one JSON object and one newline", line)
	}
	ps := emfLines(t, string(line))
	if len(ps) != 1 {
		t.Fatalf("parsed %d lines, want 1", len(ps))
	}
	p := ps[0]
	if p.AWS.Timestamp != 1796223845678 {
		t.Errorf("timestamp: got %d want %d (ms since the epoch)", p.AWS.Timestamp, now.UnixMilli())
	}
	if len(p.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("CloudWatchMetrics: got %d groups want 1", len(p.AWS.CloudWatchMetrics))
	}
	g := p.AWS.CloudWatchMetrics[0]
	if g.Namespace != "Autogate" {
		t.Errorf("namespace: got %q want Autogate", g.Namespace)
	}
	if len(g.Dimensions) != 1 || len(g.Dimensions[0]) != 1 || g.Dimensions[0][0] != "Cluster" {
		t.Errorf("dimensions: got %v want [[Cluster]]", g.Dimensions)
	}
	if len(g.Metrics) != 1 || g.Metrics[0].Name != "ActiveHolder" || g.Metrics[0].Unit != "Count" {
		t.Errorf("metrics: got %+v want [{ActiveHolder Count}]", g.Metrics)
	}
	// EMF takes a dimension's and a metric's value from the root members
	// of the same name; without them CloudWatch drops the point.
	if p.Cluster == nil || *p.Cluster != "prod-eu" {
		t.Errorf("Cluster member: got %v want prod-eu", p.Cluster)
	}
	if p.ActiveHolder == nil || *p.ActiveHolder != 1 {
		t.Errorf("ActiveHolder member: got %v want 1", p.ActiveHolder)
	}
	if p.Node != "gw-a" || p.Epoch != 9 {
		t.Errorf("node/epoch: got %q/%d want gw-a/9", p.Node, p.Epoch)
	}
}

// The holder writes one line as its term starts and one per minute of
// (fake) time; a standby, and a node whose term ended, write none.
func TestEMFOnlyWhileActive(t *testing.T) {
	f := newFixture(t)
	// A duty that waits on nothing but the term, so the metric's minute
	// ticker is the only clock waiter.
	f.ld.duty = func(ctx context.Context, _ lease.Term) { <-ctx.Done() }
	f.ld.metric = &activeMetric{out: f.out, clk: f.clk, cluster: "c1", log: f.ld.log}
	count := func() int { return len(emfLines(t, f.out.String())) }

	// A standby: it observes the holder but never starts a term.
	f.ld.lead.observe(lease.Term{Holder: "n2", Epoch: 4})
	f.clk.Advance(5 * time.Minute)
	if n := count(); n != 0 {
		t.Fatalf("standby wrote %d EMF lines, want 0", n)
	}

	l := &fakeLease{epoch: 4}
	_, end, done := l.start(t, f.ld.callbacks())
	eventually(t, "the line at term start", func() bool { return count() == 1 })
	for want := 2; want <= 4; want++ {
		eventually(t, "the ticker to wait", func() bool { return f.clk.Waiters() == 1 })
		f.clk.Advance(59 * time.Second)
		time.Sleep(5 * time.Millisecond) // give a wrong early write the chance to show
		if n := count(); n != want-1 {
			t.Fatalf("after 59 s: %d lines, want %d (one a minute)", n, want-1)
		}
		f.clk.Advance(time.Second)
		eventually(t, "a line a minute", func() bool { return count() == want })
	}
	ps := emfLines(t, f.out.String())
	for i, p := range ps {
		if p.Node != "n1" || p.Epoch != 5 || *p.Cluster != "c1" {
			t.Errorf("line %d: node %q epoch %d cluster %q, want n1 5 c1", i, p.Node, p.Epoch, *p.Cluster)
		}
		if i > 0 && p.AWS.Timestamp-ps[i-1].AWS.Timestamp != time.Minute.Milliseconds() {
			t.Errorf("line %d is %d ms after the previous, want 60000", i, p.AWS.Timestamp-ps[i-1].AWS.Timestamp)
		}
	}

	end()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the term did not end")
	}
	f.clk.Advance(10 * time.Minute)
	time.Sleep(5 * time.Millisecond)
	if n := count(); n != 4 {
		t.Errorf("after the term: %d lines, want still 4", n)
	}
}

// A term that ends during set-up never reports active, so it writes no
// metric either.
func TestEMFNotForATermEndedDuringSetUp(t *testing.T) {
	f := newFixture(t)
	f.ld.metric = &activeMetric{out: f.out, clk: f.clk, cluster: "c1", log: f.ld.log}
	ctx, cancel := context.WithCancel(t.Context())
	f.ld.prepare = func(context.Context, lease.Term) { cancel() }
	f.ld.term(ctx, lease.Term{Holder: "n1", Epoch: 2})
	if n := len(emfLines(t, f.out.String())); n != 0 {
		t.Errorf("wrote %d EMF lines, want 0", n)
	}
}
