package manager

import (
	"context"
	"errors"
	"github.com/autogate/autogate/internal/accesslog"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/console"
	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/manager/registry"
)

// Leadership tells whether this manager is active, and who is.
type Leadership = httpapi.Leadership

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

	api *httpapi.API
}

// MaxRequestTimeout is the longest a routed request may take: a 5-minute
// synchronous run plus its grace.
const MaxRequestTimeout = 5*time.Minute + waitGrace

// waitGrace is added to a run's or a wait's own timeout, so the gateway
// answers (202, still running) before the manager gives up.
const waitGrace = 10 * time.Second

// Handler returns the manager's HTTP handler: /v1 (huma), the console at
// /ui/, the tunnel endpoint, the routed /v1/clusters/{id}/…, /healthz and /readyz, wrapped
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
	s.api = httpapi.New(mux, httpapi.Config{
		Title: "Autogate Manager API", Version: s.Version,
		Description: "Gateway Manager: the registry of clusters, and every cluster's /v1 API routed through " +
			"/v1/clusters/{id}/… over the cluster's tunnel (see the gateway's API for those operations).",
		Auth: s.Auth, Leader: s.Leader, Logger: s.Logger, Cluster: s.Namespace, Node: s.Node, Noun: "manager",
		LoginHint: "run `autogate login` against the manager", Realm: "autogate-manager", Ready: s.Ready,
		MaxBodyBytes: s.MaxBodyBytes,
	})
	s.registerClusters()
	console.Mount(mux, console.Config{API: s.api, Kind: console.Manager, Cluster: s.Namespace, Logger: s.Logger})

	mux.HandleFunc("GET "+connectPath, s.connect)
	mux.HandleFunc("/v1/clusters/{id}/{rest...}", s.route)
	return accesslog.Middleware(s.Logger, mux)
}

const connectPath = "/v1/connect"

// connect is GET /v1/connect: a gateway's tunnel, authenticated by its
// cluster credential before the upgrade.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) {
	if active, term := s.Leader.Active(); !active {
		w.Header().Set(httpapi.StandbyHeader, s.Node)
		writeProblem(w, http.StatusServiceUnavailable, s.api.StandbyDetail(term))
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

func writeProblem(w http.ResponseWriter, status int, detail string) {
	httpapi.WriteProblem(w, status, detail)
}

// problem converts err into a problem document (httpapi.API.Problem).
func (s *Server) problem(ctx context.Context, err error) error { return s.api.Problem(ctx, err) }
