package manager

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/manager/registry"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/tunnel"
	"github.com/autogate/autogate/internal/wire"
)

type fakeLeader struct{ active atomic.Bool }

func (f *fakeLeader) Active() (bool, lease.Term) {
	return f.active.Load(), lease.Term{Holder: "m-2", Epoch: 3, Address: "https://10.0.0.2:9443"}
}

type testEnv struct {
	t      *testing.T
	srv    *httptest.Server
	server *Server
	hub    *Hub
	reg    *registry.Registry
	leader *fakeLeader
	tokens map[auth.Role]string
	creds  map[string]string

	stopTerm context.CancelFunc
	termDone chan struct{}
}

func newEnv(t *testing.T, requestTimeout time.Duration) *testEnv {
	t.Helper()
	clk := clock.Real{}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.DiscardHandler)
	reg := &registry.Registry{Store: st, Namespace: "manager", Clock: clk}
	au := &auth.Service{Store: st, Cluster: "manager", Clock: clk, Params: auth.Params{Time: 1, Memory: 1024, Threads: 1}}
	e := &testEnv{t: t, reg: reg, leader: &fakeLeader{}, tokens: map[auth.Role]string{}, creds: map[string]string{}}
	e.leader.active.Store(true)
	e.hub = NewHub(reg, "m-1", tunnel.LinkConfig{Heartbeat: time.Second, MaxFrame: 256 << 10}, clk, log)
	e.server = &Server{Hub: e.hub, Registry: reg, Auth: au, Leader: e.leader, Logger: log, Clock: clk,
		Namespace: "manager", Node: "m-1", Version: "test", RequestTimeout: requestTimeout, MaxBodyBytes: 64 << 10}
	e.srv = httptest.NewServer(e.server.Handler())
	t.Cleanup(e.srv.Close)
	e.startTerm()
	t.Cleanup(e.endTerm)
	for _, r := range []auth.Role{auth.Admin, auth.Operator, auth.Viewer} {
		if _, err := au.CreateUser(t.Context(), string(r)+"-user", r, "a long enough password"); err != nil {
			t.Fatal(err)
		}
		tok, _, err := au.IssueToken(t.Context(), string(r)+"-user", r, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = tok
	}
	for _, id := range []string{"eu-1", "us-1", "ap-1"} {
		c, err := reg.Create(t.Context(), wire.CreateClusterRequest{ID: id, Region: "eu-west-1"})
		if err != nil {
			t.Fatal(err)
		}
		e.creds[id] = c.Credential
	}
	return e
}

// startTerm makes the hub take tunnels, as the lease's OnStarted does.
func (e *testEnv) startTerm() {
	ctx, cancel := context.WithCancel(context.Background())
	e.stopTerm, e.termDone = cancel, make(chan struct{})
	go func() { defer close(e.termDone); e.hub.Run(ctx) }()
	waitUntil(e.t, "hub running", func() bool {
		e.hub.mu.Lock()
		defer e.hub.mu.Unlock()
		return e.hub.term != nil
	})
}

func (e *testEnv) endTerm() {
	e.stopTerm()
	<-e.termDone
}

func (e *testEnv) do(t *testing.T, role auth.Role, method, path, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := e.tokens[role]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), resp.Header
}

// fakeGateway is a cluster's active gateway: a connector and a handler
// that says which cluster and node answered, and who asked.
type fakeGateway struct {
	cluster, node string
	stop          context.CancelFunc
	done          chan error
	release       chan struct{}
}

