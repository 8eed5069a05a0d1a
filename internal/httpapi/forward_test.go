package httpapi

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/lease"
)

// fakeLeader is a Leadership a test moves by hand.
type fakeLeader struct {
	mu     sync.Mutex
	active bool
	term   lease.Term
}

func (l *fakeLeader) Active() (bool, lease.Term) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active, l.term
}

func (l *fakeLeader) set(active bool, t lease.Term) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active, l.term = active, t
}

// seen is one request a stand-in active node received.
type seen struct {
	method, uri, host, auth, by, body string
}

// backend is a stand-in active node recording what reaches it.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newBackend(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, seen{r.Method, r.RequestURI, r.Host, r.Header.Get("Authorization"), r.Header.Get(ForwardedHeader), string(body)})
		b.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) got() []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.reqs...)
}

func answer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Answer", "active")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// deadAddress is an address nothing listens on any more.
func deadAddress(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	return addr
}

type fixture struct {
	lead  *fakeLeader
	local atomic.Int32
	fw    *Forwarder
}

func newForwardFixture(wait time.Duration) *fixture {
	f := &fixture{lead: &fakeLeader{}}
	f.fw = NewForwarder(ForwardConfig{
		Leader: f.lead, Node: "me", Wait: wait, LocalPaths: []string{"/healthz"}, MaxBodyBytes: 64,
		Local: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.local.Add(1)
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("X-Answer", "local")
			io.WriteString(w, "local:"+string(body))
		}),
		Transport: &http.Transport{},
	})
	return f
}

func (f *fixture) do(method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Host = "gw.example.com"
	r.Header.Set("Authorization", "Bearer tok-1")
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.fw.ServeHTTP(w, r)
	return w
}

func TestForwarderActiveServesLocally(t *testing.T) {
	f := newForwardFixture(time.Second)
	b := newBackend(t, answer(200, "remote"))
	f.lead.set(true, lease.Term{Holder: "me", Epoch: 2, Address: b.URL})
	w := f.do("POST", "/v1/services", `{"a":1}`)
	if w.Body.String() != `local:{"a":1}` || len(b.got()) != 0 {
		t.Errorf("active: answer %q, %d forwarded; want the local answer, none forwarded", w.Body, len(b.got()))
	}
}

func TestForwarderStandbyForwardsUnchanged(t *testing.T) {
	f := newForwardFixture(time.Second)
	b := newBackend(t, answer(201, "created"))
	f.lead.set(false, lease.Term{Holder: "other", Epoch: 3, Address: b.URL})
	w := f.do("POST", "/v1/services?dry=1", `{"name":"x"}`)
	if w.Code != 201 || w.Body.String() != "created" || w.Header().Get("X-Answer") != "active" {
		t.Errorf("answer %d %q %v, want the active's 201 created", w.Code, w.Body, w.Header())
	}
	want := seen{"POST", "/v1/services?dry=1", "gw.example.com", "Bearer tok-1", "me", `{"name":"x"}`}
	if got := b.got(); len(got) != 1 || got[0] != want {
		t.Errorf("the active got %+v, want once %+v", got, want)
	}
	if f.local.Load() != 0 {
		t.Error("the standby served the request itself")
	}
	// Probes are the node's own.
	if w := f.do("GET", "/healthz", ""); w.Body.String() != "local:" || len(b.got()) != 1 {
		t.Errorf("/healthz on a standby: %q, forwarded %d; want served locally", w.Body, len(b.got())-1)
	}
}

func TestForwarderNeverForwardsTwice(t *testing.T) {
	f := newForwardFixture(time.Second)
	b := newBackend(t, answer(200, "remote"))
	f.lead.set(false, lease.Term{Holder: "other", Epoch: 3, Address: b.URL})
	w := f.do("GET", "/v1/whoami", "", ForwardedHeader, "n2")
	if w.Code != 503 || w.Header().Get(StandbyHeader) != "me" || len(b.got()) != 0 || f.local.Load() != 0 {
		t.Errorf("forwarded request at a standby: %d %v, %d forwarded, %d local; want 503 with %s, nothing else",
			w.Code, w.Header(), len(b.got()), f.local.Load(), StandbyHeader)
	}
}

