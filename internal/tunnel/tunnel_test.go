package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
)

const goodCredential = Secret("agc_eu-1_good")

const serverTimeout = 200 * time.Millisecond

type callerKey struct{}

func trustAll(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// fakeManager is a minimal manager: it checks the credential, fences on
// the newest epoch it has admitted and hands admitted links to the test.
type fakeManager struct {
	t      testing.TB
	srv    *httptest.Server
	cfg    LinkConfig
	active atomic.Bool
	links  chan *Link

	mu     sync.Mutex
	newest int64
	served sync.WaitGroup
}

func newFakeManager(t testing.TB, cfg LinkConfig) *fakeManager {
	t.Helper()
	m := &fakeManager{t: t, cfg: cfg, links: make(chan *Link, 16)}
	m.active.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ConnectPath {
			http.NotFound(w, r)
			return
		}
		if !m.active.Load() {
			http.Error(w, `{"detail":"standby"}`, http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+string(goodCredential) {
			http.Error(w, `{"detail":"bad credential"}`, http.StatusUnauthorized)
			return
		}
		l, err := Accept(ctx, w, r, m.cfg)
		if err != nil {
			return
		}
		m.mu.Lock()
		h := l.Hello()
		if h.Cluster != "eu-1" {
			m.mu.Unlock()
			l.Refuse(fmt.Errorf("%w: credential of eu-1 used by %s", ErrWrongCluster, h.Cluster))
			return
		}
		if h.Epoch < m.newest {
			m.mu.Unlock()
			l.Refuse(fmt.Errorf("%w: %d < %d", ErrStaleEpoch, h.Epoch, m.newest))
			return
		}
		m.newest = h.Epoch
		m.served.Add(1)
		m.mu.Unlock()
		defer m.served.Done()
		m.links <- l
		_ = l.Serve(ctx, Welcome{Manager: "m-1"}) // the test inspects l.Err
	}))
	// Short server timeouts, as a production server has longer ones: the
	// tunnel must outlive them.
	m.srv.Config.ReadTimeout, m.srv.Config.WriteTimeout = serverTimeout, serverTimeout
	m.srv.Start()
	t.Cleanup(func() {
		cancel()
		m.served.Wait()
		m.srv.Close()
	})
	return m
}

// link waits for the next admitted link.
func (m *fakeManager) link() *Link {
	m.t.Helper()
	select {
	case l := <-m.links:
		return l
	case <-time.After(10 * time.Second):
		m.t.Fatal("no tunnel admitted within 10s")
		return nil
	}
}

// gateway dials m and serves h until the test ends or stop is called.
type gateway struct {
	sess *Session
	stop context.CancelFunc
	done chan error
}

