package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
)

// LinkConfig configures the manager's end of a tunnel. Zero fields take
// the defaults.
type LinkConfig struct {
	// MaxFrame is the largest message accepted or sent; default
	// DefaultMaxFrame (2 MiB). A bigger incoming message closes the
	// connection with 1009.
	MaxFrame int
	// MaxResponse caps one response body; default DefaultMaxResponse.
	MaxResponse int
	// MaxInFlight caps concurrent requests on the link; more fail at once
	// with ErrBusy. Default 1024.
	MaxInFlight int
	// Heartbeat is the ping period the gateway is told to keep; default 5 s.
	Heartbeat time.Duration
	// DeadAfter is how long the link may stay silent before it is closed
	// with ErrHeartbeat; default 4 heartbeats.
	DeadAfter time.Duration
	// HelloTimeout bounds the wait for the gateway's hello; default 10 s.
	HelloTimeout time.Duration
	// WriteTimeout bounds each frame write; a peer that takes longer to
	// accept one is considered gone and the link closes. Default 10 s.
	WriteTimeout time.Duration
	Clock        clock.Clock
	Logger       *slog.Logger
}

func (c LinkConfig) withDefaults() LinkConfig {
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.MaxResponse <= 0 {
		c.MaxResponse = DefaultMaxResponse
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 1024
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 5 * time.Second
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = 4 * c.Heartbeat
	}
	if c.HelloTimeout <= 0 {
		c.HelloTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Request is one HTTP request to send down a link.
type Request struct {
	Head RequestHead
	Body []byte
}

// Response is a gateway's whole answer.
type Response struct {
	Head ResponseHead
	Body []byte
}

// Link is the manager's end of one gateway's connection. Create it with
// Accept, then either Refuse it or Serve it; RoundTrip may be called from
// any goroutine while Serve runs.
type Link struct {
	ws    *websocket.Conn
	cfg   LinkConfig
	hello Hello

	nextID    atomic.Uint64
	inFlight  atomic.Int64
	lastRecv  atomic.Int64 // unix nanoseconds of the last frame received
	connected atomic.Int64 // unix nanoseconds Serve started

	// ctl carries control frames (pong, cancel) to the writer goroutine, so
	// the read loop never blocks on a write.
	ctl chan *Frame

	mu      sync.Mutex
	pending map[uint64]*call
	cause   error // why the link closed; set once

	ready     chan struct{} // closed once the welcome is out
	closing   chan struct{} // closed by Close
	closeOnce sync.Once
}

// call is one request's answer as it arrives: the read loop delivers its
// frames, the caller reads them (Stream), so a streamed answer (server-sent
// events) reaches the caller frame by frame instead of at the end.
type call struct {
	mu       sync.Mutex
	head     *ResponseHead // from the response frame
	buf      []byte        // body bytes not yet read
	ended    bool          // the last frame arrived
	err      error         // the call failed
	wake     chan struct{} // cap 1: something changed
	headc    chan struct{} // closed once head is set or the call failed
	headOnce sync.Once
}

func newCall() *call { return &call{wake: make(chan struct{}, 1), headc: make(chan struct{})} }

func (c *call) signalLocked() {
	if c.head != nil || c.err != nil {
		c.headOnce.Do(func() { close(c.headc) })
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// deliver adds frame f; unread bytes beyond max fail the call (a caller
// that does not keep up must not make the manager buffer without bound).
func (c *call) deliver(f *Frame, max int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil // already failed; the rest of the answer is dropped
	}
	if (f.Type == FrameResponse) != (c.head == nil) || c.ended {
		return fmt.Errorf("%w: %s frame out of order for request %d", ErrBadFrame, f.Type, f.ID)
	}
	if f.Type == FrameResponse {
		c.head = f.Response
	}
	if len(c.buf)+len(f.Body) > max {
		return fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, max)
	}
	c.buf = append(c.buf, f.Body...)
	c.ended = !f.More
	c.signalLocked()
	return nil
}

// fail ends the call with err unless its whole answer is in.
func (c *call) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.ended {
		return
	}
	c.err = err
	c.signalLocked()
}

// Accept upgrades r to a WebSocket and reads the gateway's hello (within
// cfg.HelloTimeout). It lifts the http.Server's read and write deadlines
// from the connection, which would otherwise outlive the upgrade. The caller must have authenticated r; it then checks
// the hello and calls Refuse or Serve. ctx bounds the link's whole life:
// when it ends the connection is dropped.
func Accept(ctx context.Context, w http.ResponseWriter, r *http.Request, cfg LinkConfig) (*Link, error) {
	cfg = cfg.withDefaults()
	// http.Hijacker documents that a hijacked connection may keep the
	// server's read and write deadlines (current Go clears them): lift them
	// anyway, or the tunnel would die at the server's ReadTimeout.
	// Liveness is the heartbeat's job from here on.
	rc := http.NewResponseController(w)
	if err := errors.Join(rc.SetReadDeadline(time.Time{}), rc.SetWriteDeadline(time.Time{})); err != nil {
		cfg.Logger.Debug("cannot lift the server's deadlines on a tunnel", "error", err)
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return nil, fmt.Errorf("tunnel upgrade: %w", err)
	}
	ws.SetReadLimit(int64(cfg.MaxFrame))
	l := &Link{ws: ws, cfg: cfg, ctl: make(chan *Frame, 64), pending: map[uint64]*call{},
		ready: make(chan struct{}), closing: make(chan struct{})}
	hctx, cancel := context.WithTimeout(ctx, cfg.HelloTimeout)
	defer cancel()
	_, msg, err := ws.Read(hctx)
	if err != nil {
		_ = ws.CloseNow() // the read error is the one to report
		return nil, fmt.Errorf("tunnel hello: %w", fromClose(err))
	}
	f, err := Decode(msg)
	if err == nil && f.Type != FrameHello {
		err = fmt.Errorf("%w: first frame is %s, want hello", ErrBadFrame, f.Type)
	}
	if err == nil {
		err = f.Hello.validate()
	}
	if err != nil {
		l.Refuse(err)
		return nil, fmt.Errorf("tunnel hello: %w", err)
	}
	l.hello = *f.Hello
	l.touch()
	return l, nil
}

func (h Hello) validate() error {
	if h.Protocol != Protocol {
		return fmt.Errorf("%w: protocol %d, this manager speaks %d", ErrBadFrame, h.Protocol, Protocol)
	}
	if err := resource.ValidateCluster(h.Cluster); err != nil {
		return fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if h.Node == "" || len(h.Node) > 128 || h.Epoch < 1 || len(h.Version) > 128 {
		return fmt.Errorf("%w: hello needs a node ID (≤128 bytes) and an epoch ≥ 1", ErrBadFrame)
	}
	return nil
}

// Hello returns what the gateway said about itself.
func (l *Link) Hello() Hello { return l.hello }

// Refuse closes a link that was accepted but not served, telling the
// gateway why with the close code of err (ErrStaleEpoch, ErrWrongCluster,
// ErrNotActive, …) and its text. It waits for the close handshake, at most
// a few seconds.
func (l *Link) Refuse(err error) {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.cause = err
		l.mu.Unlock()
		close(l.closing)
	})
	_ = l.ws.Close(codeOf(err), reason(err.Error())) // best effort: the gateway may be gone
}

