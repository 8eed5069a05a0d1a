package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/resource"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
)

// Process tests of standby forwarding (issue 14.1): a standby sends every
// API request to the active the lease item names and never acts on one
// itself.

// ddbRecorder sits on one gateway's path to DynamoDB and records every
// call's operation with the partition keys in its body.
type ddbRecorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []ddbCall
}

type ddbCall struct {
	op     string
	pks    []string
	status int // DynamoDB's answer: 200, or 400 for a refused condition
}

// statusWriter records the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

var pkRE = regexp.MustCompile(`"pk":\{"S":"([^"]*)"\}`)

func newDDBRecorder(t testing.TB, upstream string) *ddbRecorder {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	r := &ddbRecorder{}
	rp := httputil.NewSingleHostReverseProxy(u)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		c := ddbCall{op: strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")}
		for _, m := range pkRE.FindAllSubmatch(body, -1) {
			c.pks = append(c.pks, string(m[1]))
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(sw, req)
		c.status = sw.status
		r.mu.Lock()
		r.calls = append(r.calls, c)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *ddbRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

// writes returns the write calls (attempted) since the last reset,
// except those only on the allowed partitions.
func (r *ddbRecorder) writes(allowed ...string) []ddbCall { return r.filter(false, allowed) }

// landed is writes that DynamoDB applied.
func (r *ddbRecorder) landed(allowed ...string) []ddbCall { return r.filter(true, allowed) }

func (r *ddbRecorder) filter(applied bool, allowed []string) []ddbCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ddbCall
	for _, c := range r.calls {
		if applied && c.status != http.StatusOK {
			continue
		}
		switch c.op {
		case "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem":
		default:
			continue
		}
		other := len(c.pks) == 0
		for _, pk := range c.pks {
			if !containsString(allowed, pk) {
				other = true
			}
		}
		if other {
			out = append(out, c)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestClusterStandbyForwards: every request to the standby succeeds, the
// active serves it (whoami names the active), and the standby's path to
// DynamoDB carries no write but its own registry heartbeat; its probes
// stay its own. Then the active is killed with -9 while reads go on
// through the standby: they wait for the takeover and all succeed.
func TestClusterStandbyForwards(t *testing.T) {
	c := newClusterRecorded(t, 2)
	a := c.active(-1)
	sb := 1 - a
	c.recorders[sb].reset()
	c.recorders[a].reset()
	cl := c.client(sb) // the login is forwarded too
	who, err := cl.WhoAmI(t.Context())
	if err != nil || who.Node != fmt.Sprintf("gw-%d", a) {
		t.Fatalf("whoami through the standby = %+v, %v; want the active gw-%d to answer", who, err, a)
	}
	for i := range 10 {
		name := fmt.Sprintf("fwd-%d", i)
		if err := cl.Create(t.Context(), repo(name)); err != nil {
			t.Fatalf("create %s through the standby: %v", name, err)
		}
		if _, err := cl.Get(t.Context(), resource.KindRepository, name); err != nil {
			t.Fatalf("get %s through the standby: %v", name, err)
		}
	}
	if err := cl.Delete(t.Context(), resource.KindRepository, "fwd-0", 0); err != nil {
		t.Fatalf("delete through the standby: %v", err)
	}
	registry := storedynamo.RecordPK(c.id, resource.KindNode)
	if w := c.recorders[sb].writes(registry); len(w) > 0 {
		t.Errorf("the standby wrote to DynamoDB itself: %+v", w)
	}
	if w := c.recorders[a].writes(registry); len(w) == 0 {
		t.Error("the active's path shows no writes: the recorder sees nothing, so the check above proves nothing")
	}
	// Its probes are its own: alive, and honestly not ready.
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
		resp, err := insecureHTTP.Get(c.nodes[sb].url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("standby %s = %d, want %d", path, resp.StatusCode, want)
		}
	}

	// Kill the active while reads go through the standby.
	stop := make(chan struct{})
	var mu sync.Mutex
	var reads int
	var failed []error
	done := untilClosed(stop, func(_ int) {
		_, err := cl.Get(t.Context(), resource.KindRepository, "fwd-1")
		mu.Lock()
		reads++
		if err != nil {
			failed = append(failed, err)
		}
		mu.Unlock()
	})
	tick(300 * time.Millisecond)
	c.kill(a, syscall.SIGKILL)
	c.nodes[a].Killed = true
	c.nodes[a].wait()
	if got := c.active(a); got != sb {
		t.Fatalf("node %d took over, want the standby %d", got, sb)
	}
	tick(300 * time.Millisecond)
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 || reads < 5 {
		t.Errorf("%d of %d reads through the standby failed across the kill -9 (want 0 of at least 5): %v", len(failed), reads, failed)
	}
	if err := cl.Create(t.Context(), repo("after")); err != nil {
		t.Errorf("write after the takeover: %v", err)
	}
}