func (e *testEnv) gateway(t *testing.T, cluster, node string, epoch int64) *fakeGateway {
	t.Helper()
	g := &fakeGateway{cluster: cluster, node: node, done: make(chan error, 1), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callerKey{}).(tunnel.Caller)
		json.NewEncoder(w).Encode(map[string]string{"cluster": cluster, "node": node, "user": c.User, "role": c.Role})
	})
	mux.HandleFunc("GET /v1/stuck", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-g.release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST /v1/echo", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	mux.HandleFunc("GET /v1/executions/{id}/output", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: output\nid: 1.0\ndata: %s after %s\n\n", r.PathValue("id"), r.Header.Get("Last-Event-ID"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the tunnel: %v", err)
		}
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "event: end\ndata: {}\n\n")
	})
	conn, err := tunnel.NewConnector(tunnel.Config{URLs: []string{e.srv.URL}, Credential: tunnel.Secret(e.creds[cluster]),
		Cluster: cluster, Node: node, Version: "v-test", Handler: mux,
		Trust: func(ctx context.Context, c tunnel.Caller) context.Context {
			return context.WithValue(ctx, callerKey{}, c)
		},
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	g.stop = stop
	go func() { g.done <- conn.Run(ctx, epoch) }()
	t.Cleanup(func() { stop(); <-g.done })
	return g
}

type callerKey struct{}

// whoami asks cluster through the manager who answers.
func (e *testEnv) whoami(t *testing.T, cluster string) (int, map[string]string) {
	t.Helper()
	st, body, _ := e.do(t, auth.Operator, http.MethodGet, "/v1/clusters/"+cluster+"/whoami", "")
	var out map[string]string
	json.Unmarshal([]byte(body), &out)
	return st, out
}

// waitRouted polls until cluster answers through the manager from node.
func (e *testEnv) waitRouted(t *testing.T, cluster, node string) {
	t.Helper()
	waitUntil(t, cluster+" routed to "+node, func() bool {
		st, who := e.whoami(t, cluster)
		return st == http.StatusOK && who["node"] == node
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		<-time.After(5 * time.Millisecond)
	}
}

func (e *testEnv) cluster(t *testing.T, id string) wire.Cluster {
	t.Helper()
	st, body, _ := e.do(t, auth.Viewer, http.MethodGet, "/v1/clusters/"+id, "")
	if st != http.StatusOK {
		t.Fatalf("get cluster %s: %d %s", id, st, body)
	}
	var c wire.Cluster
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClusterRegistryAPI(t *testing.T) {
	e := newEnv(t, time.Minute)
	tests := []struct {
		name string
		role auth.Role
		body string
		want int
	}{
		{"admin registers", auth.Admin, `{"id":"sa-1","region":"sa-east-1","account":"123456789012","description":"São Paulo"}`, 201},
		{"operator may not", auth.Operator, `{"id":"sa-2"}`, 403},
		{"anonymous may not", "", `{"id":"sa-3"}`, 401},
		{"duplicate", auth.Admin, `{"id":"sa-1"}`, 409},
		{"bad ID", auth.Admin, `{"id":"SA_1"}`, 400},
		{"the manager's namespace", auth.Admin, `{"id":"manager"}`, 400},
		{"bad account", auth.Admin, `{"id":"sa-4","account":"12"}`, 422},
		{"unknown field", auth.Admin, `{"id":"sa-5","credential":"mine"}`, 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, _ := e.do(t, tt.role, http.MethodPost, "/v1/clusters", tt.body)
			if st != tt.want {
				t.Fatalf("POST /v1/clusters %s = %d %s, want %d", tt.body, st, body, tt.want)
			}
			if st == 201 {
				var c wire.CreatedCluster
				json.Unmarshal([]byte(body), &c)
				if !strings.HasPrefix(c.Credential, "agc_sa-1_") || c.Status != wire.ClusterDisconnected || c.Account != "123456789012" {
					t.Errorf("created = %+v", c)
				}
				if id, err := e.reg.Verify(t.Context(), c.Credential); err != nil || id != "sa-1" {
					t.Errorf("the credential does not verify: %q %v", id, err)
				}
			} else if !strings.Contains(body, `"detail"`) {
				t.Errorf("error is not a problem document: %s", body)
			}
		})
	}
	t.Run("list never shows credentials", func(t *testing.T) {
		st, body, _ := e.do(t, auth.Viewer, http.MethodGet, "/v1/clusters", "")
		var page wire.Page[wire.Cluster]
		json.Unmarshal([]byte(body), &page)
		if st != 200 || len(page.Items) != 4 || strings.Contains(body, "agc_") || strings.Contains(body, "credential") {
			t.Errorf("GET /v1/clusters = %d %s", st, body)
		}
	})
	t.Run("unknown cluster", func(t *testing.T) {
		if st, _, _ := e.do(t, auth.Viewer, http.MethodGet, "/v1/clusters/nope", ""); st != 404 {
			t.Errorf("GET unknown cluster = %d, want 404", st)
		}
	})
}

func TestRoutesToEachCluster(t *testing.T) {
	e := newEnv(t, time.Minute)
	e.gateway(t, "eu-1", "eu-gw-1", 4)
	e.gateway(t, "us-1", "us-gw-1", 1)
	e.waitRouted(t, "eu-1", "eu-gw-1")
	e.waitRouted(t, "us-1", "us-gw-1")
	for _, c := range []struct{ id, node string }{{"eu-1", "eu-gw-1"}, {"us-1", "us-gw-1"}} {
		st, who := e.whoami(t, c.id)
		if st != 200 || who["cluster"] != c.id || who["user"] != "operator-user" || who["role"] != "operator" {
			t.Errorf("whoami via %s = %d %v", c.id, st, who)
		}
	}
	st, body, _ := e.do(t, auth.Admin, http.MethodPost, "/v1/clusters/eu-1/echo", `{"x":"y"}`)
	if st != 200 || body != `{"x":"y"}` {
		t.Errorf("POST through the manager = %d %q", st, body)
	}
	c := e.cluster(t, "eu-1")
	if c.Status != wire.ClusterConnected || c.Node != "eu-gw-1" || c.Epoch != 4 || c.Version != "v-test" || c.ConnectedSince.IsZero() || c.LastHeartbeat.IsZero() {
		t.Errorf("registry entry = %+v, want connected eu-gw-1 at epoch 4", c)
	}
	if c := e.cluster(t, "ap-1"); c.Status != wire.ClusterDisconnected {
		t.Errorf("ap-1 = %+v, want disconnected", c)
	}
}

func TestRouteErrors(t *testing.T) {
	e := newEnv(t, 300*time.Millisecond)
	stuck := e.gateway(t, "eu-1", "eu-gw-1", 1)
	e.gateway(t, "us-1", "us-gw-1", 1)
	e.waitRouted(t, "eu-1", "eu-gw-1")
	e.waitRouted(t, "us-1", "us-gw-1")
	tests := []struct {
		name   string
		role   auth.Role
		method string
		path   string
		body   string
		want   int
		detail string
	}{
		{"unknown cluster", auth.Viewer, "GET", "/v1/clusters/nope/services", "", 404, "not registered"},
		{"disconnected cluster", auth.Viewer, "GET", "/v1/clusters/ap-1/services", "", 503, "not connected"},
		{"no token", "", "GET", "/v1/clusters/eu-1/whoami", "", 401, "token"},
		{"bad cluster ID", auth.Viewer, "GET", "/v1/clusters/EU_1/whoami", "", 400, "cluster ID"},
		{"oversized body", auth.Admin, "POST", "/v1/clusters/eu-1/echo", strings.Repeat("x", 65<<10), 413, "larger than"},
		{"stuck gateway times out", auth.Viewer, "GET", "/v1/clusters/eu-1/stuck", "", 504, "did not answer within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			st, body, h := e.do(t, tt.role, tt.method, tt.path, tt.body)
			if st != tt.want || !strings.Contains(body, tt.detail) {
				t.Errorf("%s %s = %d %s, want %d mentioning %q", tt.method, tt.path, st, body, tt.want, tt.detail)
			}
			if h.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", h.Get("Content-Type"))
			}
			if d := time.Since(start); tt.want != 504 && d > time.Second {
				t.Errorf("took %v, want a fast failure", d)
			}
		})
	}
	t.Run("a stuck cluster does not hold up the others", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { e.do(t, auth.Viewer, "GET", "/v1/clusters/eu-1/stuck", "") })
		}
		for i := range 20 {
			if st, who := e.whoami(t, "us-1"); st != 200 || who["node"] != "us-gw-1" {
				t.Fatalf("request %d to us-1 while eu-1 is stuck: %d", i, st)
			}
		}
		wg.Wait()
	})
	t.Run("tunnels survived", func(t *testing.T) {
		close(stuck.release)
		for _, id := range []string{"eu-1", "us-1"} {
			if st, _ := e.whoami(t, id); st != 200 {
				t.Errorf("%s after the errors: %d", id, st)
			}
		}
	})
}

