package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
)

// Request forwarding, the way HashiCorp Vault's standbys forward to their
// active node: a standby serves only its own probes (/healthz, /readyz,
// /metrics) and sends every other request, unchanged with its bearer
// token, to the active the lease item names, so a load balancer may route
// to any live node. The active authenticates, authorizes and writes; a
// standby never acts on a request itself. Over TLS a standby sends the
// request only to the peer whose certificate key the lease item pins
// (CertFingerprint), so neither the request nor its token reaches anyone
// else at that address.
const (
	// ForwardedHeader (the forwarding node's ID) marks a forwarded request.
	// A node that is not active answers such a request with 503 and
	// StandbyHeader instead of forwarding it again, so two nodes with stale
	// views of the lease cannot bounce a request between them.
	ForwardedHeader = "Autogate-Forwarded-By"
	// StandbyHeader (the answering node's ID) on a 503 says the node is not
	// active and did not act on the request: it may be sent elsewhere.
	StandbyHeader = "Autogate-Standby"
)

// Forward defaults.
const (
	// DefaultForwardWait is how long a forwarded request waits for an
	// active node during a takeover when ForwardConfig.Wait is zero.
	DefaultForwardWait = 5 * time.Second
	// forwardPoll is how often a waiting request looks at the lease state.
	forwardPoll = 25 * time.Millisecond
	// forwardRetry is how soon a request is sent again to the same active
	// after a failure that left it unsent (it may have been a blip).
	forwardRetry = 200 * time.Millisecond
)

// ForwardConfig configures NewForwarder.
type ForwardConfig struct {
	// Leader says whether this node is active and which node the lease
	// names (Term.Address is where it listens).
	Leader Leadership
	// Node is this node's ID: a lease naming it while it is not active
	// (it is taking over) means wait, never forward to itself.
	Node string
	// Noun names the node in messages ("" gateway, "manager").
	Noun string
	// Local is the node's own handler: what an active node serves.
	Local http.Handler
	// LocalPaths are served by Local whatever the role (the probes).
	LocalPaths []string
	// Transport reaches the active node (TLS inside the VPC). For an
	// https address the forwarder uses a clone of it that accepts only the
	// certificate whose CertFingerprint the lease names (each node serves
	// its own self-signed certificate, so there is no chain to verify);
	// the clone's other settings are Transport's.
	Transport *http.Transport
	// Wait bounds how long a request waits for an active node to forward
	// to (a takeover in progress, the named active unreachable) before it
	// is answered 503. Zero means DefaultForwardWait.
	Wait time.Duration
	// MaxBodyBytes: bodies up to this size are buffered, so a request the
	// active never received can be sent again to the next one; larger ones
	// (which the active refuses with 413 anyway) are streamed once.
	// Default 1 MiB.
	MaxBodyBytes int64
	Clock        clock.Clock
	Logger       *slog.Logger
}

// Forwarder is the standby's front: see the package constants.
type Forwarder struct {
	cfg   ForwardConfig
	local map[string]bool

	mu     sync.Mutex
	pinned map[string]*http.Transport // by certificate fingerprint
}

// maxPinned bounds the pinned transports kept (one per term's
// certificate): a takeover adds one, the oldest are dropped.
const maxPinned = 4

// NewForwarder returns the handler that serves cfg.Local while this node
// is active and forwards to the active otherwise.
func NewForwarder(cfg ForwardConfig) *Forwarder {
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultForwardWait
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{}
	}
	f := &Forwarder{cfg: cfg, local: map[string]bool{}, pinned: map[string]*http.Transport{}}
	for _, p := range cfg.LocalPaths {
		f.local[p] = true
	}
	return f
}

// errNotActive is a forward answered by a node that is not active.
var errNotActive = errors.New("the node named active is not active")

