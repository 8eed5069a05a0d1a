//go:build e2e

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// TestFiveModels is the end-to-end suite of the five deployment models of
// the seed document (build tag e2e: `make test` and `make e2e-local` set
// it), with real autogate processes driven through the API:
//
//  1. all-in-one on the embedded store;
//  2. active/standby gateways on DynamoDB, executing locally, with a forced
//     failover (kill -9 of the active) during load;
//  3. distributed execution: a gateway, SQS and ECS-style runner processes;
//  4. HA + distributed: two gateways and two runners, one of each killed
//     during load;
//  5. two clusters and a manager, one cluster sharing the manager's table:
//     each cluster sees only its own resources.
//
// Per model it prints runs accepted, succeeded, lost (with reasons),
// unaccounted, stuck (not terminal at the end) and late (started by a node
// after its term or registration ended: a gateway or runner the model killed
// or paused), the last three of which must be zero: every run the API
// accepted reaches exactly one terminal state, recorded once, and no node
// acts after it was deposed. AWS endpoints come from the SDK's
// standard environment (make e2e-local points them at LocalStack); without
// one the test starts DynamoDB Local and fauxqs itself. The cluster IDs
// come from AUTOGATE_E2E_CLUSTERS and the region from AWS_REGION.
func TestFiveModels(t *testing.T) {
	requireTool(t, "git")
	ids := e2eClusters(t)
	t.Run("1 all-in-one", func(t *testing.T) {
		base := t.TempDir()
		srv := startServer(t, filepath.Join(base, "data"), base)
		srv.waitLine("active")
		cl := loginDirect(t, srv.url, filepath.Join(base, "data"))
		setupModel(t, cl, base)
		tl := &tally{model: "1 all-in-one"}
		for i := range 20 {
			tl.submit(t, cl, "noop", i%2 == 0)
		}
		tl.report(t, cl)
	})

	t.Run("2 active/standby with a failover", func(t *testing.T) {
		c := newClusterID(t, ids[0], 2, "--heartbeat", "500ms")
		a := c.active(-1)
		tok := c.login(a)
		cl := c.clientWith(a, tok)
		setupModel(t, cl, c.dir)
		tl := &tally{model: "2 active/standby"}
		for i := range 30 {
			if i == 15 {
				tl.nodeEnded(fmt.Sprintf("gw-%d", a))
				c.kill(a, syscall.SIGKILL)
				c.nodes[a].Killed = true
				c.nodes[a].wait()
				cl = c.clientWith(c.active(a), tok)
			}
			tl.submit(t, cl, "short", true)
		}
		tl.report(t, cl)
	})

	t.Run("3 distributed", func(t *testing.T) {
		d := newDistributedID(t, ids[0], 1)
		cl := d.client(d.active(-1))
		setupModel(t, cl, d.dir)
		d.startRunner(0)
		d.startRunner(1)
		tl := &tally{model: "3 distributed"}
		for i := range 30 {
			tl.submit(t, cl, "short", i%3 == 0)
		}
		tl.report(t, cl)
	})

	t.Run("4 HA + distributed, a gateway and a runner killed", func(t *testing.T) {
		d := newDistributedID(t, ids[0], 2)
		a := d.active(-1)
		tok := d.login(a)
		cl := d.clientWith(a, tok)
		setupModel(t, cl, d.dir)
		d.startRunner(0)
		d.startRunner(1)
		tl := &tally{model: "4 HA + distributed"}
		for i := range 40 {
			switch i {
			case 10:
				r := d.runners[0]
				tl.nodeEnded("runner-0")
				r.Cmd.Process.Signal(syscall.SIGKILL)
				r.Killed = true
				r.wait()
			case 20:
				tl.nodeEnded(fmt.Sprintf("gw-%d", a))
				d.kill(a, syscall.SIGKILL)
				d.nodes[a].Killed = true
				d.nodes[a].wait()
				cl = d.clientWith(d.active(a), tok)
			}
			tl.submit(t, cl, "short", true)
		}
		tl.report(t, cl)
	})

	t.Run("5 two clusters and a manager", func(t *testing.T) {
		m := newManagerEnvIDs(t, ids[1], ids[2])
		ctx := context.Background()
		for _, id := range []string{ids[1], ids[2]} {
			cl := m.clusterClient(id)
			setupModel(t, cl, m.dir)
			// A resource only this cluster has.
			if err := cl.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "only-" + id}, URL: "/srv/" + id}); err != nil {
				t.Fatal(err)
			}
			tl := &tally{model: "5 multi-cluster " + id}
			for i := range 10 {
				tl.submit(t, cl, "short", i%2 == 0)
			}
			tl.report(t, cl)
		}
		for id, other := range map[string]string{ids[1]: ids[2], ids[2]: ids[1]} {
			if _, err := m.clusterClient(id).Get(ctx, resource.KindRepository, "only-"+other); client.StatusOf(err) != 404 {
				t.Errorf("cluster %s sees %s's resource (err %v)", id, other, err)
			}
		}
	})
}