func TestTunnelAdmission(t *testing.T) {
	e := newEnv(t, time.Minute)
	e.gateway(t, "eu-1", "eu-gw-1", 5)
	e.waitRouted(t, "eu-1", "eu-gw-1")
	dial := func(cred, cluster string, epoch int64) error {
		s, err := tunnel.Dial(t.Context(), e.srv.URL, tunnel.DialOptions{Credential: tunnel.Secret(cred),
			Hello: tunnel.Hello{Cluster: cluster, Node: "intruder", Epoch: epoch}})
		if err == nil {
			go s.Serve(t.Context(), http.NotFoundHandler(), func(ctx context.Context, _ tunnel.Caller) context.Context { return ctx })
		}
		return err
	}
	tests := []struct {
		name    string
		cred    string
		cluster string
		epoch   int64
		want    error
	}{
		{"no credential", "", "eu-1", 9, tunnel.ErrUnauthorized},
		{"made-up credential", "agc_eu-1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "eu-1", 9, tunnel.ErrUnauthorized},
		{"a login token", e.tokens[auth.Admin], "eu-1", 9, tunnel.ErrUnauthorized},
		{"us-1's credential as eu-1", e.creds["us-1"], "eu-1", 9, tunnel.ErrWrongCluster},
		{"stale epoch", e.creds["eu-1"], "eu-1", 4, tunnel.ErrStaleEpoch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := dial(tt.cred, tt.cluster, tt.epoch); !errors.Is(err, tt.want) {
				t.Errorf("dial = %v, want %v", err, tt.want)
			}
			if st, who := e.whoami(t, "eu-1"); st != 200 || who["node"] != "eu-gw-1" {
				t.Errorf("after a refused tunnel eu-1 answers %d from %q, want eu-gw-1", st, who["node"])
			}
		})
	}
	outer := t
	t.Run("a newer epoch replaces the tunnel", func(t *testing.T) {
		old := e.hub.Link("eu-1")
		e.gateway(outer, "eu-1", "eu-gw-2", 6)
		e.waitRouted(t, "eu-1", "eu-gw-2")
		if err := old.Err(); !errors.Is(err, tunnel.ErrReplaced) {
			t.Errorf("the replaced tunnel ended with %v, want ErrReplaced", err)
		}
		if c := e.cluster(t, "eu-1"); c.Epoch != 6 || c.Node != "eu-gw-2" {
			t.Errorf("registry = %+v, want eu-gw-2 at epoch 6", c)
		}
	})
	t.Run("the fence survives a manager fail-over", func(t *testing.T) {
		e.endTerm() // every tunnel closes; the registry keeps epoch 6
		e.startTerm()
		e.waitRouted(t, "eu-1", "eu-gw-2") // the connector came back
		if err := dial(e.creds["eu-1"], "eu-1", 5); !errors.Is(err, tunnel.ErrStaleEpoch) {
			t.Errorf("epoch 5 after fail-over: %v, want ErrStaleEpoch", err)
		}
	})
}

