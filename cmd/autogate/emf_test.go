package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/emulator"
)

// emfPoint is what CloudWatch reads from an ActiveHolder line.
type emfPoint struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct{ Name, Unit string }
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	Cluster      string  `json:"Cluster"`
	ActiveHolder float64 `json:"ActiveHolder"`
	Node         string  `json:"Node"`
	Epoch        int64   `json:"Epoch"`
}

// initTable creates the DynamoDB table table on the emulator.
func initTable(t testing.TB, table string) {
	t.Helper()
	initCmd := exec.Command(binPath, "init", "table", "--table", table)
	initCmd.Env = append(os.Environ(), emulator.Env()...)
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("autogate init table: %v\n%s", err, out)
	}
}

// isEMF reports whether a stdout line is an Embedded Metric Format one.
func isEMF(l string) bool { return strings.Contains(l, `"_aws"`) }

// parseEMF decodes an EMF line, which must be one JSON object.
func parseEMF(t *testing.T, l string) emfPoint {
	t.Helper()
	var p emfPoint
	dec := json.NewDecoder(strings.NewReader(l))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || dec.More() {
		t.Fatalf("EMF line %q: not one JSON object of the expected shape (%v)", l, err)
	}
	if len(p.AWS.CloudWatchMetrics) != 1 || p.AWS.CloudWatchMetrics[0].Namespace != "Autogate" ||
		len(p.AWS.CloudWatchMetrics[0].Metrics) != 1 || p.AWS.CloudWatchMetrics[0].Metrics[0].Name != "ActiveHolder" ||
		p.ActiveHolder != 1 {
		t.Fatalf("EMF line %q: want Autogate/ActiveHolder = 1", l)
	}
	return p
}

// emfLinesFor collects, for d, the EMF lines s prints; the other lines
// stay for waitLine.
func emfLinesFor(s *server, d time.Duration) []string { return s.TakeLines(d, isEMF) }

// TestClusterEMFOnlyFromActive: with --emf-metrics, a real 2-gateway
// cluster's active prints the ActiveHolder line as its term starts and the
// standby prints none; after kill -9 of the active, the new active prints
// it for its own (later) term. This is what the stacks' no-active-gateway
// alarm counts.
func TestClusterEMFOnlyFromActive(t *testing.T) {
	c := newClusterWith(t, 2, "--emf-metrics")
	a := c.active(-1)
	b := 1 - a
	first := parseEMF(t, c.nodes[a].waitLine(`"_aws"`))
	if first.Cluster != c.id || first.Node != fmt.Sprintf("gw-%d", a) || first.Epoch < 1 {
		t.Errorf("active's point: cluster %q node %q epoch %d, want %s %s ≥1", first.Cluster, first.Node, first.Epoch, c.id, fmt.Sprintf("gw-%d", a))
	}
	if age := time.Since(time.UnixMilli(first.AWS.Timestamp)); age < 0 || age > time.Minute {
		t.Errorf("timestamp %d is %v old, want the term's start", first.AWS.Timestamp, age)
	}
	// The standby has been up as long; a few more seconds of standby.
	if got := emfLinesFor(c.nodes[b], 3*time.Second); len(got) != 0 {
		t.Fatalf("the standby printed EMF lines: %q", got)
	}
	if !c.ready(a) || c.ready(b) {
		t.Fatalf("roles changed while watching: node %d ready %v, node %d ready %v", a, c.ready(a), b, c.ready(b))
	}

	c.kill(a, syscall.SIGKILL)
	c.nodes[a].Killed = true
	c.nodes[a].wait()
	if got := c.active(a); got != b {
		t.Fatalf("new active %d, want %d", got, b)
	}
	next := parseEMF(t, c.nodes[b].waitLine(`"_aws"`))
	if next.Cluster != c.id || next.Node != fmt.Sprintf("gw-%d", b) || next.Epoch <= first.Epoch {
		t.Errorf("new active's point: cluster %q node %q epoch %d, want %s %s >%d", next.Cluster, next.Node, next.Epoch, c.id, fmt.Sprintf("gw-%d", b), first.Epoch)
	}
	if next.AWS.Timestamp < first.AWS.Timestamp {
		t.Errorf("new active's timestamp %d before the old one's %d", next.AWS.Timestamp, first.AWS.Timestamp)
	}
}

// TestManagerEMFOnlyFromActive: the same for two managers, turned on the
// way the manager stack does (AUTOGATE_MANAGER_EMF_METRICS=true); the
// point's Cluster is the manager's namespace, which the stack's
// no-active-manager alarm watches.
func TestManagerEMFOnlyFromActive(t *testing.T) {
	requireManagerCmd(t, binPath)
	emulator.DynamoDB(t)
	dir := t.TempDir()
	table := fmt.Sprintf("mgremf%d", time.Now().UnixNano())
	initTable(t, table)
	env := append(emulator.Env(), "AUTOGATE_MANAGER_EMF_METRICS=true")
	mgrs := make([]*server, 2)
	for i := range mgrs {
		mgrs[i] = startManager(t, binPath, filepath.Join(dir, fmt.Sprintf("mgr-%d", i)), env, "--store", "dynamodb",
			"--table", table, "--node", fmt.Sprintf("mgr-%d", i), "--plaintext",
			"--admin-password-file", filepath.Join(dir, "admin-password"))
	}
	ready := func(i int) bool {
		resp, err := http.Get(mgrs[i].url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	activeOf := func(candidates ...int) int {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			for _, i := range candidates {
				if ready(i) {
					return i
				}
			}
			tick(20 * time.Millisecond)
		}
		t.Fatal("no active manager within 30s")
		return -1
	}
	a := activeOf(0, 1)
	b := 1 - a
	first := parseEMF(t, mgrs[a].waitLine(`"_aws"`))
	if first.Cluster != "manager" || first.Node != fmt.Sprintf("mgr-%d", a) {
		t.Errorf("active manager's point: cluster %q node %q, want manager mgr-%d", first.Cluster, first.Node, a)
	}
	if got := emfLinesFor(mgrs[b], 3*time.Second); len(got) != 0 {
		t.Fatalf("the standby manager printed EMF lines: %q", got)
	}
	if err := mgrs[a].Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	mgrs[a].Killed = true
	mgrs[a].wait()
	if got := activeOf(b); got != b {
		t.Fatalf("new active manager %d, want %d", got, b)
	}
	next := parseEMF(t, mgrs[b].waitLine(`"_aws"`))
	if next.Cluster != "manager" || next.Node != fmt.Sprintf("mgr-%d", b) || next.Epoch <= first.Epoch {
		t.Errorf("new active manager's point: cluster %q node %q epoch %d, want manager mgr-%d >%d",
			next.Cluster, next.Node, next.Epoch, b, first.Epoch)
	}
}
