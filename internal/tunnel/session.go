package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/autogate/autogate/internal/clock"
)

// ConnectPath is where the manager accepts tunnels.
const ConnectPath = "/v1/connect"

// TrustFunc returns ctx carrying the identity the gateway should authorize
// a tunnelled request as. The gateway trusts the caller the manager names
// because the cluster credential authenticated the connection.
type TrustFunc func(ctx context.Context, c Caller) context.Context

// DialOptions configure the gateway's end of a tunnel. Zero fields take
// the defaults.
type DialOptions struct {
	// Credential is the cluster credential from `autogate manager create
	// cluster`. Required.
	Credential Secret
	// Hello says who connects; Protocol is filled in.
	Hello Hello
	// TLS verifies the manager; nil means the system roots.
	TLS *tls.Config
	// MaxFrame is the largest message accepted; default DefaultMaxFrame.
	// What is sent is also kept under the manager's own limit.
	MaxFrame int
	// MaxResponse caps a response body; a bigger one is replaced with a
	// 502 problem. Default DefaultMaxResponse.
	MaxResponse int
	// MaxConcurrent caps requests served at once; more are answered 503 at
	// once. Default 256.
	MaxConcurrent int
	// Timeout bounds the handshake (connect, TLS, upgrade, welcome);
	// default 10 s.
	Timeout time.Duration
	// WriteTimeout bounds each frame write; default 10 s.
	WriteTimeout time.Duration
	Clock        clock.Clock
	Logger       *slog.Logger
}

func (o DialOptions) withDefaults() DialOptions {
	if o.MaxFrame <= 0 {
		o.MaxFrame = DefaultMaxFrame
	}
	if o.MaxResponse <= 0 {
		o.MaxResponse = DefaultMaxResponse
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 256
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Hello.Protocol = Protocol
	return o
}

// Session is the gateway's end of one tunnel, admitted by the manager.
type Session struct {
	ws       *websocket.Conn
	opts     DialOptions
	welcome  Welcome
	maxFrame int // the smaller of both ends' limits
	lastRecv atomic.Int64
}

// Dial connects to the manager at base (https://host:port), presents the
// credential, sends the hello and waits for the welcome. A refusal comes
// back as an error wrapping ErrUnauthorized, ErrWrongCluster,
// ErrStaleEpoch, ErrNotActive or ErrBadFrame, with the manager's reason.
func Dial(ctx context.Context, base string, opts DialOptions) (*Session, error) {
	opts = opts.withDefaults()
	if opts.Credential == "" {
		return nil, fmt.Errorf("tunnel dial: %w: no credential", ErrUnauthorized)
	}
	u, err := url.Parse(strings.TrimRight(base, "/") + ConnectPath)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("tunnel dial: manager URL %q: want https://host:port", base)
	}
	dctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     opts.TLS,
		TLSHandshakeTimeout: opts.Timeout,
	}
	defer tr.CloseIdleConnections()
	ws, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: http.Header{"Authorization": {"Bearer " + string(opts.Credential)}},
	})
	if err != nil {
		return nil, dialError(base, resp, err)
	}
	ws.SetReadLimit(int64(opts.MaxFrame))
	s := &Session{ws: ws, opts: opts, maxFrame: opts.MaxFrame}
	hello := opts.Hello
	if err := s.write(dctx, &Frame{Type: FrameHello, Hello: &hello}); err != nil {
		_ = ws.CloseNow() // the write error is the one to report
		return nil, fmt.Errorf("tunnel dial %s: %w", base, err)
	}
	_, msg, err := ws.Read(dctx)
	if err != nil {
		_ = ws.CloseNow() // already closed by the manager or the library
		return nil, fmt.Errorf("tunnel dial %s: %w", base, fromClose(err))
	}
	f, err := Decode(msg)
	if err == nil && (f.Type != FrameWelcome || f.Welcome.Protocol != Protocol) {
		err = fmt.Errorf("%w: want a protocol %d welcome, got %s", ErrBadFrame, Protocol, f.Type)
	}
	if err != nil {
		_ = ws.Close(codeOf(err), reason(err.Error())) // best effort
		return nil, fmt.Errorf("tunnel dial %s: %w", base, err)
	}
	s.welcome = *f.Welcome
	if w := s.welcome.MaxFrame; w >= MinMaxFrame && w < s.maxFrame {
		s.maxFrame = w
	}
	s.touch()
	return s, nil
}

// dialError maps a failed upgrade to an error: the HTTP status says why.
func dialError(base string, resp *http.Response, err error) error {
	if resp == nil {
		return fmt.Errorf("tunnel dial %s: %w: %v", base, ErrClosed, err)
	}
	detail := ""
	if resp.Body != nil {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1024)) // best effort: the status is what matters
		var p struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
			detail = p.Detail
		} else {
			detail = strings.TrimSpace(string(raw))
		}
	}
	sentinel := ErrClosed
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		sentinel = ErrUnauthorized
	case http.StatusServiceUnavailable:
		sentinel = ErrNotActive
	}
	return fmt.Errorf("tunnel dial %s: %w: HTTP %d %s", base, sentinel, resp.StatusCode, detail)
}

