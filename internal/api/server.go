package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/autogate/autogate/internal/accesslog"
	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/console"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/wire"
)

// Leadership tells whether this gateway is active, and who is.
type Leadership = httpapi.Leadership

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

	api *httpapi.API
}

func principal(ctx context.Context) auth.Principal { return httpapi.Principal(ctx) }

// WithPrincipal returns ctx carrying p as an already authenticated caller
// (see httpapi.WithPrincipal); the gateway's end of the manager tunnel
// sets it for the manager user each forwarded request names.
func WithPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return httpapi.WithPrincipal(ctx, p)
}

// Handler returns the gateway's HTTP handler: /v1 (huma), the console at
// /ui/, /healthz, /readyz, /metrics, wrapped in access logging.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.api = httpapi.New(mux, httpapi.Config{
		Title: "Autogate API", Version: s.Version,
		Description: "Automation gateway: services, decorators, repositories, secrets and executions of one cluster.",
		Auth:        s.Auth, Leader: s.Leader, Logger: s.Logger, Cluster: s.Cluster, Node: s.Node,
		LoginHint: "run `autogate login`", Realm: "autogate", Ready: s.Ready, MaxBodyBytes: s.MaxBodyBytes,
		Errors: gatewayErrors,
	})
	s.MaxBodyBytes = s.api.MaxBodyBytes()
	s.register()
	console.Mount(mux, console.Config{API: s.api, Kind: console.Gateway, Cluster: s.Cluster, Logger: s.Logger})
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	return accesslog.Middleware(s.Logger, mux)
}

// problem converts err into a problem document (httpapi.API.Problem).
func (s *Server) problem(ctx context.Context, err error) error { return s.api.Problem(ctx, err) }

var errNoNodes = errors.New("node listing not configured")
