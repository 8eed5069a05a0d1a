package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/devcert"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/proctest"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/tunnel"
	"github.com/autogate/autogate/internal/wire"
)

// Process-level tests of the Gateway Manager: a real `autogate manager`
// on DynamoDB Local, a cluster of two gateways sharing its table and a
// cluster of one gateway on its own embedded store, all driven through the
// CLI and the manager's HTTP API.

// requireManagerCmd fails when the binary under test has no working
// `manager` command.
func requireManagerCmd(t testing.TB, bin string) {
	t.Helper()
	out, err := exec.Command(bin, "manager", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Gateway Manager") {
		t.Fatalf("autogate manager --help: %v\n%s", err, out)
	}
}

// startProc runs bin with args, like startServerEnv, and waits for its
// "listening on" line.
func startProc(t testing.TB, bin, dir string, env []string, args ...string) *server {
	t.Helper()
	return startExact(t, bin, dir, append(os.Environ(), env...), "listening on", args...)
}

// startExact runs bin with args and exactly the environment env, logging
// under dir, and waits for a stdout line containing ready; the server's
// URL is the first one on the "listening on" line, if there is one.
func startExact(t testing.TB, bin, dir string, env []string, ready string, args ...string) *server {
	t.Helper()
	logPath := filepath.Join(dir, fmt.Sprintf("%s-%d.log", args[0], time.Now().UnixNano()))
	s := &server{Proc: proctest.Start(t, logPath, env, bin, args...), t: t, dataDir: dir}
	s.url = serverURL(s.waitLine(ready))
	return s
}

// startManager runs `autogate manager` with its data under dir; the
// caller waits for "active" if it needs it.
func startManager(t testing.TB, bin, dir string, env []string, extra ...string) *server {
	t.Helper()
	args := append([]string{"manager", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-level", "debug",
		"--shutdown-grace", "5s"}, extra...)
	return startProc(t, bin, dir, env, args...)
}