// Welcome is what the manager said when it admitted the session.
func (s *Session) Welcome() Welcome { return s.welcome }

func (s *Session) touch() { s.lastRecv.Store(s.opts.Clock.Now().UnixNano()) }

func (s *Session) write(ctx context.Context, f *Frame) error {
	buf, err := Encode(f, s.maxFrame)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	if err := s.ws.Write(wctx, websocket.MessageBinary, buf); err != nil {
		return fmt.Errorf("%w: write %s frame: %v", ErrClosed, f.Type, err)
	}
	return nil
}

// WriteRaw sends msg as one message as it is, unchecked. It exists for
// tests of the manager's defences (oversized or malformed frames).
func (s *Session) WriteRaw(ctx context.Context, msg []byte) error {
	return s.ws.Write(ctx, websocket.MessageBinary, msg)
}

// Serve answers the manager's requests with h, each in its own goroutine
// and under ctx, after trust has attached the caller's identity, until ctx
// ends or the connection fails. It sends a ping every heartbeat and gives
// the manager up after four silent heartbeats. When ctx ends (the gateway
// was deposed, or is stopping) every request in flight is cancelled and
// the connection is closed at once: a close frame saying why, and the
// socket dropped if the manager does not answer within a second. It
// returns why the session ended, never nil.
func (s *Session) Serve(ctx context.Context, h http.Handler, trust TrustFunc) error {
	sctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	// The socket runs on connCtx: a cancelled read context makes the
	// library drop the socket without a close frame.
	connCtx, stopConn := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConn()
	var wg sync.WaitGroup
	hb := s.welcome.Heartbeat()
	wg.Go(func() {
		for {
			select {
			case <-sctx.Done():
				return
			case <-s.opts.Clock.After(hb):
			}
			if silent := s.opts.Clock.Now().Sub(time.Unix(0, s.lastRecv.Load())); silent > 4*hb {
				stop(fmt.Errorf("%w: nothing from the manager for %v", ErrHeartbeat, silent.Round(time.Millisecond)))
				return
			}
			if err := s.write(connCtx, &Frame{Type: FramePing}); err != nil {
				stop(err)
				return
			}
		}
	})
	readDone := make(chan struct{})
	wg.Go(func() {
		// Close with a reason when the session ends for any cause but a
		// broken socket; drop the socket if that takes over a second.
		select {
		case <-sctx.Done():
		case <-readDone:
			return
		}
		cause := context.Cause(sctx)
		if cause == context.Canceled {
			cause = fmt.Errorf("%w: the gateway is no longer active or is stopping", ErrClosed)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.ws.Close(codeOf(cause), reason(cause.Error())) // best effort
		}()
		select {
		case <-done:
		case <-readDone:
		case <-s.opts.Clock.After(time.Second):
		}
		stopConn()
		<-done
	})
	var (
		mu      sync.Mutex
		cancels = map[uint64]context.CancelFunc{}
		sem     = make(chan struct{}, s.opts.MaxConcurrent)
		reqs    sync.WaitGroup
	)
	for {
		_, msg, err := s.ws.Read(connCtx)
		if err != nil {
			stop(fromClose(err))
			break
		}
		s.touch()
		f, err := Decode(msg)
		if err != nil {
			stop(err)
			break
		}
		switch f.Type {
		case FramePong:
		case FrameCancel:
			mu.Lock()
			if c := cancels[f.ID]; c != nil {
				c()
			}
			mu.Unlock()
		case FrameRequest:
			select {
			case sem <- struct{}{}:
			default:
				reqs.Go(func() { s.respond(connCtx, f.ID, busy(s.opts.MaxConcurrent)) })
				continue
			}
			// The manager gives up at the timeout and answers 504 itself;
			// the handler gets a second more, so the manager decides.
			timeout := time.Duration(f.Request.TimeoutMillis) * time.Millisecond
			if timeout <= 0 {
				timeout = time.Minute
			}
			timeout += time.Second
			rctx, cancel := context.WithTimeout(sctx, timeout)
			mu.Lock()
			cancels[f.ID] = cancel
			mu.Unlock()
			reqs.Go(func() {
				defer func() { <-sem }()
				defer func() {
					mu.Lock()
					delete(cancels, f.ID)
					mu.Unlock()
					cancel()
				}()
				rec := s.serveOne(rctx, connCtx, h, trust, f)
				if sctx.Err() != nil {
					return // deposed: nothing more goes out
				}
				s.respond(connCtx, f.ID, rec)
			})
		default:
			stop(fmt.Errorf("%w: unexpected %s frame from the manager", ErrBadFrame, f.Type))
		}
		if sctx.Err() != nil {
			break
		}
	}
	close(readDone)
	stop(nil)
	reqs.Wait()
	stopConn()
	wg.Wait()
	return context.Cause(sctx)
}