// Serve sends welcome and runs the link until ctx ends, Close is called,
// the gateway goes silent for DeadAfter or the connection fails. It
// returns why the link ended; every request still in flight then fails
// with that error (wrapping ErrClosed or one of the refusal errors).
func (l *Link) Serve(ctx context.Context, welcome Welcome) error {
	welcome.Protocol = Protocol
	welcome.HeartbeatMillis = l.cfg.Heartbeat.Milliseconds()
	welcome.MaxFrame = l.cfg.MaxFrame
	l.connected.Store(l.cfg.Clock.Now().UnixNano())
	l.touch()
	// The socket's reads and writes run on connCtx, not ctx: a cancelled
	// context makes the library drop the socket without a close frame, and
	// Close wants to send one first.
	connCtx, stopConn := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConn()
	var wg sync.WaitGroup
	defer wg.Wait()
	if err := l.write(connCtx, &Frame{Type: FrameWelcome, Welcome: &welcome}); err != nil {
		l.Close(err)
	}
	close(l.ready)
	wg.Go(func() { l.writeControl(connCtx) })
	wg.Go(func() { l.watch(ctx, connCtx) })
	wg.Go(func() {
		// Close sends the close frame; if the peer does not answer within
		// a second, drop the socket.
		select {
		case <-l.closing:
		case <-connCtx.Done():
			return
		}
		l.mu.Lock()
		cause := l.cause
		l.mu.Unlock()
		done := make(chan struct{})
		go func() { defer close(done); _ = l.ws.Close(codeOf(cause), reason(cause.Error())) }() // best effort
		select {
		case <-done:
		case <-l.cfg.Clock.After(time.Second):
			stopConn()
			<-done
		}
	})
	for {
		_, msg, err := l.ws.Read(connCtx)
		if err != nil {
			l.Close(fromClose(err))
			break
		}
		l.touch()
		f, err := Decode(msg)
		if err != nil {
			l.Close(err)
			break
		}
		l.dispatch(f)
	}
	stopConn()
	wg.Wait()
	return l.Err()
}