func dialGateway(t testing.TB, m *fakeManager, epoch int64, h http.Handler, opts DialOptions) *gateway {
	t.Helper()
	opts.Credential = goodCredential
	opts.Hello = Hello{Cluster: "eu-1", Node: "gw-1", Epoch: epoch}
	s, err := Dial(t.Context(), m.srv.URL, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	g := &gateway{sess: s, stop: stop, done: make(chan error, 1)}
	go func() { g.done <- s.Serve(ctx, h, trustAll) }()
	t.Cleanup(func() { stop(); <-g.done })
	return g
}

func get(path string) *Request {
	return &Request{Head: RequestHead{Method: http.MethodGet, Path: path, Caller: Caller{User: "alice", Role: "admin"}, TimeoutMillis: 10000}}
}

// waitUntil polls cond every 5 ms for up to 10 s.
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

func TestRoundTrip(t *testing.T) {
	m := newFakeManager(t, LinkConfig{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/echo/{name}", func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callerKey{}).(Caller)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Set-Cookie", "never=forwarded")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s|%s|%s|%s|%s|%s", r.PathValue("name"), r.URL.Query().Get("q"), c.User, c.Role, r.Header.Get("X-Request-Id"), body)
	})
	dialGateway(t, m, 1, mux, DialOptions{})
	l := m.link()
	if h := l.Hello(); h.Cluster != "eu-1" || h.Node != "gw-1" || h.Epoch != 1 || h.Protocol != Protocol {
		t.Errorf("hello = %+v", h)
	}
	resp, err := l.RoundTrip(t.Context(), &Request{
		Head: RequestHead{Method: http.MethodPost, Path: "/v1/echo/a b", RawPath: "/v1/echo/a%20b", RawQuery: "q=1",
			Header: http.Header{"X-Request-Id": {"r-1"}}, Caller: Caller{User: "alice", Role: "operator"}, TimeoutMillis: 5000},
		Body: []byte("payload"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(resp.Body), "a b|1|alice|operator|r-1|payload"; got != want || resp.Head.Status != http.StatusCreated {
		t.Errorf("response = %d %q, want 201 %q", resp.Head.Status, got, want)
	}
	if resp.Head.Header.Get("Set-Cookie") != "" || resp.Head.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("response headers = %v, want Content-Type only", resp.Head.Header)
	}
}

func TestTunnelOutlivesServerTimeouts(t *testing.T) {
	m := newFakeManager(t, LinkConfig{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	dialGateway(t, m, 1, mux, DialOptions{})
	l := m.link()
	start := time.Now()
	for n := 0; time.Since(start) < 3*serverTimeout; n++ {
		if resp, err := l.RoundTrip(t.Context(), get("/v1/ok")); err != nil || string(resp.Body) != "ok" {
			t.Fatalf("request %d, %v after connecting (server timeouts %v): %v", n, time.Since(start), serverTimeout, err)
		}
	}
}

func TestNoHeadOfLineBlocking(t *testing.T) {
	m := newFakeManager(t, LinkConfig{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "slow")
	})
	mux.HandleFunc("GET /v1/fast", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "fast") })
	dialGateway(t, m, 1, mux, DialOptions{})
	l := m.link()
	slow := make(chan string, 1)
	go func() {
		resp, err := l.RoundTrip(context.Background(), get("/v1/slow"))
		if err != nil {
			slow <- err.Error()
			return
		}
		slow <- string(resp.Body)
	}()
	waitUntil(t, "slow request in flight", func() bool { return l.InFlight() == 1 })
	for i := range 20 {
		resp, err := l.RoundTrip(t.Context(), get("/v1/fast"))
		if err != nil || string(resp.Body) != "fast" {
			t.Fatalf("fast request %d behind a slow one: %v", i, err)
		}
	}
	close(release)
	if got := <-slow; got != "slow" {
		t.Errorf("slow request = %q", got)
	}
}

func TestCallerTimeoutCancelsOnGateway(t *testing.T) {
	m := newFakeManager(t, LinkConfig{})
	cancelled := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stuck", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(cancelled)
	})
	mux.HandleFunc("GET /v1/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	dialGateway(t, m, 1, mux, DialOptions{})
	l := m.link()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := l.RoundTrip(ctx, get("/v1/stuck"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RoundTrip past its deadline = %v, want DeadlineExceeded", err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway's handler was not cancelled")
	}
	if resp, err := l.RoundTrip(t.Context(), get("/v1/ok")); err != nil || string(resp.Body) != "ok" {
		t.Errorf("after a timed-out request the link is unusable: %v", err)
	}
}

func TestSizeLimits(t *testing.T) {
	const maxFrame = 128 << 10
	m := newFakeManager(t, LinkConfig{MaxFrame: maxFrame})
	big := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16) // 3 MiB, many chunks
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("GET /v1/huge", func(w http.ResponseWriter, r *http.Request) { w.Write(big); w.Write(big) })
	mux.HandleFunc("GET /v1/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	dialGateway(t, m, 1, mux, DialOptions{MaxResponse: 4 << 20})
	l := m.link()

	t.Run("response larger than a frame arrives in chunks", func(t *testing.T) {
		resp, err := l.RoundTrip(t.Context(), get("/v1/big"))
		if err != nil || !bytes.Equal(resp.Body, big) {
			t.Fatalf("big response: err %v, %d bytes, want %d", err, len(resp.Body), len(big))
		}
	})
	t.Run("response over the gateway's limit becomes a 502", func(t *testing.T) {
		resp, err := l.RoundTrip(t.Context(), get("/v1/huge"))
		if err != nil || resp.Head.Status != http.StatusBadGateway || !strings.Contains(string(resp.Body), "limit") {
			t.Fatalf("huge response = %v, %+v; want a 502 problem naming the limit", err, resp)
		}
	})
	t.Run("request over the frame limit is refused before sending", func(t *testing.T) {
		req := get("/v1/ok")
		req.Head.Method, req.Body = http.MethodPost, make([]byte, maxFrame)
		_, err := l.RoundTrip(t.Context(), req)
		var fe *FrameTooLargeError
		if !errors.As(err, &fe) {
			t.Fatalf("oversized request = %v, want a FrameTooLargeError", err)
		}
	})
	t.Run("the link survived", func(t *testing.T) {
		if resp, err := l.RoundTrip(t.Context(), get("/v1/ok")); err != nil || string(resp.Body) != "ok" {
			t.Fatalf("after refused sizes: %v", err)
		}
	})
}