// serveOne runs one request through h and records the answer.
// A handler that flushes (server-sent events) streams: what it wrote so
// far goes out at each flush, so the manager's caller sees it at once.
func (s *Session) serveOne(ctx, connCtx context.Context, h http.Handler, trust TrustFunc, f *Frame) (rec *recorder) {
	rec = &recorder{header: http.Header{}, limit: s.opts.MaxResponse}
	rec.stream(func(fr *Frame) error {
		if ctx.Err() != nil { // cancelled, timed out or deposed: nothing more goes out
			return ctx.Err()
		}
		return s.write(connCtx, fr)
	}, f.ID, s.chunk())
	defer func() {
		if p := recover(); p != nil {
			s.opts.Logger.Error("tunnelled request panicked", "request_id", f.Request.Header.Get("X-Request-Id"), "panic", fmt.Sprint(p))
			rec = problem(http.StatusInternalServerError, "internal error; see the gateway log")
		}
	}()
	hd := f.Request
	u := &url.URL{Path: hd.Path, RawPath: hd.RawPath, RawQuery: hd.RawQuery}
	req, err := http.NewRequestWithContext(trust(ctx, hd.Caller), hd.Method, u.RequestURI(), bytes.NewReader(f.Body))
	if err != nil {
		return problem(http.StatusBadRequest, "malformed tunnelled request: "+err.Error())
	}
	req.URL.Path, req.URL.RawPath = hd.Path, hd.RawPath
	req.Header = hd.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Host = "tunnel"
	req.RemoteAddr = "manager-tunnel"
	req.RequestURI = u.RequestURI()
	h.ServeHTTP(rec, req)
	if rec.overflow && !rec.streamed {
		return problem(http.StatusBadGateway, fmt.Sprintf("the response exceeds the tunnel's %d-byte limit; ask for less (a smaller page)", s.opts.MaxResponse))
	}
	return rec
}

func (s *Session) chunk() int { return min(DefaultChunk, s.maxFrame-headerRoom) }

// respond sends the rest of rec in frames of at most DefaultChunk body
// bytes, the last one without More.
func (s *Session) respond(ctx context.Context, id uint64, rec *recorder) {
	if rec.send == nil {
		rec.stream(func(f *Frame) error { return s.write(ctx, f) }, id, s.chunk())
	}
	if err := rec.sendBody(false); err != nil {
		s.opts.Logger.Debug("tunnel response not sent", "error", err)
	}
}

// recorder is an http.ResponseWriter that buffers up to limit body bytes
// between flushes.
type recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	limit    int
	overflow bool

	send     func(*Frame) error
	id       uint64
	chunk    int
	streamed bool // the response frame is out
	sendErr  error
}

func (r *recorder) stream(send func(*Frame) error, id uint64, chunk int) {
	r.send, r.id, r.chunk = send, id, chunk
}

// FlushError sends what was written so far, marked More (see
// http.ResponseController.Flush).
func (r *recorder) FlushError() error {
	if r.streamed && r.body.Len() == 0 {
		return r.sendErr
	}
	return r.sendBody(true)
}

// sendBody sends the buffered body, the response frame first if it is not
// out yet; more marks the last frame as not the end.
func (r *recorder) sendBody(more bool) error {
	if r.sendErr != nil {
		return r.sendErr
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	body := r.body.Bytes()
	for {
		n := min(len(body), r.chunk)
		last := n == len(body)
		f := &Frame{Type: FrameBody, ID: r.id, Body: body[:n], More: more || !last}
		if !r.streamed {
			f.Type = FrameResponse
			f.Response = &ResponseHead{Status: r.status, Header: FilterResponseHeader(r.header)}
		}
		if err := r.send(f); err != nil {
			r.sendErr = err
			return err
		}
		r.streamed = true
		body = body[n:]
		if last {
			break
		}
	}
	r.body.Reset()
	return nil
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.sendErr != nil {
		return 0, r.sendErr
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(p) > r.limit {
		r.overflow = true
		return 0, ErrResponseTooLarge
	}
	return r.body.Write(p)
}

func problem(status int, detail string) *recorder {
	r := &recorder{header: http.Header{"Content-Type": {"application/problem+json"}}, status: status}
	raw, _ := json.Marshal(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail}) // cannot fail
	r.body.Write(raw)
	return r
}

func busy(n int) *recorder {
	r := problem(http.StatusServiceUnavailable, fmt.Sprintf("the gateway is serving %d tunnelled requests already; retry", n))
	r.header.Set("Retry-After", "1")
	return r
}