func TestStandbyManager(t *testing.T) {
	e := newEnv(t, time.Minute)
	e.leader.active.Store(false)
	for _, path := range []string{"/v1/clusters", "/v1/clusters/eu-1/whoami", "/readyz"} {
		st, body, _ := e.do(t, auth.Admin, http.MethodGet, path, "")
		if st != 503 || !strings.Contains(body, "m-2 at https://10.0.0.2:9443") {
			t.Errorf("standby GET %s = %d %s, want 503 naming the active", path, st, body)
		}
	}
	_, err := tunnel.Dial(t.Context(), e.srv.URL, tunnel.DialOptions{Credential: tunnel.Secret(e.creds["eu-1"]),
		Hello: tunnel.Hello{Cluster: "eu-1", Node: "gw", Epoch: 1}})
	if !errors.Is(err, tunnel.ErrNotActive) {
		t.Errorf("tunnel to a standby: %v, want ErrNotActive", err)
	}
}

func TestTermEndAndDeleteDropTunnels(t *testing.T) {
	e := newEnv(t, time.Minute)
	eu := e.gateway(t, "eu-1", "eu-gw-1", 2)
	e.gateway(t, "us-1", "us-gw-1", 1)
	e.waitRouted(t, "eu-1", "eu-gw-1")
	e.waitRouted(t, "us-1", "us-gw-1")
	t.Run("deleting a cluster revokes it", func(t *testing.T) {
		if st, body, _ := e.do(t, auth.Admin, http.MethodDelete, "/v1/clusters/eu-1", ""); st != 204 {
			t.Fatalf("DELETE = %d %s", st, body)
		}
		waitUntil(t, "eu-1 dropped", func() bool { return e.hub.Link("eu-1") == nil })
		if st, _ := e.whoami(t, "eu-1"); st != 404 {
			t.Errorf("routing to a deleted cluster = %d, want 404", st)
		}
		eu.stop()
	})
	t.Run("the end of the term closes every tunnel", func(t *testing.T) {
		e.endTerm()
		if e.hub.Link("us-1") != nil {
			t.Error("a tunnel outlived the term")
		}
		c, err := e.reg.Get(t.Context(), "us-1")
		if err != nil || c.Node != "us-gw-1" || c.LastHeartbeat.IsZero() {
			t.Errorf("registry after disconnect = %+v, %v; want the last node and heartbeat kept", c, err)
		}
		e.startTerm()
		e.waitRouted(t, "us-1", "us-gw-1")
	})
}