// e2eClusters returns the suite's three cluster IDs: AUTOGATE_E2E_CLUSTERS
// (comma-separated: the cluster of models 2 to 4, then model 5's cluster
// on the manager's table and its embedded-store cluster), by default
// ha-1,dyn-1,emb-1.
func e2eClusters(t *testing.T) []string {
	t.Helper()
	v := os.Getenv("AUTOGATE_E2E_CLUSTERS")
	if v == "" {
		v = "ha-1,dyn-1,emb-1"
	}
	ids := strings.Split(v, ",")
	if len(ids) != 3 || ids[1] == ids[2] {
		t.Fatalf("AUTOGATE_E2E_CLUSTERS=%q: want three cluster IDs, the last two different", v)
	}
	for _, id := range ids {
		if err := resource.ValidateCluster(id); err != nil {
			t.Fatalf("AUTOGATE_E2E_CLUSTERS: %v", err)
		}
	}
	return ids
}

// loginDirect logs in to an all-in-one gateway with its first-start files.
func loginDirect(t *testing.T, url, dataDir string) *client.Client {
	t.Helper()
	ca := filepath.Join(dataDir, "tls", "tls.crt")
	anon, err := client.New(url, "", client.TLS{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(filepath.Join(dataDir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := anon.Login(context.Background(), "admin", strings.TrimSpace(string(pw)))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(url, resp.Token, client.TLS{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// clusterClient returns a client routed through the manager to cluster id.
func (m *managerEnv) clusterClient(id string) *client.Client {
	m.t.Helper()
	cl, err := client.New(m.mgr.url, m.mgrToken, client.TLS{CAFile: m.mgrCA})
	if err != nil {
		m.t.Fatal(err)
	}
	return cl.Cluster(id)
}

// setupModel creates the services the suite runs, from a fresh git repo.
func setupModel(t *testing.T, cl *client.Client, dir string) {
	t.Helper()
	repo := filepath.Join(dir, fmt.Sprintf("model-repo-%d", time.Now().UnixNano()))
	gitRepo(t, repo, map[string]string{
		"noop.sh":  "#!/bin/sh\necho ok\n",
		"short.sh": "#!/bin/sh\nsleep 0.2\necho ok\n",
	}, map[string]os.FileMode{"noop.sh": 0o755, "short.sh": 0o755})
	ctx := context.Background()
	if err := cl.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "model"}, URL: repo}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*resource.Service{
		{Meta: resource.Meta{Name: "noop"}, Type: resource.Executable, Repository: "model", Filename: "noop.sh"},
		{Meta: resource.Meta{Name: "short"}, Type: resource.Executable, Repository: "model", Filename: "short.sh"},
	} {
		if err := cl.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

// tally accounts for every run a model's API accepted.
type tally struct {
	model    string
	accepted []string
	// ended is when each node the model killed or paused stopped being
	// entitled to start runs (its term or registration ended).
	ended map[string]time.Time
}

// nodeEnded records that node's term or registration ends now (call it
// just before killing or pausing it).
func (tl *tally) nodeEnded(node string) {
	if tl.ended == nil {
		tl.ended = map[string]time.Time{}
	}
	tl.ended[node] = time.Now()
}

// submit runs service (async or sync) and records the accepted ID. A run
// the API refused is not accepted; the suite expects none.
func (tl *tally) submit(t *testing.T, cl *client.Client, service string, async bool) {
	t.Helper()
	e, err := cl.Run(context.Background(), service, wire.RunRequest{Async: async, WaitSeconds: 60})
	if err != nil {
		t.Fatalf("%s: run %s: %v", tl.model, service, err)
	}
	tl.accepted = append(tl.accepted, e.ID)
}

// report waits for every accepted run, prints the model's line and fails
// on anything unaccounted for or recorded twice.
func (tl *tally) report(t *testing.T, cl *client.Client) {
	t.Helper()
	counts := map[execution.Status]int{}
	var lostReasons []string
	unaccounted, stuck, late := 0, 0, 0
	for _, id := range tl.accepted {
		e, err := waitTerminal(cl, id, 2*time.Minute)
		if e != nil {
			if end, ok := tl.ended[e.Node]; ok && e.StartedAt != nil && e.StartedAt.After(end) {
				late++
				t.Errorf("%s: execution %s started on %s at %s, %v after its term or registration ended", tl.model, id, e.Node,
					e.StartedAt.Format(time.StampMilli), e.StartedAt.Sub(end).Round(time.Millisecond))
			}
		}
		if err != nil || !e.Status.Terminal() {
			if e != nil {
				stuck++
				t.Errorf("%s: execution %s stuck %s: %v", tl.model, id, e.Status, err)
				continue
			}
			unaccounted++
			t.Errorf("%s: execution %s not accounted for: %v", tl.model, id, err)
			continue
		}
		counts[e.Status]++
		if e.Status == execution.Lost {
			lostReasons = append(lostReasons, e.Reason)
		}
	}
	recorded, err := cl.Executions(context.Background(), client.ExecutionFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range recorded {
		seen[e.ID]++
	}
	extra := len(recorded) - len(tl.accepted)
	for _, id := range tl.accepted {
		if seen[id] != 1 {
			t.Errorf("%s: execution %s recorded %d times, want exactly once", tl.model, id, seen[id])
		}
	}
	sort.Strings(lostReasons)
	line := fmt.Sprintf("model %-32s accepted %3d  succeeded %3d  lost %2d  other %2d  unaccounted %d  stuck %d  late %d  records %d",
		tl.model, len(tl.accepted), counts[execution.Succeeded], counts[execution.Lost],
		len(tl.accepted)-counts[execution.Succeeded]-counts[execution.Lost]-unaccounted-stuck, unaccounted, stuck, late, len(recorded))
	fmt.Println(line)
	t.Log(line)
	for _, r := range lostReasons {
		fmt.Printf("    lost: %s\n", r)
	}
	if unaccounted != 0 || stuck != 0 || late != 0 || extra != 0 {
		t.Errorf("%s: %d unaccounted, %d stuck, %d started late, %d records beyond the accepted runs", tl.model, unaccounted, stuck, late, extra)
	}
	if counts[execution.Succeeded] == 0 {
		t.Errorf("%s: nothing succeeded", tl.model)
	}
}

// waitTerminal waits up to d for execution id to end.
func waitTerminal(cl *client.Client, id string, d time.Duration) (*wire.Execution, error) {
	deadline := time.Now().Add(d)
	var e *wire.Execution
	var err error
	for time.Now().Before(deadline) {
		e, err = cl.Wait(context.Background(), id, 10*time.Second)
		if err == nil && e.Status.Terminal() {
			return e, nil
		}
		if err != nil {
			tick(200 * time.Millisecond) // the cluster may be failing over
		}
	}
	return e, fmt.Errorf("not terminal after %v (last error %v)", d, err)
}