// watch closes the link when ctx ends or the gateway goes silent.
func (l *Link) watch(ctx, connCtx context.Context) {
	period := max(l.cfg.Heartbeat/2, time.Millisecond)
	for {
		select {
		case <-connCtx.Done():
			return
		case <-ctx.Done():
			l.Close(fmt.Errorf("%w: manager shutting down or deposed", ErrNotActive))
			return
		case <-l.cfg.Clock.After(period):
		}
		if silent := l.cfg.Clock.Now().Sub(l.LastHeartbeat()); silent > l.cfg.DeadAfter {
			l.Close(fmt.Errorf("%w: nothing for %v", ErrHeartbeat, silent.Round(time.Millisecond)))
			return
		}
	}
}

func (l *Link) writeControl(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-l.ctl:
			if err := l.write(ctx, f); err != nil {
				l.Close(err)
				return
			}
		}
	}
}

// control queues a control frame without blocking; if the queue is full
// the frame is dropped (a pong is implied by the next one, a cancel by the
// request's own deadline on the gateway).
func (l *Link) control(f *Frame) {
	select {
	case l.ctl <- f:
	default:
	}
}

func (l *Link) write(ctx context.Context, f *Frame) error {
	buf, err := Encode(f, l.cfg.MaxFrame)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, l.cfg.WriteTimeout)
	defer cancel()
	if err := l.ws.Write(wctx, websocket.MessageBinary, buf); err != nil {
		return fmt.Errorf("%w: write %s frame: %v", ErrClosed, f.Type, err)
	}
	return nil
}

func (l *Link) dispatch(f *Frame) {
	switch f.Type {
	case FramePing:
		l.control(&Frame{Type: FramePong})
	case FramePong:
	case FrameResponse, FrameBody:
		l.mu.Lock()
		c := l.pending[f.ID]
		l.mu.Unlock()
		if c == nil {
			return // the caller gave up; the rest of the answer is dropped
		}
		if err := c.deliver(f, l.cfg.MaxResponse); err != nil {
			c.fail(err)
			l.control(&Frame{Type: FrameCancel, ID: f.ID})
		}
	default:
		l.cfg.Logger.Warn("unexpected tunnel frame", "cluster", l.hello.Cluster, "frame", f.Type.String())
	}
}

func (l *Link) touch() { l.lastRecv.Store(l.cfg.Clock.Now().UnixNano()) }

// LastHeartbeat is when the last frame of any kind arrived.
func (l *Link) LastHeartbeat() time.Time { return time.Unix(0, l.lastRecv.Load()) }

// ConnectedAt is when Serve admitted the link.
func (l *Link) ConnectedAt() time.Time { return time.Unix(0, l.connected.Load()) }

// InFlight is the number of requests waiting for an answer.
func (l *Link) InFlight() int { return int(l.inFlight.Load()) }

// Done is closed when Close has been called (the link takes no requests).
func (l *Link) Done() <-chan struct{} { return l.closing }

// Err is why the link closed, nil while it is open.
func (l *Link) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cause
}

// Close ends the link: it fails every request in flight at once with err
// (wrapped in ErrClosed, so errors.Is(err, ErrClosed) tells a lost link
// from a refused request), then tells the gateway why with the close code
// of err and drops the socket. Only the first call's err counts.
func (l *Link) Close(err error) {
	if !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.cause = err
		pending := l.pending
		l.pending = map[uint64]*call{}
		l.mu.Unlock()
		close(l.closing)
		for _, c := range pending {
			c.fail(err)
		}
	})
}