func TestOversizedFrameFromPeerResetsConnection(t *testing.T) {
	m := newFakeManager(t, LinkConfig{MaxFrame: MinMaxFrame})
	g := dialGateway(t, m, 1, http.NotFoundHandler(), DialOptions{})
	l := m.link()
	ping, _ := Encode(&Frame{Type: FramePing}, MinMaxFrame)
	raw := append(ping, make([]byte, MinMaxFrame)...) // valid header, body far over the limit
	if err := g.sess.WriteRaw(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.done:
		g.done <- err // for the cleanup
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("gateway session ended with %v, want ErrFrameTooLarge (close 1009)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the manager kept a connection that sent an oversized frame")
	}
	waitUntil(t, "link closed", func() bool { return l.Err() != nil })
	if err := l.Err(); !errors.Is(err, ErrFrameTooLarge) || !errors.Is(err, ErrClosed) {
		t.Errorf("link error = %v, want ErrClosed and ErrFrameTooLarge", err)
	}
	if _, err := l.RoundTrip(t.Context(), get("/v1/x")); !errors.Is(err, ErrClosed) {
		t.Errorf("RoundTrip on the closed link = %v, want ErrClosed", err)
	}
}

func TestRefusals(t *testing.T) {
	m := newFakeManager(t, LinkConfig{})
	dialGateway(t, m, 5, http.NotFoundHandler(), DialOptions{})
	m.link()
	tests := []struct {
		name    string
		cred    Secret
		cluster string
		epoch   int64
		standby bool
		want    error
	}{
		{"wrong credential", "agc_eu-1_bad", "eu-1", 9, false, ErrUnauthorized},
		{"no credential", "", "eu-1", 9, false, ErrUnauthorized},
		{"credential of another cluster", goodCredential, "us-1", 9, false, ErrWrongCluster},
		{"stale epoch", goodCredential, "eu-1", 4, false, ErrStaleEpoch},
		{"bad hello", goodCredential, "EU_1", 9, false, ErrBadFrame},
		{"standby manager", goodCredential, "eu-1", 9, true, ErrNotActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.active.Store(!tt.standby)
			defer m.active.Store(true)
			s, err := Dial(t.Context(), m.srv.URL, DialOptions{Credential: tt.cred, Hello: Hello{Cluster: tt.cluster, Node: "gw-2", Epoch: tt.epoch}})
			if err == nil {
				s.ws.CloseNow()
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Dial = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDeposedGatewayDropsAtOnce(t *testing.T) {
	m := newFakeManager(t, LinkConfig{})
	inHandler := make(chan struct{})
	handlerDone := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/long", func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-r.Context().Done()
		handlerDone <- r.Context().Err()
	})
	g := dialGateway(t, m, 1, mux, DialOptions{})
	l := m.link()
	rt := make(chan error, 1)
	go func() { _, err := l.RoundTrip(context.Background(), get("/v1/long")); rt <- err }()
	<-inHandler
	start := time.Now()
	g.stop() // the lease term ended
	if err := <-handlerDone; err == nil {
		t.Error("the handler's context was not cancelled")
	}
	err := <-g.done
	g.done <- err
	if err := <-rt; !errors.Is(err, ErrClosed) {
		t.Errorf("request in flight on the deposed gateway = %v, want ErrClosed", err)
	}
	waitUntil(t, "link closed", func() bool { return l.Err() != nil })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("dropping the connection took %v, want well under 2s", d)
	}
}

func TestLinkClosesSilentGateway(t *testing.T) {
	clk := clock.NewFake(time.Now())
	// An hour's heartbeat: the gateway sends no ping during the test, and the
	// fake clock decides when the manager gives up.
	m := newFakeManager(t, LinkConfig{Heartbeat: time.Hour, Clock: clk})
	dialGateway(t, m, 1, http.NotFoundHandler(), DialOptions{})
	l := m.link()
	waitUntil(t, "watchdog waiting", func() bool { return clk.Waiters() > 0 })
	clk.Advance(3 * time.Hour)
	if l.Err() != nil {
		t.Fatalf("closed after 3 silent heartbeats: %v", l.Err())
	}
	waitUntil(t, "watchdog waiting again", func() bool { return clk.Waiters() > 0 })
	clk.Advance(2 * time.Hour)
	waitUntil(t, "link closed", func() bool { return l.Err() != nil })
	if !errors.Is(l.Err(), ErrHeartbeat) {
		t.Errorf("link error = %v, want ErrHeartbeat", l.Err())
	}
}

func TestConnector(t *testing.T) {
	standby := newFakeManager(t, LinkConfig{})
	standby.active.Store(false)
	m := newFakeManager(t, LinkConfig{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callerKey{}).(Caller)
		fmt.Fprint(w, c.User)
	})
	conn, err := NewConnector(Config{URLs: []string{standby.srv.URL, m.srv.URL}, Credential: goodCredential,
		Cluster: "eu-1", Node: "gw-1", Handler: mux, Trust: trustAll, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- conn.Run(ctx, 3) }()

	t.Run("skips the standby", func(t *testing.T) {
		l := m.link()
		if l.Hello().Epoch != 3 {
			t.Errorf("hello epoch = %d, want 3", l.Hello().Epoch)
		}
		if resp, err := l.RoundTrip(t.Context(), get("/v1/whoami")); err != nil || string(resp.Body) != "alice" {
			t.Fatalf("routed request: %v", err)
		}
		waitUntil(t, "connected", func() bool { return conn.Connected() == m.srv.URL })
		t.Run("reconnects after losing the link", func(t *testing.T) {
			l.Close(errors.New("test closes the link"))
			l2 := m.link()
			if resp, err := l2.RoundTrip(t.Context(), get("/v1/whoami")); err != nil || string(resp.Body) != "alice" {
				t.Fatalf("after reconnecting: %v", err)
			}
		})
	})
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run after its context ended = %v, want nil", err)
	}
	if conn.Connected() != "" {
		t.Error("still reports a connection after Run returned")
	}
}

