package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/autogate/autogate/internal/accesslog"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/manager/registry"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/wire"
)

// Leadership tells whether this manager is active, and who is.
type Leadership interface {
	Active() (bool, lease.Term)
}

// Server is the manager's HTTP API.
type Server struct {
	Hub      *Hub
	Registry *registry.Registry
	Auth     *auth.Service
	Leader   Leadership
	Logger   *slog.Logger
	Clock    clock.Clock
	// Namespace is the manager's own cluster ID; Node its node ID.
	Namespace, Node, Version string
	// RequestTimeout bounds a routed request; default 60 s. A synchronous
	// run or a wait gets its own wait plus 10 s instead, if longer, up to
	// MaxRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes caps request bodies, routed ones included; default
	// 1 MiB. It must leave room under the tunnel's frame limit.
	MaxBodyBytes int64
	// Ready reports extra readiness conditions (the store answering).
	Ready func(ctx context.Context) error
}

// MaxRequestTimeout is the longest a routed request may take: a 5-minute
// synchronous run plus its grace.
const MaxRequestTimeout = 5*time.Minute + waitGrace

// waitGrace is added to a run's or a wait's own timeout, so the gateway
// answers (202, still running) before the manager gives up.
const waitGrace = 10 * time.Second

type ctxKey int

const (
	principalKey ctxKey = iota
)

func principal(ctx context.Context) auth.Principal {
	p, _ := ctx.Value(principalKey).(auth.Principal)
	return p
}

// Operation metadata keys.
const (
	metaAction = "autogate-action"
	metaPublic = "autogate-public"
)

// Handler returns the manager's HTTP handler: /v1 (huma), the tunnel
// endpoint, the routed /v1/clusters/{id}/…, /healthz and /readyz, wrapped
// in access logging.
func (s *Server) Handler() http.Handler {
	if s.MaxBodyBytes <= 0 {
		s.MaxBodyBytes = 1 << 20
	}
	if s.RequestTimeout <= 0 {
		s.RequestTimeout = time.Minute
	}
	if s.Clock == nil {
		s.Clock = clock.Real{}
	}
	mux := http.NewServeMux()
	cfg := huma.DefaultConfig("Autogate Manager API", s.Version)
	cfg.Info.Description = "Gateway Manager: the registry of clusters, and every cluster's /v1 API routed through " +
		"/v1/clusters/{id}/… over the cluster's tunnel (see the gateway's API for those operations)."
	cfg.OpenAPIPath = "/v1/openapi"
	cfg.DocsPath = ""
	cfg.SchemasPath = ""
	cfg.CreateHooks = nil
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "A token from POST /v1/login."},
	}
	hapi := humago.New(mux, cfg)
	hapi.UseMiddleware(s.authorize(hapi))
	s.register(hapi)

	mux.HandleFunc("GET "+connectPath, s.connect)
	mux.HandleFunc("/v1/clusters/{id}/{rest...}", s.route)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if active, term := s.Leader.Active(); !active {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "standby; the active manager is %s\n", describe(term))
			return
		}
		if s.Ready != nil {
			if err := s.Ready(r.Context()); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "not ready")
				s.Logger.Warn("readiness check failed", "error", err)
				return
			}
		}
		fmt.Fprintln(w, "active")
	})
	return accesslog.Middleware(s.Logger, mux)
}

const connectPath = "/v1/connect"

func describe(t lease.Term) string {
	if t.Holder == "" {
		return "unknown (no active manager)"
	}
	if t.Address != "" {
		return fmt.Sprintf("%s at %s", t.Holder, t.Address)
	}
	return t.Holder
}

// authenticate applies the standby rule and checks the bearer token; on
// failure it returns the status and message to answer with.
func (s *Server) authenticate(ctx context.Context, header string) (auth.Principal, int, string) {
	if active, term := s.Leader.Active(); !active {
		return auth.Principal{}, http.StatusServiceUnavailable, fmt.Sprintf("standby; the active manager is %s", describe(term))
	}
	tok, ok := cutBearer(header)
	if !ok {
		return auth.Principal{}, http.StatusUnauthorized, "missing bearer token; run `autogate login` against the manager"
	}
	p, err := s.Auth.Authenticate(ctx, tok)
	if err != nil {
		if st := statusOf(err); st != http.StatusUnauthorized {
			s.Logger.Error("authenticate", "error", err)
			return auth.Principal{}, st, "authentication unavailable"
		}
		return auth.Principal{}, http.StatusUnauthorized, "invalid or expired token; run `autogate login` against the manager"
	}
	return p, 0, ""
}