// ServeHTTP implements http.Handler.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	active, term := f.cfg.Leader.Active()
	_, trusted := r.Context().Value(trustedKey).(auth.Principal)
	if active || trusted || f.local[r.URL.Path] {
		f.cfg.Local.ServeHTTP(w, r)
		return
	}
	if r.Header.Get(ForwardedHeader) != "" {
		f.refuse(w, term, "")
		return
	}
	body, replayable, err := f.buffer(r)
	if err != nil {
		WriteProblem(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	clk := f.cfg.Clock
	deadline := clk.Now().Add(f.cfg.Wait)
	var (
		last    lease.Term
		lastTry time.Time
		lastErr error
	)
	for {
		active, term := f.cfg.Leader.Active()
		now := clk.Now()
		if active { // this node took over while the request waited
			r.Body = body()
			f.cfg.Local.ServeHTTP(w, r)
			return
		}
		usable := term.Holder != "" && term.Holder != f.cfg.Node && term.Address != ""
		if usable && (lastTry.IsZero() || term != last || now.Sub(lastTry) >= forwardRetry) {
			last, lastTry = term, now
			err := f.forward(w, r, term, body())
			if err == nil {
				return
			}
			if r.Context().Err() != nil {
				return // the client is gone
			}
			lastErr = err
			if pe := (*PinError)(nil); errors.As(err, &pe) {
				// Never sent: the peer could not prove it is the active
				// the lease names. A stale view of the lease (a new task
				// at a dead one's address) passes with the next term;
				// another host at the address never does. Wait like for
				// an unreachable active, and refuse with 502 at the end.
				f.cfg.Logger.Debug("not forwarding: the peer's certificate does not match the lease",
					"active", term.Holder, "address", term.Address, "error", err)
			} else if !replayable {
				f.cfg.Logger.Warn("forward to the active failed; the request body cannot be sent again",
					"active", term.Holder, "error", err)
				WriteProblem(w, http.StatusBadGateway, fmt.Sprintf("forwarding to the active%s %s failed", f.noun(), term.Holder))
				return
			}
			if errors.Is(err, errUnknownOutcome) {
				WriteProblem(w, http.StatusBadGateway, fmt.Sprintf(
					"the active%s %s failed while handling the request; its outcome is unknown (look before repeating it)", f.noun(), term.Holder))
				return
			}
			f.cfg.Logger.Debug("forward to the active failed; waiting for an active", "active", term.Holder, "error", err)
		}
		if !now.Before(deadline) {
			break
		}
		select {
		case <-r.Context().Done():
			return
		case <-clk.After(min(forwardPoll, deadline.Sub(now))):
		}
	}
	if pe := (*PinError)(nil); errors.As(lastErr, &pe) {
		f.cfg.Logger.Warn("refusing to forward: the peer's certificate does not match the lease",
			"active", last.Holder, "address", last.Address, "waited", f.cfg.Wait.String(), "error", lastErr)
		WriteProblem(w, http.StatusBadGateway, fmt.Sprintf(
			"refusing to forward to the active%s %s at %s: %v; the request was not sent", f.noun(), last.Holder, last.Address, pe))
		return
	}
	f.cfg.Logger.Warn("no active to forward to", "waited", f.cfg.Wait.String(), "last_error", fmt.Sprint(lastErr))
	_, term = f.cfg.Leader.Active()
	f.refuse(w, term, "no active reachable within "+f.cfg.Wait.String())
}

// errUnknownOutcome is a forward that failed after the active may have
// acted on it: never sent again unless the method is idempotent.
var errUnknownOutcome = errors.New("the forwarded request failed after it was sent")

// forward sends r once to term's node and copies the answer to w. It
// returns nil once an answer was written, errNotActive or another error
// that left w untouched (the request was not acted on, or its method is
// idempotent), or errUnknownOutcome (w untouched, the active may have
// acted).
func (f *Forwarder) forward(w http.ResponseWriter, r *http.Request, term lease.Term, body io.ReadCloser) error {
	target, err := url.Parse(term.Address)
	if err != nil || target.Host == "" {
		return fmt.Errorf("active %s advertises an unusable address %q", term.Holder, term.Address)
	}
	transport, err := f.transport(target.Scheme, term.CertFingerprint)
	if err != nil {
		return err
	}
	var wrote atomic.Bool
	ctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	var failed error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.Host = pr.In.Host // the request as the client sent it
			// Rewrite drops these; a load balancer's are kept as they came.
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
			pr.Out.Header.Set(ForwardedHeader, f.cfg.Node)
		},
		Transport:     transport,
		FlushInterval: -1, // stream waits and long answers as they come
		ErrorLog:      slog.NewLogLogger(f.cfg.Logger.Handler(), slog.LevelDebug),
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(StandbyHeader) != "" {
				return errNotActive
			}
			return nil
		},
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { failed = err },
	}
	out := r.WithContext(ctx)
	out.Body = body
	rp.ServeHTTP(w, out)
	switch {
	case failed == nil:
		return nil
	case errors.Is(failed, errNotActive), !wrote.Load(), idempotent(r.Method):
		return failed
	default:
		return fmt.Errorf("%w: %v", errUnknownOutcome, failed)
	}
}