// RoundTrip sends req to the gateway and waits for its whole answer until
// ctx ends (a request made before Serve has sent the welcome waits for
// it). Requests are multiplexed: a slow one holds up no other. A request
// whose frame would exceed the frame limit fails with ErrFrameTooLarge
// before anything is sent, and the link stays up; an answer over
// MaxResponse fails with ErrResponseTooLarge. When ctx ends first the
// gateway is told to cancel and ctx's error is returned (wrapped).
func (l *Link) RoundTrip(ctx context.Context, req *Request) (*Response, error) {
	st, err := l.Open(ctx, req)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var body []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := st.Read(buf)
		body = append(body, buf[:n]...)
		if len(body) > l.cfg.MaxResponse {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, l.cfg.MaxResponse)
		}
		if errors.Is(err, io.EOF) {
			return &Response{Head: st.Head, Body: body}, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Stream is an answer whose body is read as the gateway sends it: a
// streaming response (server-sent events) goes on as long as the gateway
// writes, frame by frame. Close it; closing before the end tells the
// gateway to stop.
type Stream struct {
	Head ResponseHead
	ctx  context.Context
	l    *Link
	c    *call
	id   uint64
	once sync.Once
}

// Open sends req like RoundTrip and returns once the answer's status and
// headers are in; the body follows through the Stream. At most
// MaxResponse bytes may wait unread: a reader that falls further behind
// fails with ErrResponseTooLarge and the gateway is told to stop.
func (l *Link) Open(ctx context.Context, req *Request) (*Stream, error) {
	if n := l.inFlight.Add(1); n > int64(l.cfg.MaxInFlight) {
		l.inFlight.Add(-1)
		return nil, fmt.Errorf("%w (%d)", ErrBusy, l.cfg.MaxInFlight)
	}
	id := l.nextID.Add(1)
	st := &Stream{ctx: ctx, l: l, id: id}
	fail := func(err error) (*Stream, error) {
		st.Close()
		return nil, err
	}
	buf, err := Encode(&Frame{Type: FrameRequest, ID: id, Request: &req.Head, Body: req.Body}, l.cfg.MaxFrame)
	if err != nil {
		return fail(err)
	}
	select {
	case <-l.ready:
	case <-l.closing:
		return fail(l.Err())
	case <-ctx.Done():
		return fail(fmt.Errorf("tunnel request: %w", context.Cause(ctx)))
	}
	c := newCall()
	l.mu.Lock()
	if l.cause != nil {
		cause := l.cause
		l.mu.Unlock()
		return fail(cause)
	}
	l.pending[id] = c
	l.mu.Unlock()
	st.c = c
	// Writes run on the link's lifetime, not the caller's context: the
	// library drops the socket when a write's context ends, and one caller
	// giving up must not cost every other request its connection.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.WriteTimeout)
	err = l.ws.Write(wctx, websocket.MessageBinary, buf)
	cancel()
	if err != nil {
		l.Close(fmt.Errorf("%w: send request: %v", ErrClosed, err))
		return fail(l.Err())
	}
	select {
	case <-c.headc:
	case <-ctx.Done():
		return fail(fmt.Errorf("tunnel request %d: %w", id, context.Cause(ctx)))
	}
	c.mu.Lock()
	head, cerr := c.head, c.err
	c.mu.Unlock()
	if head == nil {
		return fail(cerr)
	}
	st.Head = *head
	return st, nil
}

// Read reads the body as it arrives; io.EOF after the last frame.
func (s *Stream) Read(p []byte) (int, error) {
	c := s.c
	for {
		c.mu.Lock()
		switch {
		case len(c.buf) > 0:
			n := copy(p, c.buf)
			c.buf = c.buf[n:]
			c.mu.Unlock()
			return n, nil
		case c.ended:
			c.mu.Unlock()
			return 0, io.EOF
		case c.err != nil:
			err := c.err
			c.mu.Unlock()
			return 0, err
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-s.ctx.Done():
			return 0, fmt.Errorf("tunnel request %d: %w", s.id, context.Cause(s.ctx))
		}
	}
}

// Close releases the request; before the end it tells the gateway to stop.
func (s *Stream) Close() error {
	s.once.Do(func() {
		defer s.l.inFlight.Add(-1)
		if s.c == nil {
			return
		}
		s.l.mu.Lock()
		delete(s.l.pending, s.id)
		s.l.mu.Unlock()
		s.c.mu.Lock()
		ended := s.c.ended
		s.c.mu.Unlock()
		if !ended {
			s.l.control(&Frame{Type: FrameCancel, ID: s.id})
		}
	})
	return nil
}
