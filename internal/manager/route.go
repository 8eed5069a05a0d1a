package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/autogate/autogate/internal/accesslog"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/tunnel"
	"github.com/autogate/autogate/internal/wire"
)

// route is /v1/clusters/{id}/{rest...}: the request goes down cluster id's
// tunnel as /v1/{rest}, with the caller named, and its answer comes back
// as it is. The caller needs a manager token; what it may do on the
// cluster is the cluster's decision, by the caller's manager role.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	id, rest := r.PathValue("id"), r.PathValue("rest")
	info := accesslog.From(r.Context())
	info.Cluster = id
	p, st, msg := s.api.Authenticate(r)
	if st != 0 {
		if s.api.Standby() {
			w.Header().Set(httpapi.StandbyHeader, s.Node)
		}
		if st == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="autogate-manager"`)
		}
		writeProblem(w, st, msg)
		return
	}
	info.User = p.User
	if err := resource.ValidateCluster(id); err != nil {
		writeProblem(w, http.StatusBadRequest, err.Error())
		return
	}
	link := s.Hub.Link(id)
	if link == nil {
		s.notConnected(w, r, id)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
			return
		}
		writeProblem(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	timeout := s.timeoutFor(r.Method, rest, r.URL.Query(), body)
	head := tunnel.RequestHead{
		Method: r.Method, Path: "/v1/" + rest, RawQuery: r.URL.RawQuery,
		Header:        tunnel.FilterRequestHeader(r.Header),
		Caller:        tunnel.Caller{User: p.User, Role: string(p.Role)},
		TimeoutMillis: timeout.Milliseconds(),
	}
	if r.URL.RawPath != "" {
		if raw, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/clusters/"+id+"/"); ok {
			head.RawPath = "/v1/" + raw
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	req := &tunnel.Request{Head: head, Body: body}
	if isEventStream(r.Method, rest) {
		s.routeStream(ctx, w, r, link, id, timeout, req)
		return
	}
	resp, err := link.RoundTrip(ctx, req)
	if err != nil {
		s.routeError(w, r, id, timeout, err)
		return
	}
	copyResponseHeader(w, resp.Head)
	w.WriteHeader(resp.Head.Status)
	if _, err := w.Write(resp.Body); err != nil {
		s.Logger.Debug("routed response not delivered", "cluster", id, "error", err)
	}
}

func copyResponseHeader(w http.ResponseWriter, h tunnel.ResponseHead) {
	for k, v := range tunnel.FilterResponseHeader(h.Header) {
		if k != "X-Request-Id" {
			w.Header()[k] = v
		}
	}
}

// isEventStream tells the routes whose answer is a stream of server-sent
// events (an execution's output).
func isEventStream(method, rest string) bool {
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	return method == http.MethodGet && len(parts) == 3 && parts[0] == "executions" && parts[2] == "output"
}

// routeStream passes a streamed answer on as it arrives, each piece
// flushed at once. It ends with the gateway's stream, the caller, or the
// request's timeout (the client resumes from its last event ID).
func (s *Server) routeStream(ctx context.Context, w http.ResponseWriter, r *http.Request, link *tunnel.Link, id string, timeout time.Duration, req *tunnel.Request) {
	st, err := link.Open(ctx, req)
	if err != nil {
		s.routeError(w, r, id, timeout, err)
		return
	}
	defer st.Close()
	copyResponseHeader(w, st.Head)
	if strings.HasPrefix(st.Head.Header.Get("Content-Type"), "text/event-stream") {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no")
	}
	rc := http.NewResponseController(w)
	// The server's read deadline would end a long stream; each write gets
	// its own deadline instead.
	_ = rc.SetReadDeadline(time.Time{}) // best effort: a writer without deadlines has none to lift
	w.WriteHeader(st.Head.Status)
	buf := make([]byte, 32<<10)
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second)) // best effort, as above
		if err := rc.Flush(); err != nil {
			return
		}
		n, err := st.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				s.Logger.Debug("routed stream not delivered", "cluster", id, "error", werr)
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				s.Logger.Debug("routed stream ended early", "cluster", id, "error", err)
			}
			_ = rc.Flush() // what arrived last goes out
			return
		}
	}
}

// notConnected answers a request for a cluster without a tunnel: 404 if
// the manager does not know it, else 503 at once.
func (s *Server) notConnected(w http.ResponseWriter, r *http.Request, id string) {
	c, err := s.Registry.Get(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("cluster %q is not registered with this manager (see `autogate get clusters`)", id))
		return
	case err != nil:
		s.Logger.Error("load cluster", "cluster", id, "error", err)
		writeProblem(w, http.StatusServiceUnavailable, "the registry is unavailable")
		return
	}
	w.Header().Set("Retry-After", "5")
	writeProblem(w, http.StatusServiceUnavailable, disconnectedDetail(c))
}

func disconnectedDetail(c wire.Cluster) string {
	msg := fmt.Sprintf("cluster %s is not connected: no active gateway of it holds a tunnel to this manager", c.ID)
	if c.Node != "" && !c.LastHeartbeat.IsZero() {
		msg += fmt.Sprintf(" (last heard from %s, epoch %d, at %s)", c.Node, c.Epoch, c.LastHeartbeat.Format(time.RFC3339))
	}
	return msg
}

func (s *Server) routeError(w http.ResponseWriter, r *http.Request, id string, timeout time.Duration, err error) {
	var fe *tunnel.FrameTooLargeError
	switch {
	case r.Context().Err() != nil:
		s.Logger.Debug("routed request abandoned by its caller", "cluster", id)
	case errors.As(err, &fe):
		writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request does not fit the tunnel to cluster %s: %v", id, err))
	case errors.Is(err, tunnel.ErrBusy):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusServiceUnavailable, fmt.Sprintf("cluster %s: %v", id, err))
	case errors.Is(err, context.DeadlineExceeded):
		writeProblem(w, http.StatusGatewayTimeout, fmt.Sprintf("cluster %s did not answer within %v; the request may still complete there", id, timeout))
	case errors.Is(err, tunnel.ErrResponseTooLarge):
		writeProblem(w, http.StatusBadGateway, fmt.Sprintf("cluster %s: %v", id, err))
	default:
		s.Logger.Warn("routed request lost its tunnel", "cluster", id, "error", err)
		writeProblem(w, http.StatusBadGateway, fmt.Sprintf("the connection to cluster %s was lost during the request, which may or may not have run there: %v", id, err))
	}
}

// timeoutFor is how long a routed request may take: RequestTimeout, or for
// a synchronous run or a wait, the wait it asks the gateway for plus
// waitGrace; at most MaxRequestTimeout.
func (s *Server) timeoutFor(method, rest string, q url.Values, body []byte) time.Duration {
	d := s.RequestTimeout
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	wait := 0
	switch {
	case method == http.MethodPost && len(parts) == 3 && parts[0] == "services" && parts[2] == "run":
		var rr struct {
			Async       bool `json:"async"`
			WaitSeconds int  `json:"waitSeconds"`
		}
		if json.Unmarshal(body, &rr) == nil && !rr.Async {
			wait = rr.WaitSeconds
			if wait <= 0 {
				wait = 60
			}
		}
	case isEventStream(method, rest):
		// A stream runs as long as it may; the client resumes after it.
		return MaxRequestTimeout
	case method == http.MethodGet && len(parts) == 3 && parts[0] == "executions" && parts[2] == "wait":
		n, err := strconv.Atoi(q.Get("timeout"))
		if err != nil || n <= 0 {
			n = 60
		}
		wait = n
	}
	if wait > 0 {
		d = max(d, time.Duration(wait)*time.Second+waitGrace)
	}
	return min(d, MaxRequestTimeout)
}
