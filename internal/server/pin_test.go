package server

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/lease"
)

// node is a TLS listener serving a certificate of its own (serverTLS, as
// a gateway or manager task does), recording the requests it receives.
type pinNode struct {
	srv         *httptest.Server
	fingerprint string
	mu          sync.Mutex
	auths       []string
}

func (n *pinNode) got() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.auths...)
}

// startPinNode serves on addr ("" any port) with a new self-signed
// certificate under a directory of its own.
func startPinNode(t *testing.T, addr string) *pinNode {
	t.Helper()
	cfg, fp, err := serverTLS(&tlsFiles{dir: t.TempDir()}, clock.Real{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q: want 64 hex digits of SHA-256", fp)
	}
	n := &pinNode{fingerprint: fp}
	n.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		n.auths = append(n.auths, r.Header.Get("Authorization"))
		n.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "from the active")
	}))
	if addr != "" {
		n.srv.Listener.Close()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		n.srv.Listener = ln
	}
	n.srv.TLS = cfg
	n.srv.StartTLS()
	t.Cleanup(n.srv.Close)
	return n
}

// A standby forwards only to the peer that presents the certificate the
// lease pins: the real wiring (serverTLS's fingerprint, forwarding's
// transport) against a right pin, a wrong one, none, and an impostor
// (a different self-signed certificate at the active's address).
func TestForwardingPinsTheActiveCertificate(t *testing.T) {
	active := startPinNode(t, "")
	impostorAddr := func(t *testing.T) (string, *pinNode) {
		// The genuine active's address, now served by someone else with
		// a certificate of its own.
		genuine := startPinNode(t, "")
		addr := genuine.srv.Listener.Addr().String()
		genuine.srv.Close()
		imp := startPinNode(t, addr)
		return genuine.fingerprint, imp
	}
	for _, tc := range []struct {
		name     string
		term     func(t *testing.T) (lease.Term, *pinNode)
		wantCode int
		wantSent bool
		wantText string
	}{
		{"the pinned certificate", func(*testing.T) (lease.Term, *pinNode) {
			return lease.Term{Holder: "gw-a", Epoch: 2, Address: active.srv.URL, CertFingerprint: active.fingerprint}, active
		}, http.StatusCreated, true, "from the active"},
		{"a wrong fingerprint", func(*testing.T) (lease.Term, *pinNode) {
			return lease.Term{Holder: "gw-a", Epoch: 2, Address: active.srv.URL, CertFingerprint: strings.Repeat("ab", 32)}, active
		}, http.StatusBadGateway, false, "is not the one the lease pins"},
		{"no fingerprint for a TLS address", func(*testing.T) (lease.Term, *pinNode) {
			return lease.Term{Holder: "gw-a", Epoch: 2, Address: active.srv.URL}, active
		}, http.StatusBadGateway, false, "publishes no certificate fingerprint"},
		{"an impostor at the active's address", func(t *testing.T) (lease.Term, *pinNode) {
			fp, imp := impostorAddr(t)
			return lease.Term{Holder: "gw-a", Epoch: 2, Address: imp.srv.URL, CertFingerprint: fp}, imp
		}, http.StatusBadGateway, false, "is not the one the lease pins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			term, peer := tc.term(t)
			before := len(peer.got())
			lead := &leadership{}
			lead.observe(term)
			local := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				t.Error("the standby served the request itself")
				w.WriteHeader(http.StatusTeapot)
			})
			front := forwarding(local, forwardConfig{lead: lead, node: "gw-b", leaseDuration: 200e6}, clock.Real{}, slog.New(slog.DiscardHandler))
			req := httptest.NewRequest(http.MethodPost, "/v1/repositories", strings.NewReader(`{"name":"r"}`))
			req.Header.Set("Authorization", "Bearer secret-token")
			w := httptest.NewRecorder()
			front.ServeHTTP(w, req)
			sent := len(peer.got()) > before
			if w.Code != tc.wantCode || sent != tc.wantSent || !strings.Contains(w.Body.String(), tc.wantText) {
				t.Fatalf("got %d %q (sent to the peer: %v); want %d containing %q (sent: %v)",
					w.Code, w.Body, sent, tc.wantCode, tc.wantText, tc.wantSent)
			}
			if tc.wantCode == http.StatusBadGateway {
				var p struct{ Detail string }
				if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
					t.Errorf("Content-Type %q, want a problem", ct)
				}
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || strings.Contains(p.Detail, "secret-token") {
					t.Errorf("problem %q (%v): want a detail without the token", w.Body, err)
				}
			}
		})
	}
}

// The fingerprint a node publishes is the one a peer computes from the
// certificate it is served over the wire.
func TestServerTLSFingerprintMatchesTheWire(t *testing.T) {
	n := startPinNode(t, "")
	conn, err := tls.Dial("tcp", n.srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := httpapi.CertFingerprint(conn.ConnectionState().PeerCertificates[0]); got != n.fingerprint {
		t.Errorf("on the wire %s, published %s", got, n.fingerprint)
	}
}

// A stale view of the lease (another task now at the address it names)
// is not forwarded to, and the request goes to the new active once the
// lease names it, within the forward wait.
func TestForwardingWaitsOutAStalePin(t *testing.T) {
	stale := startPinNode(t, "") // answers at the address the stale term names, with its own key
	active := startPinNode(t, "")
	lead := &leadership{}
	lead.observe(lease.Term{Holder: "gw-old", Epoch: 3, Address: stale.srv.URL, CertFingerprint: strings.Repeat("cd", 32)})
	time.AfterFunc(300*time.Millisecond, func() {
		lead.observe(lease.Term{Holder: "gw-a", Epoch: 4, Address: active.srv.URL, CertFingerprint: active.fingerprint})
	})
	front := forwarding(http.NotFoundHandler(), forwardConfig{lead: lead, node: "gw-b", leaseDuration: 2 * time.Second}, clock.Real{}, slog.New(slog.DiscardHandler))
	req := httptest.NewRequest(http.MethodPost, "/v1/repositories", strings.NewReader(`{"name":"r"}`))
	req.Header.Set("Authorization", "Bearer secret-token")
	w := httptest.NewRecorder()
	front.ServeHTTP(w, req)
	if w.Code != http.StatusCreated || len(stale.got()) != 0 || len(active.got()) != 1 || active.got()[0] != "Bearer secret-token" {
		t.Fatalf("got %d %q; the stale address got %d requests, the new active %v; want 201 from the new active only, with the token",
			w.Code, w.Body, len(stale.got()), active.got())
	}
}
