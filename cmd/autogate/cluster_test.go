package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/devcert"
	"github.com/autogate/autogate/internal/emulator"
	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
	"github.com/autogate/autogate/internal/resource"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
)

// Process-level tests of active/standby gateways on DynamoDB Local: real
// `autogate server` processes, killed, paused and cut off for real.

// proxy is a TCP proxy between one gateway and DynamoDB, so a test can cut
// that gateway off while the others keep their connection.
type proxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	cut      bool
	conns    []net.Conn
}

func newProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		cut := p.cut
		p.mu.Unlock()
		if cut {
			continue // blackhole: hold the connection, forward nothing
		}
		go func() {
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			io.Copy(c, up)
			c.Close()
		}()
	}
}

// setCut blackholes (true) or restores (false) the path to DynamoDB. Cutting
// also drops every open connection, as a failed network path would.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// cluster is a set of gateway processes sharing one table.
type cluster struct {
	t        testing.TB
	dir      string
	table    string
	id       string
	env      []string
	cert     string
	key      string
	passFile string
	nodes    []*server
	proxies  []*proxy
	// recorders, when set, sit between each node and its proxy.
	recorders []*ddbRecorder
	extra     []string
}

func newCluster(t testing.TB, n int) *cluster {
	t.Helper()
	return newClusterWith(t, n)
}

// newClusterWith starts n gateways of cluster ha-1 with extra server flags.
func newClusterWith(t testing.TB, n int, extra ...string) *cluster {
	t.Helper()
	return newClusterID(t, "ha-1", n, extra...)
}

// newClusterRecorded starts n gateways of cluster ha-1 whose DynamoDB
// calls are recorded (cluster.recorders).
func newClusterRecorded(t testing.TB, n int) *cluster {
	t.Helper()
	return newClusterOpts(t, "ha-1", n, true)
}

// newClusterID starts n gateways of cluster id with extra server flags.
func newClusterID(t testing.TB, id string, n int, extra ...string) *cluster {
	t.Helper()
	return newClusterOpts(t, id, n, false, extra...)
}