func TestTimeoutFor(t *testing.T) {
	s := &Server{RequestTimeout: time.Minute}
	tests := []struct {
		name   string
		method string
		rest   string
		query  string
		body   string
		want   time.Duration
	}{
		{"plain read", "GET", "services", "", "", time.Minute},
		{"async run", "POST", "services/ping/run", "", `{"async":true}`, time.Minute},
		{"sync run, default wait", "POST", "services/ping/run", "", `{}`, 70 * time.Second},
		{"sync run, long wait", "POST", "services/ping/run", "", `{"waitSeconds":300}`, 310 * time.Second},
		{"sync run, over the cap", "POST", "services/ping/run", "", `{"waitSeconds":3000}`, MaxRequestTimeout},
		{"short sync run keeps the floor", "POST", "services/ping/run", "", `{"waitSeconds":5}`, time.Minute},
		{"malformed run body", "POST", "services/ping/run", "", `{`, time.Minute},
		{"wait", "GET", "executions/01H/wait", "timeout=120", "", 130 * time.Second},
		{"wait, default", "GET", "executions/01H/wait", "", "", 70 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			if got := s.timeoutFor(tt.method, tt.rest, q, []byte(tt.body)); got != tt.want {
				t.Errorf("timeoutFor = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Run("defaults are valid", func(t *testing.T) {
		c := DefaultConfig()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("environment", func(t *testing.T) {
		c := DefaultConfig()
		envs := map[string]string{"AUTOGATE_MANAGER_STORE": "dynamodb", "AUTOGATE_MANAGER_TABLE": "t",
			"AUTOGATE_MANAGER_HEARTBEAT": "2s", "AUTOGATE_MANAGER_MAX_BODY": "2048"}
		if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil {
			t.Fatal(err)
		}
		if c.Store != "dynamodb" || c.Table != "t" || c.Heartbeat != 2*time.Second || c.MaxBodyBytes != 2048 {
			t.Errorf("after FromEnv: %+v", c)
		}
		if err := c.FromEnv(func(k string) (string, bool) { return "x", k == "AUTOGATE_MANAGER_HEARTBEAT" }); err == nil {
			t.Error("a bad duration was accepted")
		}
	})
	t.Run("emf metrics", func(t *testing.T) {
		c := DefaultConfig()
		if c.EMFMetrics {
			t.Fatal("EMF metrics on by default")
		}
		envs := map[string]string{"AUTOGATE_MANAGER_EMF_METRICS": "true"}
		if err := c.FromEnv(func(k string) (string, bool) { v, ok := envs[k]; return v, ok }); err != nil || !c.EMFMetrics {
			t.Fatalf("from env: %v, %v; want true", c.EMFMetrics, err)
		}
		if err := c.FromEnv(func(k string) (string, bool) { return "x", k == "AUTOGATE_MANAGER_EMF_METRICS" }); err == nil {
			t.Error("a bad boolean was accepted")
		}
	})
	tests := []struct {
		name   string
		modify func(*Config)
		flag   string
	}{
		{"cluster", func(c *Config) { c.Cluster = "Manager!" }, "--cluster"},
		{"store", func(c *Config) { c.Store = "s3" }, "--store"},
		{"table", func(c *Config) { c.Store = "dynamodb" }, "--table"},
		{"tls pair", func(c *Config) { c.TLSCert = "a" }, "--tls-cert"},
		{"heartbeat", func(c *Config) { c.Heartbeat = time.Hour }, "--heartbeat"},
		{"timeout", func(c *Config) { c.RequestTimeout = time.Hour }, "--request-timeout"},
		{"frame", func(c *Config) { c.MaxFrameBytes = 10 }, "--max-frame"},
		{"body over frame", func(c *Config) { c.MaxBodyBytes = int64(c.MaxFrameBytes) }, "--max-body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.flag)
			}
		})
	}
}

func TestOpenAPIAndHealth(t *testing.T) {
	e := newEnv(t, time.Minute)
	tests := []struct {
		path string
		want int
		has  string
	}{
		{"/v1/openapi.json", 200, `"/v1/clusters/{id}"`},
		{"/healthz", 200, "ok"},
		{"/readyz", 200, "active"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			st, body, _ := e.do(t, "", http.MethodGet, tt.path, "")
			if st != tt.want || !strings.Contains(body, tt.has) {
				t.Errorf("GET %s = %d %.200s, want %d containing %q", tt.path, st, body, tt.want, tt.has)
			}
		})
	}
}

// TestRouteStreamsOutput: an execution's output stream comes through the
// manager as the gateway writes it, not when it ends, and a resume's
// Last-Event-ID reaches the gateway.
func TestRouteStreamsOutput(t *testing.T) {
	e := newEnv(t, time.Second) // shorter than the stream: streams get MaxRequestTimeout
	g := e.gateway(t, "eu-1", "gw-1", 1)
	e.waitRouted(t, "eu-1", "gw-1")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+"/v1/clusters/eu-1/executions/X1/output", nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[auth.Viewer])
	req.Header.Set("Last-Event-ID", "7.2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	rd := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 3 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the first event before the gateway ended: %v (got %q)", err, lines)
		}
		lines = append(lines, line)
	}
	if want := []string{"event: output\n", "id: 1.0\n", "data: X1 after 7.2\n"}; strings.Join(lines, "") != strings.Join(want, "") {
		t.Errorf("first event %q, want %q", lines, want)
	}
	time.Sleep(1500 * time.Millisecond) // past the routed-request timeout: the stream lives on
	close(g.release)
	rest, err := io.ReadAll(rd)
	if err != nil || string(rest) != "\nevent: end\ndata: {}\n\n" {
		t.Errorf("rest %q, %v", rest, err)
	}
}
