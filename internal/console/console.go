package console

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/wire"
)

//go:embed assets
var assets embed.FS

// CSP is the Content-Security-Policy of every /ui/ response.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// The kinds of server a console runs on.
const (
	// Gateway: one cluster, its API at /v1/….
	Gateway = "gateway"
	// Manager: every registered cluster, each at /v1/clusters/{id}/….
	Manager = "manager"
)

// Config is what the console needs from the server that mounts it.
type Config struct {
	// API authenticates requests and signs users in.
	API *httpapi.API
	// Kind is Gateway or Manager.
	Kind string
	// Cluster is the gateway's cluster (the manager's own namespace on a
	// manager).
	Cluster string
	Logger  *slog.Logger
}

// Session is what GET and POST /ui/session answer: who is signed in, on
// what kind of server.
type Session struct {
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Kind      string    `json:"kind"`
	Cluster   string    `json:"cluster"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// CanRun, CanWrite say which controls to show; the server checks
	// every request anyway.
	CanRun   bool `json:"canRun"`
	CanWrite bool `json:"canWrite"`
}

// Mount serves the console on mux under /ui/.
func Mount(mux *http.ServeMux, cfg Config) {
	var files http.Handler = http.NotFoundHandler()
	if sub, err := fs.Sub(assets, "assets"); err == nil { // it cannot fail: the tree is fixed at build time
		files = http.StripPrefix("/ui/", http.FileServerFS(sub))
	} else {
		cfg.Logger.Error("console assets", "error", err)
	}
	c := &console{cfg: cfg, files: files}
	mux.Handle("GET /ui", secure(http.RedirectHandler("/ui/", http.StatusFound)))
	mux.Handle("GET /ui/", secure(http.HandlerFunc(c.static)))
	mux.Handle("GET /ui/session", secure(http.HandlerFunc(c.session)))
	mux.Handle("POST /ui/session", secure(http.HandlerFunc(c.signIn)))
	mux.Handle("POST /ui/logout", secure(http.HandlerFunc(c.signOut)))
}

type console struct {
	cfg   Config
	files http.Handler
}

// secure sets the headers every /ui/ response carries.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (c *console) static(w http.ResponseWriter, r *http.Request) {
	c.files.ServeHTTP(w, r)
}

func (c *console) sessionOf(p auth.Principal, exp time.Time) Session {
	return Session{
		User: p.User, Role: string(p.Role), Kind: c.cfg.Kind, Cluster: c.cfg.Cluster, ExpiresAt: exp,
		CanRun: p.Role.Allows(auth.Run), CanWrite: p.Role.Allows(auth.Write),
	}
}

// session is GET /ui/session: the signed-in user, or 401.
func (c *console) session(w http.ResponseWriter, r *http.Request) {
	p, st, msg := c.cfg.API.Authenticate(r)
	if st != 0 {
		httpapi.WriteProblem(w, st, msg)
		return
	}
	writeJSON(w, http.StatusOK, c.sessionOf(p, time.Time{}))
}

// signIn is POST /ui/session: a JSON {username, password}, checked as
// POST /v1/login checks it; the token goes into the session cookie and
// its CSRF token into the script-readable one.
func (c *console) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		httpapi.WriteProblem(w, http.StatusForbidden, "sign-in from another origin")
		return
	}
	var in wire.LoginRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpapi.WriteProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
			return
		}
		httpapi.WriteProblem(w, http.StatusBadRequest, "the body must be JSON {\"username\": …, \"password\": …}")
		return
	}
	tok, err := c.cfg.API.Login(r.Context(), in.Username, in.Password)
	if err != nil {
		st := c.cfg.API.StatusOf(err)
		if st == http.StatusUnauthorized {
			httpapi.WriteProblem(w, st, "wrong user name or password")
			return
		}
		c.cfg.Logger.ErrorContext(r.Context(), "console sign-in", "error", err)
		httpapi.WriteProblem(w, http.StatusServiceUnavailable, "sign-in unavailable; see the server log")
		return
	}
	setCookies(w, tok.Token, tok.ExpiresAt)
	writeJSON(w, http.StatusOK, c.sessionOf(auth.Principal{User: tok.User, Role: auth.Role(tok.Role)}, tok.ExpiresAt))
}

// signOut is POST /ui/logout: revokes the session's token (the CSRF rule
// applies) and clears both cookies.
func (c *console) signOut(w http.ResponseWriter, r *http.Request) {
	if _, st, msg := c.cfg.API.Authenticate(r); st != 0 {
		if st == http.StatusUnauthorized {
			clearCookies(w) // a dead session: forget it
		}
		httpapi.WriteProblem(w, st, msg)
		return
	}
	if tok := httpapi.SessionToken(r); tok != "" {
		if err := c.cfg.API.Logout(r.Context(), tok); err != nil {
			c.cfg.Logger.ErrorContext(r.Context(), "console sign-out", "error", err)
			httpapi.WriteProblem(w, http.StatusServiceUnavailable, "sign-out unavailable; see the server log")
			return
		}
	}
	clearCookies(w)
	w.WriteHeader(http.StatusNoContent)
}

// sameOrigin refuses a sign-in posted from another site's page (login
// CSRF): a browser names the page's origin in Origin; a request without
// one is not from a cross-site page.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func setCookies(w http.ResponseWriter, token string, exp time.Time) {
	http.SetCookie(w, &http.Cookie{Name: httpapi.SessionCookie, Value: token, Path: "/", Expires: exp,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: httpapi.CSRFCookie, Value: httpapi.CSRFToken(token), Path: "/", Expires: exp,
		Secure: true, SameSite: http.SameSiteStrictMode})
}

func clearCookies(w http.ResponseWriter) {
	for _, n := range []string{httpapi.SessionCookie, httpapi.CSRFCookie} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: n == httpapi.SessionCookie, Secure: true, SameSite: http.SameSiteStrictMode})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone
}