func TestNewConnectorValidates(t *testing.T) {
	good := Config{URLs: []string{"https://m:9443"}, Credential: "c", Cluster: "eu-1", Node: "n", Handler: http.NotFoundHandler(), Trust: trustAll}
	tests := []struct {
		name   string
		modify func(*Config)
	}{
		{"no URL", func(c *Config) { c.URLs = nil }},
		{"bad URL", func(c *Config) { c.URLs = []string{"ftp://x"} }},
		{"no credential", func(c *Config) { c.Credential = "" }},
		{"bad cluster", func(c *Config) { c.Cluster = "EU 1" }},
		{"no node", func(c *Config) { c.Node = "" }},
		{"no trust", func(c *Config) { c.Trust = nil }},
		{"backoff order", func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }},
	}
	if _, err := NewConnector(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.modify(&c)
			if _, err := NewConnector(c); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestBackoffIsJitteredAndBounded(t *testing.T) {
	c := &Connector{cfg: Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	tests := []struct {
		failures int
		lo, hi   time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 200 * time.Millisecond, 400 * time.Millisecond},
		{30, 500 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.failures), func(t *testing.T) {
			for range 100 {
				if d := c.backoff(tt.failures); d < tt.lo || d > tt.hi {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.failures, d, tt.lo, tt.hi)
				}
			}
		})
	}
}

func TestSecretRedacts(t *testing.T) {
	s := Secret("agc_eu-1_topsecret")
	if strings.Contains(fmt.Sprint(s), "topsecret") || strings.Contains(fmt.Sprintf("%v %s", s, s), "topsecret") {
		t.Error("Secret printed itself")
	}
	if s.LogValue().String() != "[REDACTED]" {
		t.Error("Secret logged itself")
	}
}

// TestStreamingResponse: what a handler flushes crosses the tunnel at
// once, before the handler ends; a reader that stops early cancels the
// handler on the gateway.
func TestStreamingResponse(t *testing.T) {
	m := newFakeManager(t, LinkConfig{})
	release := make(chan struct{})
	canceled := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		fmt.Fprint(w, "event: one\n\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		select {
		case <-release:
		case <-r.Context().Done():
			close(canceled)
			return
		}
		fmt.Fprint(w, "event: two\n\n")
	})
	dialGateway(t, m, 1, mux, DialOptions{})
	l := m.link()
	req := &Request{Head: RequestHead{Method: http.MethodGet, Path: "/v1/stream", TimeoutMillis: 10000,
		Header: http.Header{"Last-Event-ID": {"3.4"}}}}

	st, err := l.Open(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if st.Head.Status != 200 || st.Head.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("head = %+v", st.Head)
	}
	buf := make([]byte, 64)
	n, err := st.Read(buf)
	if err != nil || string(buf[:n]) != "event: one\n\n" {
		t.Fatalf("first read before the handler ended: %q, %v", buf[:n], err)
	}
	close(release)
	rest, err := io.ReadAll(st)
	if err != nil || string(rest) != "event: two\n\n" {
		t.Errorf("rest: %q, %v", rest, err)
	}
	st.Close()

	// A reader that gives up: the gateway's handler is cancelled.
	release = make(chan struct{})
	st, err = l.Open(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("closing the stream did not cancel the handler")
	}
	if got := l.InFlight(); got != 0 {
		t.Errorf("in flight after close: %d", got)
	}
}