func TestForwarderWaitsForTheNewActive(t *testing.T) {
	for _, tc := range []struct {
		name string
		// first is the term the standby knows when the request arrives.
		first func(t *testing.T) lease.Term
	}{
		{"active died", func(t *testing.T) lease.Term { return lease.Term{Holder: "old", Epoch: 4, Address: deadAddress(t)} }},
		{"lease released", func(*testing.T) lease.Term { return lease.Term{Epoch: 4} }},
		{"named active is a standby", func(t *testing.T) lease.Term {
			stale := newBackend(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set(StandbyHeader, "old")
				w.WriteHeader(503)
			})
			return lease.Term{Holder: "old", Epoch: 4, Address: stale.URL}
		}},
		{"this node is taking over", func(*testing.T) lease.Term { return lease.Term{Holder: "me", Epoch: 5} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwardFixture(10 * time.Second)
			b := newBackend(t, answer(202, "accepted"))
			f.lead.set(false, tc.first(t))
			time.AfterFunc(300*time.Millisecond, func() { f.lead.set(false, lease.Term{Holder: "new", Epoch: 6, Address: b.URL}) })
			w := f.do("POST", "/v1/services/s/run", `{"async":true}`)
			if w.Code != 202 || w.Body.String() != "accepted" {
				t.Errorf("answer %d %q, want the new active's 202", w.Code, w.Body)
			}
			if got := b.got(); len(got) != 1 || got[0].body != `{"async":true}` {
				t.Errorf("the new active got %+v, want the request once with its body", got)
			}
		})
	}
}

func TestForwarderTakesOverLocally(t *testing.T) {
	f := newForwardFixture(10 * time.Second)
	f.lead.set(false, lease.Term{Epoch: 4})
	time.AfterFunc(200*time.Millisecond, func() { f.lead.set(true, lease.Term{Holder: "me", Epoch: 5}) })
	if w := f.do("POST", "/v1/repositories", `{"n":1}`); w.Body.String() != `local:{"n":1}` {
		t.Errorf("answer %q, want this node's once it is active, with the body", w.Body)
	}
}

func TestForwarderGivesUpAfterTheWait(t *testing.T) {
	f := newForwardFixture(300 * time.Millisecond)
	f.lead.set(false, lease.Term{Holder: "old", Epoch: 4, Address: deadAddress(t)})
	w := f.do("GET", "/v1/services", "")
	if w.Code != 503 || w.Header().Get(StandbyHeader) != "me" || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Body.String(), "standby; the active is old") {
		t.Errorf("answer %d %v %q, want 503 naming the last known active, with Retry-After", w.Code, w.Header(), w.Body)
	}
	if f.local.Load() != 0 {
		t.Error("the standby served the request itself")
	}
}

// An active that dies after reading a write must not get it again (the
// write may have landed): 502, outcome unknown. A read is sent again.
func TestForwarderUnknownOutcome(t *testing.T) {
	for _, tc := range []struct {
		method   string
		wantCode int
		wantNext int // requests the next active gets
	}{
		{"POST", http.StatusBadGateway, 0},
		{"GET", 200, 1},
	} {
		t.Run(tc.method, func(t *testing.T) {
			f := newForwardFixture(10 * time.Second)
			dying := newBackend(t, func(w http.ResponseWriter, _ *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			})
			next := newBackend(t, answer(200, "ok"))
			f.lead.set(false, lease.Term{Holder: "old", Epoch: 4, Address: dying.URL})
			time.AfterFunc(100*time.Millisecond, func() { f.lead.set(false, lease.Term{Holder: "new", Epoch: 5, Address: next.URL}) })
			w := f.do(tc.method, "/v1/services", `{}`)
			if w.Code != tc.wantCode || len(dying.got()) != 1 || len(next.got()) != tc.wantNext {
				t.Errorf("answer %d; dying active got %d, next %d; want %d, 1, %d", w.Code, len(dying.got()), len(next.got()), tc.wantCode, tc.wantNext)
			}
		})
	}
}

// A body over the buffer limit is streamed once, not held in memory.
func TestForwarderStreamsLargeBodies(t *testing.T) {
	f := newForwardFixture(time.Second)
	b := newBackend(t, answer(413, "too large"))
	f.lead.set(false, lease.Term{Holder: "other", Epoch: 3, Address: b.URL})
	big := strings.Repeat("x", 1000)
	w := f.do("POST", "/v1/services", big)
	if got := b.got(); w.Code != 413 || len(got) != 1 || got[0].body != big {
		t.Errorf("answer %d, active got %d requests; want its 413 after the whole body once", w.Code, len(got))
	}
}
