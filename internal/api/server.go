package api

import (
	"context"
	"errors"
	"fmt"
	"github.com/autogate/autogate/internal/accesslog"
	"log/slog"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/wire"
)

// Leadership tells whether this gateway is active, and who is.
type Leadership interface {
	Active() (bool, lease.Term)
}

// Server is the HTTP API of one gateway.
type Server struct {
	Gateway *gateway.Gateway
	Auth    *auth.Service
	Leader  Leadership
	Logger  *slog.Logger
	Cluster string
	Node    string
	Version string
	// Nodes lists the cluster's gateways and runners for GET /v1/nodes.
	Nodes func(ctx context.Context) ([]wire.Node, error)
	// Ready reports extra readiness conditions beyond holding the lease
	// (the store answering, …); nil means none.
	Ready func(ctx context.Context) error
	// Metrics, if set, is served unauthenticated at /metrics (Prometheus
	// text: counts and states only, never names or inputs).
	Metrics http.Handler
	// MaxBodyBytes caps request bodies; default 1 MiB.
	MaxBodyBytes int64
}

type ctxKey int

const (
	principalKey ctxKey = iota
	trustedKey
)

func principal(ctx context.Context) auth.Principal {
	p, _ := ctx.Value(principalKey).(auth.Principal)
	return p
}

// WithPrincipal returns ctx carrying p as an already authenticated caller:
// a request served with it skips the bearer-token check, while the standby
// rule and the role check still apply. Only code in this process can set
// it; the gateway's end of the manager tunnel does, for the manager user
// each forwarded request names (the cluster credential authenticated the
// tunnel itself).
func WithPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return context.WithValue(ctx, trustedKey, p)
}

// Handler returns the gateway's HTTP handler: /v1 (huma), /healthz, /readyz,
// wrapped in access logging.
func (s *Server) Handler() http.Handler {
	if s.MaxBodyBytes <= 0 {
		s.MaxBodyBytes = 1 << 20
	}
	mux := http.NewServeMux()
	cfg := huma.DefaultConfig("Autogate API", s.Version)
	cfg.Info.Description = "Automation gateway: services, decorators, repositories, secrets and executions of one cluster."
	cfg.OpenAPIPath = "/v1/openapi"
	cfg.DocsPath = ""     // the docs page loads scripts from a CDN; serve the document only
	cfg.SchemasPath = ""  // schemas are inline in the document
	cfg.CreateHooks = nil // no $schema links injected into responses
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "A token from POST /v1/login."},
	}
	hapi := humago.New(mux, cfg)
	hapi.UseMiddleware(s.authorize(hapi))
	s.register(hapi)

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		active, term := s.Leader.Active()
		if !active {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "standby; the active is %s\n", describe(term))
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

func describe(t lease.Term) string {
	if t.Holder == "" {
		return "unknown (no active gateway)"
	}
	if t.Address != "" {
		return fmt.Sprintf("%s at %s", t.Holder, t.Address)
	}
	return t.Holder
}

// Operation metadata keys.
const (
	metaAction = "autogate-action"
	metaPublic = "autogate-public"
)

// authorize enforces the standby rule, authentication and the role check.
func (s *Server) authorize(hapi huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		op := ctx.Operation()
		if op == nil || op.Metadata == nil {
			next(ctx)
			return
		}
		if active, term := s.Leader.Active(); !active {
			_ = huma.WriteErr(hapi, ctx, http.StatusServiceUnavailable, // the response is all we can do here
				fmt.Sprintf("standby; the active is %s", describe(term)))
			return
		}
		if op.Metadata[metaPublic] == true {
			next(ctx)
			return
		}
		p, trusted := ctx.Context().Value(trustedKey).(auth.Principal)
		if !trusted {
			h := ctx.Header("Authorization")
			tok, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				ctx.SetHeader("WWW-Authenticate", `Bearer realm="autogate"`)
				_ = huma.WriteErr(hapi, ctx, http.StatusUnauthorized, "missing bearer token; run `autogate login`")
				return
			}
			var err error
			if p, err = s.Auth.Authenticate(ctx.Context(), tok); err != nil {
				st := statusOf(err)
				msg := "invalid or expired token; run `autogate login`"
				if st != http.StatusUnauthorized {
					s.Logger.Error("authenticate", "error", err)
					msg = "authentication unavailable"
				}
				ctx.SetHeader("WWW-Authenticate", `Bearer realm="autogate"`)
				_ = huma.WriteErr(hapi, ctx, st, msg)
				return
			}
		}
		action, _ := op.Metadata[metaAction].(auth.Action)
		if !p.Role.Allows(action) {
			_ = huma.WriteErr(hapi, ctx, http.StatusForbidden,
				fmt.Sprintf("role %s may not %s", p.Role, op.Summary))
			return
		}
		accesslog.From(ctx.Context()).User = p.User
		next(huma.WithValue(ctx, principalKey, p))
	}
}

var errNoNodes = errors.New("node listing not configured")