// CertFingerprint is the pin a node publishes in the lease for the
// certificate it serves (lease.Term.CertFingerprint): the SHA-256 of the
// leaf's SubjectPublicKeyInfo, lower-case hex. Pinning the key rather
// than the whole certificate keeps the pin across a re-issue of the same
// key.
func CertFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// PinError is a forward refused before anything was sent: the peer at the
// active's address did not present the certificate the lease pins, or
// the lease pins none for a TLS address.
type PinError struct {
	// Want is the fingerprint the lease names ("" if none); Got is the
	// peer's ("" if it sent no certificate or was not reached).
	Want, Got string
}

func (e *PinError) Error() string {
	if e.Want == "" {
		return "the lease publishes no certificate fingerprint for the active's TLS address"
	}
	if e.Got == "" {
		return "the peer presented no certificate (the lease pins sha256 " + e.Want + ")"
	}
	return "the peer's certificate (sha256 " + e.Got + ") is not the one the lease pins (sha256 " + e.Want + ")"
}

// transport returns what reaches an active at scheme: Transport for plain
// HTTP, else a clone of it that accepts only the certificate fingerprint
// pins (a *PinError when fingerprint is empty).
func (f *Forwarder) transport(scheme, fingerprint string) (*http.Transport, error) {
	if scheme != "https" {
		return f.cfg.Transport, nil
	}
	if fingerprint == "" {
		return nil, &PinError{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.pinned[fingerprint]; ok {
		return t, nil
	}
	if len(f.pinned) >= maxPinned {
		for fp, t := range f.pinned { // any old one: terms come and go
			t.CloseIdleConnections()
			delete(f.pinned, fp)
			if len(f.pinned) < maxPinned {
				break
			}
		}
	}
	t := f.cfg.Transport.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	// The chain is not verified (a self-signed certificate has none worth
	// verifying); VerifyConnection checks the pin instead, on every
	// handshake, resumed ones included.
	t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // pinned in VerifyConnection
	t.TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &PinError{Want: fingerprint}
		}
		if got := CertFingerprint(cs.PeerCertificates[0]); got != fingerprint {
			return &PinError{Want: fingerprint, Got: got}
		}
		return nil
	}
	f.pinned[fingerprint] = t
	return t, nil
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// buffer reads r's body up to MaxBodyBytes and returns a function giving a
// fresh reader over it for each attempt; replayable is false when the body
// was larger (the rest is streamed, once).
func (f *Forwarder) buffer(r *http.Request) (func() io.ReadCloser, bool, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return func() io.ReadCloser { return http.NoBody }, true, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, f.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(buf)) <= f.cfg.MaxBodyBytes {
		return func() io.ReadCloser { return io.NopCloser(bytes.NewReader(buf)) }, true, nil
	}
	rest := io.NopCloser(io.MultiReader(bytes.NewReader(buf), r.Body))
	return func() io.ReadCloser { return rest }, false, nil
}

func (f *Forwarder) noun() string {
	if f.cfg.Noun == "" {
		return ""
	}
	return " " + f.cfg.Noun
}

// refuse answers 503 as a standby that did not act on the request.
func (f *Forwarder) refuse(w http.ResponseWriter, term lease.Term, why string) {
	w.Header().Set(StandbyHeader, f.cfg.Node)
	w.Header().Set("Retry-After", strconv.Itoa(1))
	detail := StandbyMessage(f.cfg.Noun, term)
	if why != "" {
		detail += " (" + why + ")"
	}
	WriteProblem(w, http.StatusServiceUnavailable, detail)
}