func newClusterOpts(t testing.TB, id string, n int, record bool, extra ...string) *cluster {
	t.Helper()
	ep := emulator.DynamoDB(t)
	c := &cluster{t: t, dir: t.TempDir(), table: fmt.Sprintf("t%d", time.Now().UnixNano()), id: id, extra: extra}
	c.env = append(emulator.Env(), "AUTOGATE_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	c.cert, c.key = filepath.Join(c.dir, "tls.crt"), filepath.Join(c.dir, "tls.key")
	if _, err := devcert.Ensure(c.cert, c.key, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	c.passFile = filepath.Join(c.dir, "admin-password")
	initCmd := exec.Command(binPath, "init", "table", "--table", c.table)
	initCmd.Env = append(os.Environ(), c.env...)
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("autogate init table: %v\n%s", err, out)
	}
	for i := range n {
		c.proxies = append(c.proxies, newProxy(t, strings.TrimPrefix(ep.URL, "http://")))
		if record {
			c.recorders = append(c.recorders, newDDBRecorder(t, c.proxies[i].url()))
		}
		c.nodes = append(c.nodes, c.start(i, ""))
	}
	return c
}

// start runs gateway i (again), on listen if given.
func (c *cluster) start(i int, listen string) *server {
	c.t.Helper()
	extra := []string{"--store", "dynamodb", "--table", c.table, "--cluster", c.id, "--node", fmt.Sprintf("gw-%d", i),
		"--tls-cert", c.cert, "--tls-key", c.key, "--admin-password-file", c.passFile}
	extra = append(extra, c.extra...)
	if listen != "" {
		extra = append(extra, "--listen", listen)
	}
	ddb := c.proxies[i].url()
	if c.recorders != nil {
		ddb = c.recorders[i].srv.URL
	}
	env := append(append([]string{}, c.env...), "AWS_ENDPOINT_URL_DYNAMODB="+ddb)
	return startServerEnv(c.t, filepath.Join(c.dir, fmt.Sprintf("node-%d", i), "data"), filepath.Join(c.dir, "wheels"), env, extra...)
}

var insecureHTTP = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// ready reports whether node i answers /readyz 200.
func (c *cluster) ready(i int) bool {
	if c.nodes[i] == nil || c.nodes[i].url == "" {
		return false
	}
	resp, err := insecureHTTP.Get(c.nodes[i].url + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// active waits until exactly one node is ready and returns it, failing if
// two ever are at once.
func (c *cluster) active(exclude int) int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var ready []int
		for i := range c.nodes {
			if i != exclude && c.ready(i) {
				ready = append(ready, i)
			}
		}
		if len(ready) > 1 {
			c.t.Fatalf("two active gateways at once: %v", ready)
		}
		if len(ready) == 1 {
			return ready[0]
		}
		tick(20 * time.Millisecond)
	}
	c.t.Fatal("no active gateway within 30s")
	return -1
}

func tick(d time.Duration) { <-time.After(d) }

// client returns an admin API client for node i, logging in there.
func (c *cluster) client(i int) *client.Client {
	c.t.Helper()
	return c.clientWith(i, c.login(i))
}

// clientWith returns an API client for node i with a token from any node
// (tokens live in the shared table).
func (c *cluster) clientWith(i int, token string) *client.Client {
	c.t.Helper()
	cl, err := client.New(c.nodes[i].url, token, client.TLS{CAFile: c.cert})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// login logs in as admin on node i and returns the token.
func (c *cluster) login(i int) string {
	c.t.Helper()
	anon, err := client.New(c.nodes[i].url, "", client.TLS{CAFile: c.cert})
	if err != nil {
		c.t.Fatal(err)
	}
	raw, err := os.ReadFile(c.passFile)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := anon.Login(context.Background(), "admin", strings.TrimSpace(string(raw)))
	if err != nil {
		c.t.Fatalf("login to node %d: %v", i, err)
	}
	return resp.Token
}

func (c *cluster) kill(i int, sig syscall.Signal) {
	c.t.Helper()
	if err := c.nodes[i].Cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %v to node %d: %v", sig, i, err)
	}
}

func repo(name string) *resource.Repository {
	return &resource.Repository{Meta: resource.Meta{Name: name}, URL: "/srv/git/" + name}
}

func TestClusterKillActive(t *testing.T) {
	c := newCluster(t, 3)
	a := c.active(-1)
	cl := c.client(a)
	if err := cl.Create(t.Context(), repo("before")); err != nil {
		t.Fatal(err)
	}
	nodes, err := cl.Nodes(t.Context())
	if err != nil || len(nodes) != 3 {
		t.Errorf("get nodes = %+v, %v; want 3 gateways", nodes, err)
	}
	start := time.Now()
	c.kill(a, syscall.SIGKILL)
	c.nodes[a].Killed = true
	c.nodes[a].wait()
	b := c.active(a)
	t.Logf("failover after kill -9: %v (node %d → node %d)", time.Since(start), a, b)
	cl2 := c.client(b)
	if _, err := cl2.Get(t.Context(), resource.KindRepository, "before"); err != nil {
		t.Errorf("new active lost a resource: %v", err)
	}
	if err := cl2.Create(t.Context(), repo("after")); err != nil {
		t.Errorf("new active cannot write: %v", err)
	}
}

func TestClusterPausedActiveWritesNothing(t *testing.T) {
	c := newClusterRecorded(t, 2)
	a := c.active(-1)
	old := c.client(a)
	c.kill(a, syscall.SIGSTOP)
	b := c.active(a)
	if err := c.client(b).Create(t.Context(), repo("from-new-active")); err != nil {
		t.Fatal(err)
	}
	c.recorders[a].reset()
	c.kill(a, syscall.SIGCONT)
	// The woken node believes nothing: it forwards the write to the new
	// active (or, in the instant before its own timer ends its term,
	// tries it under its old epoch and is refused, 503). Either way no
	// write of its own lands.
	err := old.Create(t.Context(), repo("from-old-active"))
	if st := client.StatusOf(err); err != nil && st != http.StatusServiceUnavailable {
		t.Fatalf("write to the woken old active: %v (status %d), want success through the new active or 503", err, st)
	}
	_, gerr := c.client(b).Get(t.Context(), resource.KindRepository, "from-old-active")
	if (err == nil) != (gerr == nil) {
		t.Errorf("write through the woken node: %v; the record on the new active: %v", err, gerr)
	}
	if w := c.recorders[a].landed(storedynamo.RecordPK(c.id, resource.KindNode)); len(w) > 0 {
		t.Errorf("the woken old active's own writes landed: %+v", w)
	}
	// It rejoins as a standby: alive, not ready, naming the active.
	resp, err := insecureHTTP.Get(c.nodes[a].url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), fmt.Sprintf("gw-%d", b)) {
		t.Errorf("old active /readyz = %d %q, want 503 naming gw-%d", resp.StatusCode, body, b)
	}
	if c.active(-1) != b {
		t.Error("the active changed after the old one woke up")
	}
}

func TestClusterActiveCutOff(t *testing.T) {
	c := newCluster(t, 2)
	a := c.active(-1)
	c.proxies[a].setCut(true)
	start := time.Now()
	b := c.active(a)
	t.Logf("failover after cutting the active off DynamoDB: %v", time.Since(start))
	// The cut-off node has stepped down: not ready.
	deadline := time.Now().Add(10 * time.Second)
	for c.ready(a) {
		if time.Now().After(deadline) {
			t.Fatal("the cut-off active still reports ready")
		}
		tick(20 * time.Millisecond)
	}
	if err := c.client(b).Create(t.Context(), repo("after-cut")); err != nil {
		t.Errorf("new active cannot write: %v", err)
	}
	// Healed, it rejoins as a standby.
	c.proxies[a].setCut(false)
	if got := c.active(-1); got != b {
		t.Errorf("after healing the active is node %d, want %d", got, b)
	}
}