// authorize is the huma middleware: standby rule, token, role.
func (s *Server) authorize(hapi huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		if op == nil || op.Metadata == nil {
			next(ctx)
			return
		}
		if op.Metadata[metaPublic] == true {
			if active, term := s.Leader.Active(); !active {
				_ = huma.WriteErr(hapi, ctx, http.StatusServiceUnavailable, fmt.Sprintf("standby; the active manager is %s", describe(term))) // the response is all we can do
				return
			}
			next(ctx)
			return
		}
		p, st, msg := s.authenticate(ctx.Context(), ctx.Header("Authorization"))
		if st != 0 {
			if st == http.StatusUnauthorized {
				ctx.SetHeader("WWW-Authenticate", `Bearer realm="autogate-manager"`)
			}
			_ = huma.WriteErr(hapi, ctx, st, msg) // the response is all we can do
			return
		}
		action, _ := op.Metadata[metaAction].(auth.Action)
		if !p.Role.Allows(action) {
			_ = huma.WriteErr(hapi, ctx, http.StatusForbidden, fmt.Sprintf("role %s may not %s", p.Role, op.Summary))
			return
		}
		accesslog.From(ctx.Context()).User = p.User
		next(huma.WithValue(ctx, principalKey, p))
	}
}

// connect is GET /v1/connect: a gateway's tunnel, authenticated by its
// cluster credential before the upgrade.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	if active, term := s.Leader.Active(); !active {
		writeProblem(w, http.StatusServiceUnavailable, fmt.Sprintf("standby; the active manager is %s", describe(term)))
		return
	}
	cred, ok := cutBearer(r.Header.Get("Authorization"))
	if !ok {
		writeProblem(w, http.StatusUnauthorized, "missing cluster credential")
		return
	}
	id, err := s.Registry.Verify(r.Context(), cred)
	if err != nil {
		if errors.Is(err, registry.ErrBadCredential) {
			s.Logger.Warn("tunnel refused: bad cluster credential", "remote", r.RemoteAddr)
			writeProblem(w, http.StatusUnauthorized, "invalid cluster credential (see `autogate manager create cluster`)")
			return
		}
		s.Logger.Error("verify cluster credential", "error", err)
		writeProblem(w, http.StatusServiceUnavailable, "credential check unavailable")
		return
	}
	accesslog.From(r.Context()).Cluster = id
	if err := s.Hub.ServeConnect(w, r, id); err != nil {
		writeProblem(w, http.StatusServiceUnavailable, err.Error())
	}
}

func cutBearer(h string) (string, bool) {
	tok, ok := strings.CutPrefix(h, "Bearer ")
	return tok, ok && tok != ""
}

// writeProblem answers with an RFC 9457 problem document, as huma does.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wire.Problem{Title: http.StatusText(status), Status: status, Detail: detail}) // the client may be gone
}

// statusOf maps a domain error to an HTTP status; unknown errors are
// internal and their text never reaches clients.
func statusOf(err error) int {
	switch {
	case errors.Is(err, resource.ErrInvalid), errors.Is(err, store.ErrBadPageToken):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, auth.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, store.ErrFenced), errors.Is(err, lease.ErrNotLeader):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (s *Server) problem(ctx context.Context, op string, err error) error {
	var se huma.StatusError
	if errors.As(err, &se) {
		return err
	}
	st := statusOf(err)
	if st >= 500 && st != http.StatusServiceUnavailable {
		s.Logger.ErrorContext(ctx, "request failed", "operation", op, "error", err)
		return huma.NewError(st, "internal error; see the manager log")
	}
	s.Logger.DebugContext(ctx, "request rejected", "operation", op, "status", st, "error", err)
	return huma.NewError(st, err.Error())
}