// managerHTTP is an HTTP client of the manager that trusts its certificate.
func managerHTTP(t testing.TB, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 64}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// apiLogin logs in to url as admin with the password in passFile.
func apiLogin(t testing.TB, url, caFile, passFile string) string {
	t.Helper()
	anon, err := client.New(url, "", client.TLS{CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(passFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := anon.Login(context.Background(), "admin", strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("login to %s: %v", url, err)
	}
	return resp.Token
}

// httpGet does GET url with token and returns the status and body.
func httpGet(hc *http.Client, url, token string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// managerEnv is one manager and two clusters: dyn-1, two gateways on the
// manager's own DynamoDB table, and emb-1, one gateway on an embedded store.
type managerEnv struct {
	t        *testing.T
	dir      string
	table    string
	mgr      *server
	mgrCA    string
	mgrToken string
	hc       *http.Client
	cli      *cliRunner
	creds    map[string]string // cluster ID → credential file
	dyn      *cluster
	emb      *server
	embPass  string
	repo     string
}

func newManagerEnv(t *testing.T) *managerEnv {
	t.Helper()
	return newManagerEnvIDs(t, "dyn-1", "emb-1")
}

// newManagerEnvIDs is newManagerEnv with the two clusters' IDs chosen.
func newManagerEnvIDs(t *testing.T, dynID, embID string) *managerEnv {
	t.Helper()
	requireTool(t, "git")
	requireManagerCmd(t, binPath)
	emulator.DynamoDB(t)
	m := &managerEnv{t: t, dir: t.TempDir(), table: fmt.Sprintf("mgr%d", time.Now().UnixNano()), creds: map[string]string{}}
	initTable(t, m.table)
	mgrDir := filepath.Join(m.dir, "manager")
	m.mgr = startManager(t, binPath, mgrDir, emulator.Env(), "--store", "dynamodb", "--table", m.table,
		"--heartbeat", "1s", "--request-timeout", "3s", "--node", "mgr-0")
	m.mgr.waitLine("active")
	m.mgrCA = filepath.Join(mgrDir, "tls", "tls.crt")
	m.hc = managerHTTP(t, m.mgrCA)
	m.mgrToken = apiLogin(t, m.mgr.url, m.mgrCA, filepath.Join(mgrDir, "admin-password"))
	m.cli = &cliRunner{t: t, config: filepath.Join(m.dir, "cli.yaml")}
	m.cli.must(0, "login", "--name", "manager", "--server", m.mgr.url, "--ca-file", m.mgrCA,
		"--password-file", filepath.Join(mgrDir, "admin-password"))
	m.register(dynID, "--region", "eu-west-1", "--account", "111111111111", "--description", "two gateways on the manager's table")
	m.register(embID, "--region", "us-east-1", "--description", "one gateway, embedded store")

	mflags := func(id string) []string {
		return []string{"--manager-url", m.mgr.url, "--manager-credential-file", m.creds[id], "--manager-ca-file", m.mgrCA}
	}
	m.dyn = managedCluster(t, dynID, m.table, 2, mflags(dynID)...)
	embDir := filepath.Join(m.dir, "emb", "data")
	m.emb = startServerEnv(t, embDir, t.TempDir(), []string{"AUTOGATE_SECRET_KEY="},
		append([]string{"--cluster", embID, "--node", "emb-gw"}, mflags(embID)...)...)
	m.emb.waitLine("active")
	m.embPass = filepath.Join(embDir, "admin-password")
	m.waitConnected(dynID, "")
	m.waitConnected(embID, "emb-gw")

	m.repo = filepath.Join(m.dir, "repo")
	gitRepo(t, m.repo, map[string]string{
		"bin/hello-dyn.sh": "#!/bin/sh\necho hello from dyn-1\n",
		"bin/hello-emb.sh": "#!/bin/sh\necho hello from emb-1\n",
		"bin/noop.sh":      "#!/bin/sh\nexit 0\n",
	}, map[string]os.FileMode{"bin/hello-dyn.sh": 0o755, "bin/hello-emb.sh": 0o755, "bin/noop.sh": 0o755})
	return m
}

// managedCluster starts n gateways of cluster id on an existing table.
func managedCluster(t *testing.T, id, table string, n int, extra ...string) *cluster {
	t.Helper()
	ep := emulator.DynamoDB(t)
	c := &cluster{t: t, dir: t.TempDir(), table: table, id: id, extra: extra}
	c.env = append(emulator.Env(), "AUTOGATE_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	c.cert, c.key = filepath.Join(c.dir, "tls.crt"), filepath.Join(c.dir, "tls.key")
	if _, err := devcert.Ensure(c.cert, c.key, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	c.passFile = filepath.Join(c.dir, "admin-password")
	for i := range n {
		c.proxies = append(c.proxies, newProxy(t, strings.TrimPrefix(ep.URL, "http://")))
		c.nodes = append(c.nodes, c.start(i, ""))
	}
	c.active(-1)
	return c
}

// register creates cluster id through the CLI, its credential in a file.
func (m *managerEnv) register(id string, flags ...string) string {
	m.t.Helper()
	f := filepath.Join(m.dir, id+".credential")
	r := m.cli.must(0, append([]string{"--context", "manager", "manager", "create", "cluster", id, "--credential-file", f}, flags...)...)
	if !strings.Contains(r.stdout, "cluster/"+id+" created") || strings.Contains(r.stdout, "agc_") {
		m.t.Fatalf("create cluster %s printed %q", id, r.stdout)
	}
	m.creds[id] = f
	return f
}

func (m *managerEnv) clusters() map[string]wire.Cluster {
	m.t.Helper()
	var cs []wire.Cluster
	if err := json.Unmarshal([]byte(m.cli.must(0, "--context", "manager", "get", "clusters", "-o", "json").stdout), &cs); err != nil {
		m.t.Fatal(err)
	}
	out := map[string]wire.Cluster{}
	for _, c := range cs {
		out[c.ID] = c
	}
	return out
}

// whoami asks cluster id, through the manager, which gateway answers.
func (m *managerEnv) whoami(id string) (int, wire.WhoAmI) {
	var w wire.WhoAmI
	st, body, err := httpGet(m.hc, m.mgr.url+"/v1/clusters/"+id+"/whoami", m.mgrToken)
	if err != nil {
		return 0, w
	}
	json.Unmarshal(body, &w)
	return st, w
}

// waitConnected waits until the manager routes to cluster id, answered by
// node (any node if "").
func (m *managerEnv) waitConnected(id, node string) {
	m.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, w := m.whoami(id)
		if st == http.StatusOK && (node == "" || w.Node == node) {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("cluster %s not routed to %q within 60s (last: %d %+v)", id, node, st, w)
		}
		tick(20 * time.Millisecond)
	}
}

// resourceNames decodes a JSON list of resources into their names.
func resourceNames(t *testing.T, raw string) []string {
	t.Helper()
	var objs []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(raw), &objs); err != nil {
		t.Fatalf("decode %q: %v", raw, err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Name)
	}
	slices.Sort(out)
	return out
}

func TestManager(t *testing.T) {
	m := newManagerEnv(t)
	c := m.cli
	mc := func(cluster string, args ...string) []string {
		return append([]string{"--context", "manager", "--cluster", cluster}, args...)
	}

	t.Run("registry", func(t *testing.T) {
		cs := m.clusters()
		dyn, emb := cs["dyn-1"], cs["emb-1"]
		if dyn.Status != wire.ClusterConnected || (dyn.Node != "gw-0" && dyn.Node != "gw-1") || dyn.Epoch < 1 ||
			dyn.Region != "eu-west-1" || dyn.Account != "111111111111" || dyn.ConnectedSince.IsZero() {
			t.Errorf("dyn-1 = %+v, want connected from gw-0 or gw-1", dyn)
		}
		if emb.Status != wire.ClusterConnected || emb.Node != "emb-gw" || emb.Epoch != 1 {
			t.Errorf("emb-1 = %+v, want connected from emb-gw at epoch 1", emb)
		}
		out := c.must(0, "--context", "manager", "get", "clusters").stdout
		if !strings.Contains(out, "CLUSTER") || strings.Count(out, "connected") != 2 {
			t.Errorf("get clusters table:\n%s", out)
		}
	})

	t.Run("each cluster sees only its own resources", func(t *testing.T) {
		for _, id := range []string{"dyn-1", "emb-1"} {
			c.must(0, mc(id, "create", "repository", "demo", "--url", m.repo)...)
		}
		c.must(0, mc("dyn-1", "create", "service", "executable", "hello", "--repository", "demo", "--filename", "bin/hello-dyn.sh")...)
		c.must(0, mc("dyn-1", "create", "service", "executable", "only-dyn", "--repository", "demo", "--filename", "bin/noop.sh")...)
		c.must(0, mc("emb-1", "create", "service", "executable", "hello", "--repository", "demo", "--filename", "bin/hello-emb.sh")...)
		c.must(0, mc("emb-1", "create", "service", "executable", "only-emb", "--repository", "demo", "--filename", "bin/noop.sh")...)
		want := map[string][]string{"dyn-1": {"hello", "only-dyn"}, "emb-1": {"hello", "only-emb"}}
		for id, w := range want {
			if got := resourceNames(t, c.must(0, mc(id, "get", "services", "-o", "json")...).stdout); !slices.Equal(got, w) {
				t.Errorf("services of %s through the manager = %v, want %v", id, got, w)
			}
		}
		// The gateways themselves, asked directly, agree.
		direct := map[string]*client.Client{}
		a := m.dyn.active(-1)
		direct["dyn-1"] = m.dyn.client(a)
		embTok := apiLogin(t, m.emb.url, filepath.Join(m.emb.dataDir, "tls", "tls.crt"), m.embPass)
		direct["emb-1"], _ = client.New(m.emb.url, embTok, client.TLS{CAFile: filepath.Join(m.emb.dataDir, "tls", "tls.crt")})
		for id, cl := range direct {
			raws, err := cl.List(t.Context(), "service")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range raws {
				var o struct{ Name string }
				json.Unmarshal(r, &o)
				got = append(got, o.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, want[id]) {
				t.Errorf("services of %s asked directly = %v, want %v", id, got, want[id])
			}
			// Nothing of the manager's namespace shows on a gateway, though
			// dyn-1 shares its table: not its users, not its registry.
			us, err := cl.Users(t.Context())
			if err != nil || len(us) != 1 || us[0].Name != "admin" {
				t.Errorf("users of %s = %+v, %v; want only its own admin", id, us, err)
			}
		}
		st, _, _ := httpGet(m.hc, m.mgr.url+"/v1/users", m.mgrToken)
		if st != 200 {
			t.Errorf("manager users: %d", st)
		}
	})

	var dynRun string
	t.Run("runs, sync and async", func(t *testing.T) {
		r := c.must(0, mc("dyn-1", "run", "service", "executable", "hello")...)
		if !strings.Contains(r.stdout, "hello from dyn-1") {
			t.Errorf("sync run on dyn-1 printed %q", r.stdout)
		}
		r = c.must(0, mc("emb-1", "run", "service", "executable", "hello", "-o", "json")...)
		e := decodeExec(t, r.stdout)
		if e.Status != "succeeded" || !strings.Contains(e.Stdout.Data, "hello from emb-1") {
			t.Errorf("sync run on emb-1 = %+v", e)
		}
		embSync := e.ID
		dynRun = strings.TrimSpace(c.must(0, mc("dyn-1", "run", "service", "executable", "only-dyn", "--async")...).stdout)
		embRun := strings.TrimSpace(c.must(0, mc("emb-1", "run", "service", "executable", "only-emb", "--async")...).stdout)
		for id, run := range map[string]string{"dyn-1": dynRun, "emb-1": embRun} {
			waitFor(t, func() bool {
				return decodeExec(t, c.must(0, mc(id, "get", "execution", run, "-o", "json")...).stdout).Status == "succeeded"
			})
		}
		// Executions stay with their cluster.
		c.must(3, mc("emb-1", "get", "execution", dynRun)...)
		c.must(3, mc("dyn-1", "get", "execution", embRun)...)
		dynList := c.must(0, mc("dyn-1", "get", "executions", "-o", "json")...).stdout
		if strings.Contains(dynList, embRun) || strings.Contains(dynList, embSync) || !strings.Contains(dynList, dynRun) {
			t.Errorf("dyn-1's executions list another cluster's runs, or misses its own:\n%s", dynList)
		}
		var es []struct{ Submitter string }
		json.Unmarshal([]byte(dynList), &es)
		for _, e := range es {
			if e.Submitter != "manager:admin" {
				t.Errorf("submitter %q, want manager:admin", e.Submitter)
			}
		}
	})

	t.Run("apply to several clusters reports per cluster", func(t *testing.T) {
		f := filepath.Join(m.dir, "shared.yaml")
		os.WriteFile(f, []byte("kind: service\nname: shared\ntype: executable\nrepository: demo\nfilename: bin/noop.sh\n"), 0o644)
		r := c.run("--context", "manager", "--cluster", "dyn-1,emb-1,ghost-1", "apply", "-f", f)
		for _, want := range []string{"dyn-1: service/shared created", "emb-1: service/shared created", "dyn-1: applied",
			"emb-1: applied", "ghost-1: failed"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("apply output lacks %q:\n%s", want, r.stdout)
			}
		}
		if r.code != 3 || !strings.Contains(r.stderr, "1 of 3") {
			t.Errorf("apply with an unknown cluster: exit %d, stderr %q; want 3 naming 1 of 3", r.code, r.stderr)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		big := filepath.Join(m.dir, "big")
		os.WriteFile(big, make([]byte, 2<<20), 0o600)
		tests := []struct {
			name string
			args []string
			code int
			msg  string
		}{
			{"unknown cluster", mc("nope-1", "get", "services"), 3, "not registered"},
			{"bad cluster ID", mc("EU_1", "get", "services"), 6, "cluster ID"},
			{"oversized body", mc("emb-1", "create", "secret", "huge", "--from-file", big), 6, "larger than"},
			{"unknown resource on a cluster", mc("dyn-1", "get", "service", "only-emb"), 3, ""},
			{"several clusters outside apply", mc("dyn-1,emb-1", "get", "services"), 2, "only apply"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := c.run(tt.args...)
				if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
					t.Errorf("autogate %v: exit %d, stderr %q; want %d mentioning %q", tt.args, r.code, r.stderr, tt.code, tt.msg)
				}
			})
		}
		cred := func(id string) tunnel.Secret {
			raw, err := os.ReadFile(m.creds[id])
			if err != nil {
				t.Fatal(err)
			}
			return tunnel.Secret(strings.TrimSpace(string(raw)))
		}
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(m.mgrCA)
		pool.AppendCertsFromPEM(pem)
		tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		dial := func(cred tunnel.Secret, cluster string, epoch int64) (*tunnel.Session, error) {
			return tunnel.Dial(t.Context(), m.mgr.url, tunnel.DialOptions{Credential: cred, TLS: tlsCfg,
				Hello: tunnel.Hello{Cluster: cluster, Node: "intruder", Epoch: epoch}})
		}
		t.Run("a credential of one cluster cannot register as another", func(t *testing.T) {
			if _, err := dial(cred("emb-1"), "dyn-1", 1<<40); !errors.Is(err, tunnel.ErrWrongCluster) {
				t.Errorf("emb-1's credential as dyn-1: %v, want ErrWrongCluster", err)
			}
			if _, err := dial("agc_dyn-1_bm90LXRoZS1yZWFsLWNyZWRlbnRpYWwtYXQtYWxs", "dyn-1", 1<<40); !errors.Is(err, tunnel.ErrUnauthorized) {
				t.Errorf("a made-up credential: %v, want ErrUnauthorized", err)
			}
			if st, w := m.whoami("dyn-1"); st != 200 || !strings.HasPrefix(w.Node, "gw-") {
				t.Errorf("dyn-1 after the refusals: %d %+v", st, w)
			}
			// A gateway configured with another cluster's credential stops at start-up.
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, binPath, "server", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0",
				"--cluster", "dyn-1", "--manager-url", m.mgr.url, "--manager-credential-file", m.creds["emb-1"])
			cmd.Env = append(os.Environ(), "AUTOGATE_SECRET_KEY=")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "cluster emb-1's") {
				t.Errorf("gateway with a wrong credential: %v %s", err, out)
			}
		})
		t.Run("oversized frame resets that tunnel only", func(t *testing.T) {
			m.register("bad-1")
			s, err := dial(cred("bad-1"), "bad-1", 1)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				done <- s.Serve(t.Context(), http.NotFoundHandler(), func(ctx context.Context, _ tunnel.Caller) context.Context { return ctx })
			}()
			if cs := m.clusters(); cs["bad-1"].Status != wire.ClusterConnected {
				t.Fatalf("bad-1 = %+v, want connected", cs["bad-1"])
			}
			ping, _ := tunnel.Encode(&tunnel.Frame{Type: tunnel.FramePing}, tunnel.DefaultMaxFrame)
			if err := s.WriteRaw(t.Context(), append(ping, make([]byte, 3<<20)...)); err != nil {
				t.Logf("write of the oversized frame: %v", err) // the manager may cut it off mid-write
			}
			select {
			case err := <-done:
				if !errors.Is(err, tunnel.ErrFrameTooLarge) {
					t.Errorf("the oversized frame's session ended with %v, want ErrFrameTooLarge (1009)", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the manager kept a tunnel that sent an oversized frame")
			}
			waitFor(t, func() bool { return m.clusters()["bad-1"].Status == wire.ClusterDisconnected })
			for _, id := range []string{"dyn-1", "emb-1"} {
				if st, _ := m.whoami(id); st != 200 {
					t.Errorf("%s after bad-1's oversized frame: %d", id, st)
				}
			}
			c.must(7, mc("bad-1", "get", "services")...) // disconnected: 503 at once
		})
	})

	t.Run("stuck gateway times out, the others keep answering", func(t *testing.T) {
		m.emb.Cmd.Process.Signal(syscall.SIGSTOP)
		defer m.emb.Cmd.Process.Signal(syscall.SIGCONT)
		type res struct {
			r result
			d time.Duration
		}
		stuck := make(chan res, 1)
		go func() {
			start := time.Now()
			stuck <- res{c.runIn(nil, mc("emb-1", "get", "services")...), time.Since(start)}
		}()
		for i := range 5 {
			start := time.Now()
			r := c.run(mc("dyn-1", "get", "services", "-o", "json")...)
			if r.code != 0 || time.Since(start) > 5*time.Second {
				t.Errorf("dyn-1 request %d while emb-1 is stuck: exit %d after %v: %s", i, r.code, time.Since(start), r.stderr)
			}
		}
		s := <-stuck
		// 504 at the 3 s request timeout; 502 or 503 if the manager dropped
		// the silent tunnel (4 heartbeats) first.
		if s.r.code != 7 || !(strings.Contains(s.r.stderr, "did not answer within 3s") ||
			strings.Contains(s.r.stderr, "lost during the request") || strings.Contains(s.r.stderr, "not connected")) {
			t.Errorf("request to the stuck cluster: exit %d, stderr %q; want 7 (504, 502 or 503)", s.r.code, s.r.stderr)
		}
		if s.d > 15*time.Second {
			t.Errorf("request to the stuck cluster took %v, want about the 3s timeout", s.d)
		}
		t.Logf("request to a SIGSTOPped gateway failed after %v: %s", s.d.Round(time.Millisecond), strings.TrimSpace(s.r.stderr))
		waitFor(t, func() bool { return m.clusters()["emb-1"].Status != wire.ClusterConnected })
		m.emb.Cmd.Process.Signal(syscall.SIGCONT)
		m.waitConnected("emb-1", "emb-gw")
	})

	t.Run("kill -9 the active: the manager routes to the new active", func(t *testing.T) {
		trials := 5
		if v, err := strconv.Atoi(os.Getenv("MANAGER_FAILOVER_TRIALS")); err == nil && v > 0 {
			trials = v
		}
		var times []time.Duration
		for trial := range trials {
			a := m.dyn.active(-1)
			m.waitConnected("dyn-1", fmt.Sprintf("gw-%d", a))
			addr := strings.TrimPrefix(m.dyn.nodes[a].url, "https://")
			start := time.Now()
			m.dyn.kill(a, syscall.SIGKILL)
			m.dyn.nodes[a].Killed = true
			m.dyn.nodes[a].wait()
			b := 1 - a
			m.waitConnected("dyn-1", fmt.Sprintf("gw-%d", b))
			d := time.Since(start)
			times = append(times, d)
			t.Logf("trial %d: kill -9 gw-%d → manager routes to gw-%d after %v", trial, a, b, d.Round(time.Millisecond))
			m.dyn.nodes[a] = m.dyn.start(a, addr)
		}
		slices.Sort(times)
		pct := func(p float64) time.Duration { return times[int(p*float64(len(times)-1))].Round(time.Millisecond) }
		t.Logf("manager re-route after kill -9 of the active, %d trials: p50 %v, p99 %v, max %v", len(times), pct(0.5), pct(0.99), times[len(times)-1].Round(time.Millisecond))
		if cs := m.clusters(); cs["dyn-1"].Epoch < int64(trials+1) {
			t.Errorf("dyn-1's epoch is %d after %d fail-overs", cs["dyn-1"].Epoch, trials)
		}
	})

	t.Run("a stale epoch is refused", func(t *testing.T) {
		cur := m.clusters()["dyn-1"]
		raw, _ := os.ReadFile(m.creds["dyn-1"])
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(m.mgrCA)
		pool.AppendCertsFromPEM(pem)
		_, err := tunnel.Dial(t.Context(), m.mgr.url, tunnel.DialOptions{Credential: tunnel.Secret(strings.TrimSpace(string(raw))),
			TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Hello: tunnel.Hello{Cluster: "dyn-1", Node: cur.Node, Epoch: cur.Epoch - 1}})
		if !errors.Is(err, tunnel.ErrStaleEpoch) {
			t.Fatalf("hello at epoch %d (current %d): %v, want ErrStaleEpoch", cur.Epoch-1, cur.Epoch, err)
		}
		if st, w := m.whoami("dyn-1"); st != 200 || w.Node != cur.Node {
			t.Errorf("after the refused stale tunnel dyn-1 answers %d from %q, want %s", st, w.Node, cur.Node)
		}
	})
}

// BenchmarkManagerRoute measures requests routed through the manager to
// one cluster against the same requests sent to the cluster directly, in
// the same run, on the binary built without the race detector (make
// bench-manager). Two requests: GET whoami (b.N times), and an async run
// submission of a no-op service (POST services/noop/run, a quarter as
// many), whose answer comes after the queued record is durable. For each:
// serial latency (p50/p99 of each and
// the p50 difference) and requests/s with 16 concurrent clients. Every
// accepted run is waited for before the next phase, so a backlog left by
// one phase does not load the next. The gateway's admission limit is
// raised (--max-backlog) so that a burst measures routing, not 429s.
func BenchmarkManagerRoute(b *testing.B) {
	usePlainBinary(b)
	bin := binPath
	requireManagerCmd(b, bin)
	dir := b.TempDir()
	mgrDir := filepath.Join(dir, "manager")
	mgr := startManager(b, bin, mgrDir, nil, "--log-level", "error")
	mgr.waitLine("active")
	mgrCA := filepath.Join(mgrDir, "tls", "tls.crt")
	mgrTok := apiLogin(b, mgr.url, mgrCA, filepath.Join(mgrDir, "admin-password"))
	hc := managerHTTP(b, mgrCA)
	body := strings.NewReader(`{"id":"bench-1"}`)
	req, _ := http.NewRequest(http.MethodPost, mgr.url+"/v1/clusters", body)
	req.Header.Set("Authorization", "Bearer "+mgrTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var created wire.CreatedCluster
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	credFile := filepath.Join(dir, "bench.credential")
	os.WriteFile(credFile, []byte(created.Credential), 0o600)

	gwDir := filepath.Join(dir, "gw", "data")
	gw := startProc(b, bin, filepath.Dir(gwDir), []string{"AUTOGATE_SECRET_KEY="}, "server", "--data-dir", gwDir,
		"--listen", "127.0.0.1:0", "--log-level", "error", "--cluster", "bench-1", "--node", "bench-gw",
		"--manager-url", mgr.url, "--manager-credential-file", credFile, "--manager-ca-file", mgrCA,
		"--max-backlog", "1000000")
	gw.waitLine("active")
	gwCA := filepath.Join(gwDir, "tls", "tls.crt")
	gwTok := apiLogin(b, gw.url, gwCA, filepath.Join(gwDir, "admin-password"))
	gwHC := managerHTTP(b, gwCA)
	gwCl, err := client.New(gw.url, gwTok, client.TLS{CAFile: gwCA})
	if err != nil {
		b.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	gitRepo(b, repo, map[string]string{"noop.sh": "#!/bin/sh\nexit 0\n"}, map[string]os.FileMode{"noop.sh": 0o755})
	ctx := context.Background()
	if err := gwCl.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "r"}, URL: repo}); err != nil {
		b.Fatal(err)
	}
	if err := gwCl.Create(ctx, &resource.Service{Meta: resource.Meta{Name: "noop"}, Type: resource.Executable, Repository: "r", Filename: "noop.sh"}); err != nil {
		b.Fatal(err)
	}
	if e, err := gwCl.Run(ctx, "noop", wire.RunRequest{}); err != nil || e.Status != execution.Succeeded {
		b.Fatalf("warm-up run: %v %+v", err, e)
	}

	type target struct {
		hc       *http.Client
		url, tok string
	}
	type probe struct {
		name           string
		method, body   string
		direct, routed target
	}
	probes := []probe{
		{name: "", method: http.MethodGet,
			direct: target{gwHC, gw.url + "/v1/whoami", gwTok}, routed: target{hc, mgr.url + "/v1/clusters/bench-1/whoami", mgrTok}},
		{name: "run-", method: http.MethodPost, body: `{"async":true}`,
			direct: target{gwHC, gw.url + "/v1/services/noop/run", gwTok}, routed: target{hc, mgr.url + "/v1/clusters/bench-1/services/noop/run", mgrTok}},
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, _, _ := httpGet(hc, probes[0].routed.url, mgrTok); st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the gateway did not connect to the manager within 30s")
		}
		tick(20 * time.Millisecond)
	}
	// call sends p to t; a run's execution ID goes to ids.
	var idMu sync.Mutex
	var ids []string
	call := func(p probe, t target) time.Duration {
		start := time.Now()
		req, err := http.NewRequest(p.method, t.url, strings.NewReader(p.body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+t.tok)
		if p.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := t.hc.Do(req)
		if err != nil {
			b.Fatalf("%s %s: %v", p.method, t.url, err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if err != nil || resp.StatusCode/100 != 2 {
			b.Fatalf("%s %s: %d %s %v", p.method, t.url, resp.StatusCode, raw, err)
		}
		if p.method == http.MethodPost {
			var e wire.Execution
			if err := json.Unmarshal(raw, &e); err != nil || e.ID == "" {
				b.Fatalf("%s %s: answer %s: %v", p.method, t.url, raw, err)
			}
			idMu.Lock()
			ids = append(ids, e.ID)
			idMu.Unlock()
		}
		return d
	}
	// drain waits until every run submitted so far has ended.
	drain := func() {
		idMu.Lock()
		pending := ids
		ids = nil
		idMu.Unlock()
		for _, id := range pending {
			if e := await(b, gwCl, id); e.Status != execution.Succeeded {
				b.Fatalf("run %s: %s (%s)", id, e.Status, e.Reason)
			}
		}
	}
	for range 200 { // warm connections and caches
		for _, p := range probes {
			call(p, p.routed)
			call(p, p.direct)
		}
	}
	drain()
	throughput := func(p probe, t target, n int) float64 {
		var wg sync.WaitGroup
		jobs := make(chan struct{}, n)
		for range n {
			jobs <- struct{}{}
		}
		close(jobs)
		start := time.Now()
		for range 16 {
			wg.Go(func() {
				for range jobs {
					call(p, t)
				}
			})
		}
		wg.Wait()
		rps := float64(n) / time.Since(start).Seconds()
		drain()
		return rps
	}
	// Serial latency: whoami for b.N pairs, then a quarter as many run
	// pairs (at least 50), so the runs' executions, which go on after
	// each answer, do not load the whoami figures.
	dLat, rLat := make([][]time.Duration, len(probes)), make([][]time.Duration, len(probes))
	b.ResetTimer()
	for b.Loop() {
		dLat[0] = append(dLat[0], call(probes[0], probes[0].direct))
		rLat[0] = append(rLat[0], call(probes[0], probes[0].routed))
	}
	b.StopTimer()
	n := len(dLat[0])
	counts := []int{n, max(50, n/4)}
	for range counts[1] {
		dLat[1] = append(dLat[1], call(probes[1], probes[1].direct))
		rLat[1] = append(rLat[1], call(probes[1], probes[1].routed))
	}
	drain()
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	for i, p := range probes {
		directRPS := throughput(p, p.direct, counts[i])
		routedRPS := throughput(p, p.routed, counts[i])
		slices.Sort(dLat[i])
		slices.Sort(rLat[i])
		b.ReportMetric(pct(dLat[i], 0.5), p.name+"direct-p50-ms")
		b.ReportMetric(pct(rLat[i], 0.5), p.name+"routed-p50-ms")
		b.ReportMetric(pct(dLat[i], 0.99), p.name+"direct-p99-ms")
		b.ReportMetric(pct(rLat[i], 0.99), p.name+"routed-p99-ms")
		b.ReportMetric(pct(rLat[i], 0.5)-pct(dLat[i], 0.5), p.name+"added-p50-ms")
		b.ReportMetric(directRPS, p.name+"direct-req/s")
		b.ReportMetric(routedRPS, p.name+"routed-req/s")
		b.ReportMetric(routedRPS/directRPS, p.name+"routed/direct")
	}
}

// TestManagerFailover runs two managers on one table and kills the active
// one: the standby takes over, and the cluster's gateway, which knows both
// addresses, reconnects to it.
func TestManagerFailover(t *testing.T) {
	requireManagerCmd(t, binPath)
	emulator.DynamoDB(t)
	dir := t.TempDir()
	table := fmt.Sprintf("mgrha%d", time.Now().UnixNano())
	initTable(t, table)
	cert, key := filepath.Join(dir, "mgr.crt"), filepath.Join(dir, "mgr.key")
	if _, err := devcert.Ensure(cert, key, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(dir, "manager-admin-password")
	mgrs := make([]*server, 2)
	for i := range mgrs {
		mgrs[i] = startManager(t, binPath, filepath.Join(dir, fmt.Sprintf("mgr-%d", i)), emulator.Env(), "--store", "dynamodb",
			"--table", table, "--node", fmt.Sprintf("mgr-%d", i), "--tls-cert", cert, "--tls-key", key,
			"--admin-password-file", passFile, "--heartbeat", "500ms")
	}
	hc := managerHTTP(t, cert)
	activeMgr := func(exclude int) int {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			for i, m := range mgrs {
				if i == exclude {
					continue
				}
				if resp, err := hc.Get(m.url + "/readyz"); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return i
					}
				}
			}
			tick(20 * time.Millisecond)
		}
		t.Fatal("no active manager within 30s")
		return -1
	}
	a := activeMgr(-1)
	tok := apiLogin(t, mgrs[a].url, cert, passFile)
	// The standby manager forwards to the active (issue 14.1), which
	// answers; its readiness stays its own.
	st, body, _ := httpGet(hc, mgrs[1-a].url+"/v1/clusters", tok)
	if st != http.StatusOK {
		t.Errorf("the standby manager answered %d %s, want the active's 200", st, body)
	}
	if st, body, _ := httpGet(hc, mgrs[1-a].url+"/readyz", ""); st != http.StatusServiceUnavailable || !strings.Contains(string(body), fmt.Sprintf("mgr-%d", a)) {
		t.Errorf("the standby manager's /readyz = %d %s, want 503 naming mgr-%d", st, body, a)
	}
	req, _ := http.NewRequest(http.MethodPost, mgrs[a].url+"/v1/clusters", strings.NewReader(`{"id":"edge-1"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created wire.CreatedCluster
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	credFile := filepath.Join(dir, "edge.credential")
	os.WriteFile(credFile, []byte(created.Credential), 0o600)
	gw := startServerEnv(t, filepath.Join(dir, "edge", "data"), t.TempDir(), []string{"AUTOGATE_SECRET_KEY="},
		"--cluster", "edge-1", "--node", "edge-gw", "--manager-url", mgrs[0].url+","+mgrs[1].url,
		"--manager-credential-file", credFile, "--manager-ca-file", cert)
	gw.waitLine("active")
	routed := func(i int) bool {
		st, body, _ := httpGet(hc, mgrs[i].url+"/v1/clusters/edge-1/whoami", tok)
		return st == http.StatusOK && strings.Contains(string(body), "edge-gw")
	}
	waitFor(t, func() bool { return routed(a) })
	if !routed(1 - a) {
		t.Error("a request routed through the standby manager did not reach the cluster")
	}
	start := time.Now()
	if err := mgrs[a].Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	mgrs[a].Killed = true
	mgrs[a].wait()
	b := activeMgr(a)
	took := time.Since(start)
	waitFor(t, func() bool { return routed(b) })
	t.Logf("kill -9 of the active manager: mgr-%d active after %v, routing to edge-1 after %v",
		b, took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestManagerRevocationIsImmediate: the active manager keeps tokens and
// users in memory for its term; a logout, a change to a user (which
// revokes its tokens) and a deletion still hold on the very next request.
func TestManagerRevocationIsImmediate(t *testing.T) {
	bin := binPath
	requireManagerCmd(t, bin)
	dir := t.TempDir()
	mgr := startManager(t, bin, dir, nil, "--log-level", "error")
	mgr.waitLine("active")
	ca := filepath.Join(dir, "tls", "tls.crt")
	admin, err := client.New(mgr.url, apiLogin(t, mgr.url, ca, filepath.Join(dir, "admin-password")), client.TLS{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	userChangesHold(t, admin, func(token string) *client.Client {
		cl, err := client.New(mgr.url, token, client.TLS{CAFile: ca})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	})
}