func TestClusterSIGTERMHandover(t *testing.T) {
	c := newCluster(t, 2)
	a := c.active(-1)
	tok := c.login(a)
	clients := []*client.Client{c.clientWith(0, tok), c.clientWith(1, tok)}
	stop := make(chan struct{})
	var failures, requests int
	var mu sync.Mutex
	done := untilClosed(stop, func(n int) {
		// A load balancer's view: try each gateway, skip standbys (503)
		// and ones that are gone (connection refused).
		ok := false
		for attempt := 0; attempt < 50 && !ok; attempt++ {
			for _, cl := range clients {
				err := cl.Create(context.Background(), repo(fmt.Sprintf("r-%d", n)))
				if err == nil {
					ok = true
					break
				}
				if st := client.StatusOf(err); st != 0 && st != http.StatusServiceUnavailable {
					t.Errorf("request %d: %v", n, err)
					ok = true
					break
				}
			}
			if !ok {
				tick(20 * time.Millisecond)
			}
		}
		mu.Lock()
		requests++
		if !ok {
			failures++
		}
		mu.Unlock()
	})
	tick(300 * time.Millisecond)
	start := time.Now()
	c.kill(a, syscall.SIGTERM)
	c.active(a)
	t.Logf("hand-over after SIGTERM: %v", time.Since(start))
	if err := c.nodes[a].wait(); err != nil {
		t.Errorf("SIGTERMed gateway exited with %v", err)
	}
	tick(300 * time.Millisecond)
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if failures != 0 || requests < 5 {
		t.Errorf("%d of %d requests failed during the hand-over (want 0 of at least 5)", failures, requests)
	}
}

// BenchmarkFailover kills the active gateway of a three-gateway cluster with
// SIGKILL once per iteration, times until a standby answers /readyz, and
// restarts the killed one as a standby. It reports p50/p99/max failover
// time and, beside the lease settings, the DynamoDB requests per hour the
// lease costs one cluster (make bench-failover). The gateways are the
// binary built without -race.
func BenchmarkFailover(b *testing.B) {
	usePlainBinary(b)
	c := newCluster(b, 3)
	var times []time.Duration
	for b.Loop() {
		a := c.active(-1)
		addr := strings.TrimPrefix(c.nodes[a].url, "https://")
		start := time.Now()
		c.kill(a, syscall.SIGKILL)
		c.nodes[a].wait()
		c.active(a)
		times = append(times, time.Since(start))
		c.nodes[a] = c.start(a, addr)
	}
	slices.Sort(times)
	pct := func(p float64) float64 { return times[int(p*float64(len(times)-1))].Seconds() }
	b.ReportMetric(pct(0.5), "p50-s")
	b.ReportMetric(pct(0.99), "p99-s")
	b.ReportMetric(times[len(times)-1].Seconds(), "max-s")
	cost := leasedynamo.EstimateCost(leasedynamo.Config{Table: c.table, Cluster: c.id, Node: "x"}, 2)
	b.Logf("lease cost with default settings, 1 active + 2 standbys: %s", cost)
}

func TestClusterStartupErrors(t *testing.T) {
	ep := emulator.DynamoDB(t)
	ddb := dynamodb.NewFromConfig(emulator.AWSConfig(t, ep), emulator.DynamoDBOptions)
	wrong := fmt.Sprintf("wrong%d", time.Now().UnixNano())
	if _, err := ddb.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(wrong),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	good := fmt.Sprintf("good%d", time.Now().UnixNano())
	initCmd := exec.Command(binPath, "init", "table", "--table", good)
	initCmd.Env = append(os.Environ(), emulator.Env()...)
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("init table: %v\n%s", err, out)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing table", []string{"--table", "no-such-table"}, "not found"},
		{"wrong key schema", []string{"--table", wrong}, "key schema"},
		{"illegal cluster ID", []string{"--table", good, "--cluster", "EU_1#x"}, "--cluster"},
		{"lease order", []string{"--table", good, "--lease-duration", "1s", "--renew-deadline", "2s"}, "lease"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, binPath, append([]string{"server", "--store", "dynamodb", "--listen", "127.0.0.1:0",
				"--data-dir", t.TempDir()}, tt.args...)...)
			cmd.Env = append(os.Environ(), emulator.Env()...)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(strings.ToLower(string(out)), strings.ToLower(tt.want)) {
				t.Errorf("server %v: err %v, output %q; want a failure mentioning %q", tt.args, err, out, tt.want)
			}
		})
	}
}
