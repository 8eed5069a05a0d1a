package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/autogate/autogate/internal/accesslog"
	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/decorator"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// Leadership tells whether this node is active, and who is.
type Leadership interface {
	Active() (bool, lease.Term)
}

// Config describes one server's API.
type Config struct {
	Title, Description, Version string
	Auth                        *auth.Service
	Leader                      Leadership
	Logger                      *slog.Logger
	// Cluster and Node are what whoami reports.
	Cluster, Node string
	// Noun names the node in messages: "" for the gateway ("the active is
	// …"), "manager" for the Gateway Manager ("the active manager is …").
	Noun string
	// LoginHint ends the 401 messages, e.g. "run `autogate login`".
	LoginHint string
	// Realm is the WWW-Authenticate realm.
	Realm string
	// Ready reports extra readiness conditions beyond being active; nil
	// means none.
	Ready func(ctx context.Context) error
	// MaxBodyBytes caps request bodies (413); default 1 MiB.
	MaxBodyBytes int64
	// Errors extends the error → status table; consulted first.
	Errors []ErrorStatus
}

// API is one server's huma API on a ServeMux.
type API struct {
	huma.API
	cfg Config
}

type ctxKey int

const (
	principalKey ctxKey = iota
	trustedKey
	operationKey
)

// Operation metadata keys.
const (
	metaAction = "autogate-action"
	metaPublic = "autogate-public"
)

// Principal returns the authenticated caller of a request.
func Principal(ctx context.Context) auth.Principal {
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

// New builds the API on mux: huma with its document at /v1/openapi.json,
// the authorization middleware, the auth routes, /healthz and /readyz.
func New(mux *http.ServeMux, cfg Config) *API {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	hc := huma.DefaultConfig(cfg.Title, cfg.Version)
	hc.Info.Description = cfg.Description
	hc.OpenAPIPath = "/v1/openapi"
	hc.DocsPath = ""     // the docs page loads scripts from a CDN; serve the document only
	hc.SchemasPath = ""  // schemas are inline in the document
	hc.CreateHooks = nil // no $schema links injected into responses
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "A token from POST /v1/login."},
	}
	// Relative: the document describes the server that serves it, at
	// whatever address it is reached (a load balancer's, a tunnel's).
	hc.Servers = []*huma.Server{{URL: "/", Description: "the " + noun(cfg) + " serving this document"}}
	hc.Transformers = append(hc.Transformers, hideValues)
	a := &API{API: humago.New(mux, hc), cfg: cfg}
	a.UseMiddleware(a.authorize)
	a.registerAuth()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { unrouted(mux, w, r) })
	return a
}

// unrouted answers what no route of mux takes (its catch-all "/") with a
// problem document, as every other error is: 405 with Allow when the path
// has routes for other methods, else 404.
func unrouted(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteProblem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	WriteProblem(w, http.StatusNotFound, fmt.Sprintf("no route %s %s; the API is described at /v1/openapi.json", r.Method, r.URL.Path))
}

// MaxBodyBytes is the body cap in force.
func (a *API) MaxBodyBytes() int64 { return a.cfg.MaxBodyBytes }

// Op declares an operation that needs a role allowing action. id is the
// operation's ID in the document; Problem finds it from the request.
func (a *API) Op(method, path, id, summary, tag string, action auth.Action) huma.Operation {
	return huma.Operation{
		OperationID:  id,
		Method:       method,
		Path:         path,
		Summary:      summary,
		Tags:         []string{tag},
		Security:     []map[string][]string{{"bearer": {}}},
		MaxBodyBytes: a.cfg.MaxBodyBytes,
		Metadata:     map[string]any{metaAction: action},
		Errors:       []int{400, 401, 403, 404, 409, 413, 422, 429, 503},
	}
}

// Accepted is the responses entry of an operation that may also answer
// 202 with a body of type t, besides its default status; huma declares
// only the default one.
func (a *API) Accepted(t reflect.Type, description string) map[string]*huma.Response {
	return map[string]*huma.Response{"202": {
		Description: description,
		Content:     map[string]*huma.MediaType{"application/json": {Schema: a.OpenAPI().Components.Schemas.Schema(t, true, "")}},
	}}
}

// PublicOp declares an operation anyone may call (on the active node).
func (a *API) PublicOp(method, path, id, summary, tag string) huma.Operation {
	op := a.Op(method, path, id, summary, tag, auth.Read)
	op.Security = []map[string][]string{{}} // an empty requirement: no credentials
	op.Metadata = map[string]any{metaPublic: true}
	return op
}

// Problem converts err into a huma error with the status from StatusOf,
// logging it under the request's operation ID: 5xx (except 503) at error
// with a generic answer, the rest at debug with the error's text.
func (a *API) Problem(ctx context.Context, err error) error {
	var se huma.StatusError
	if errors.As(err, &se) {
		return err
	}
	op, _ := ctx.Value(operationKey).(string)
	st := a.StatusOf(err)
	if st >= 500 && st != http.StatusServiceUnavailable {
		a.cfg.Logger.ErrorContext(ctx, "request failed", "operation", op, "error", err)
		return huma.NewError(st, "internal error; see the "+a.noun()+" log")
	}
	a.cfg.Logger.DebugContext(ctx, "request rejected", "operation", op, "status", st, "error", err)
	detail, fields := err.Error(), fieldErrors(err)
	if len(fields) > 0 {
		// Each violation is in errors[] with its location, as huma reports
		// the body's own validation; the detail need not repeat them.
		detail = decorator.ErrInputs.Error()
	}
	he := huma.NewError(st, detail, fields...)
	if h := retryHeaders(err); h != nil {
		return huma.ErrorWithHeaders(he, h)
	}
	return he
}

// fieldErrors lists the inputs a decorator's schema refused, one problem
// detail each, located as huma locates the body's own fields
// ("body.inputs.count", "body.inputs.hosts[0]"), so a form can show each
// next to its field.
func fieldErrors(err error) []error {
	var ie *decorator.InputsError
	if !errors.As(err, &ie) {
		return nil
	}
	out := make([]error, 0, len(ie.Violations))
	for _, v := range ie.Violations {
		out = append(out, &huma.ErrorDetail{Message: v.Message, Location: "body.inputs" + pointerPath(v.Pointer)})
	}
	return out
}

// pointerPath turns a JSON pointer into huma's location syntax.
func pointerPath(ptr string) string {
	var b strings.Builder
	for _, seg := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if seg == "" {
			continue
		}
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(seg); err == nil {
			b.WriteString("[" + seg + "]")
		} else {
			b.WriteString("." + seg)
		}
	}
	return b.String()
}

func (a *API) noun() string { return noun(a.cfg) }

func noun(cfg Config) string {
	if cfg.Noun == "" {
		return "gateway"
	}
	return cfg.Noun
}

// StandbyDetail is the 503 detail of a standby, naming the active.
func (a *API) StandbyDetail(t lease.Term) string { return StandbyMessage(a.cfg.Noun, t) }

// StandbyMessage is a standby's 503 detail naming the active; noun is ""
// for a gateway, "manager" for the Gateway Manager.
func StandbyMessage(noun string, t lease.Term) string {
	n := noun
	if n == "" {
		n = "gateway"
	}
	who := "unknown (no active " + n + ")"
	switch {
	case t.Holder != "" && t.Address != "":
		who = fmt.Sprintf("%s at %s", t.Holder, t.Address)
	case t.Holder != "":
		who = t.Holder
	}
	if noun != "" {
		noun = " " + noun
	}
	return fmt.Sprintf("standby; the active%s is %s", noun, who)
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if active, term := a.cfg.Leader.Active(); !active {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, a.StandbyDetail(term))
		return
	}
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready")
			a.cfg.Logger.Warn("readiness check failed", "error", err)
			return
		}
	}
	fmt.Fprintln(w, "active")
}

// Standby reports whether this node is not active now. Its 503 answers
// then carry StandbyHeader, so a forwarding standby knows the request was
// not acted on.
func (a *API) Standby() bool {
	active, _ := a.cfg.Leader.Active()
	return !active
}

// Authenticate applies the standby rule and checks the request's bearer
// token, or without an Authorization header its session cookie (with the
// CSRF rule for state-changing methods, see SessionCookie), or takes the
// trusted caller its context carries; on failure it returns the status
// and the message to answer with. Routes outside huma (the manager's
// router, the console) use it as the middleware does.
func (a *API) Authenticate(r *http.Request) (auth.Principal, int, string) {
	ctx := r.Context()
	if active, term := a.cfg.Leader.Active(); !active {
		return auth.Principal{}, http.StatusServiceUnavailable, a.StandbyDetail(term)
	}
	if p, ok := ctx.Value(trustedKey).(auth.Principal); ok {
		return p, 0, ""
	}
	tok, st, msg := a.credential(r)
	if st != 0 {
		return auth.Principal{}, st, msg
	}
	p, err := a.cfg.Auth.Authenticate(ctx, tok)
	if err != nil {
		if st := a.StatusOf(err); st != http.StatusUnauthorized {
			a.cfg.Logger.Error("authenticate", "error", err)
			return auth.Principal{}, st, "authentication unavailable"
		}
		return auth.Principal{}, http.StatusUnauthorized, "invalid or expired token; " + a.cfg.LoginHint
	}
	return p, 0, ""
}

// authorize is the huma middleware: standby rule, authentication, role.
func (a *API) authorize(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	if op == nil || op.Metadata == nil {
		next(ctx)
		return
	}
	ctx = huma.WithValue(ctx, operationKey, op.OperationID)
	if op.Metadata[metaPublic] == true {
		if active, term := a.cfg.Leader.Active(); !active {
			ctx.SetHeader(StandbyHeader, a.cfg.Node)
			_ = huma.WriteErr(a, ctx, http.StatusServiceUnavailable, a.StandbyDetail(term)) // the response is all we can do here
			return
		}
		next(ctx)
		return
	}
	r, _ := humago.Unwrap(ctx)
	p, st, msg := a.Authenticate(r.WithContext(ctx.Context()))
	if st != 0 {
		if a.Standby() {
			ctx.SetHeader(StandbyHeader, a.cfg.Node)
		}
		if st == http.StatusUnauthorized {
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="`+a.cfg.Realm+`"`)
		}
		_ = huma.WriteErr(a, ctx, st, msg) // the response is all we can do here
		return
	}
	action, _ := op.Metadata[metaAction].(auth.Action)
	if !p.Role.Allows(action) {
		_ = huma.WriteErr(a, ctx, http.StatusForbidden, fmt.Sprintf("role %s may not %s", p.Role, op.Summary))
		return
	}
	accesslog.From(ctx.Context()).User = p.User
	next(huma.WithValue(ctx, principalKey, p))
}

// hideValues drops the request values huma puts in a problem's details
// (the whole body for an unexpected property, a field's value for a type
// error): any of them may be a secret or a sensitive input, and the
// location and message say enough.
func hideValues(_ huma.Context, _ string, v any) (any, error) {
	if m, ok := v.(*huma.ErrorModel); ok {
		for _, d := range m.Errors {
			if d != nil {
				d.Value = nil
			}
		}
	}
	return v, nil
}

// WriteProblem answers a plain handler with an RFC 9457 problem document,
// as huma does.
func WriteProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wire.Problem{Title: http.StatusText(status), Status: status, Detail: detail}) // the client may be gone
}

func (a *API) registerAuth() {
	login := a.PublicOp(http.MethodPost, "/v1/login", "login", "log in", "auth")
	login.MaxBodyBytes = 16 << 10
	huma.Register(a, login, func(ctx context.Context, in *struct{ Body wire.LoginRequest }) (*struct{ Body wire.LoginToken }, error) {
		tok, err := a.Login(ctx, in.Body.Username, in.Body.Password)
		if err != nil {
			return nil, a.Problem(ctx, err)
		}
		return &struct{ Body wire.LoginToken }{tok}, nil
	})
	huma.Register(a, a.Op(http.MethodPost, "/v1/logout", "logout", "log out (revoke this token)", "auth", auth.Read),
		func(ctx context.Context, in *struct {
			Authorization string `header:"Authorization"`
			Session       string `cookie:"autogate_session" hidden:"true"`
		}) (*struct{}, error) {
			tok, ok := strings.CutPrefix(in.Authorization, "Bearer ")
			if !ok {
				tok = in.Session // signed in by the console's cookie
			}
			if err := a.Logout(ctx, tok); err != nil {
				return nil, a.Problem(ctx, err)
			}
			return &struct{}{}, nil
		})
	huma.Register(a, a.Op(http.MethodGet, "/v1/whoami", "whoami", "show the caller", "auth", auth.Read),
		func(ctx context.Context, _ *struct{}) (*struct{ Body wire.WhoAmI }, error) {
			p := Principal(ctx)
			return &struct{ Body wire.WhoAmI }{wire.WhoAmI{User: p.User, Role: string(p.Role), Cluster: a.cfg.Cluster, Node: a.cfg.Node}}, nil
		})
	huma.Register(a, a.Op(http.MethodGet, "/v1/users", "list-users", "list users", "users", auth.Manage),
		func(ctx context.Context, in *PageInput) (*struct{ Body wire.Page[wire.User] }, error) {
			us, err := a.cfg.Auth.ListUsers(ctx)
			if err != nil {
				return nil, a.Problem(ctx, err)
			}
			all := make([]wire.User, 0, len(us))
			for _, u := range us {
				all = append(all, wire.User{Name: u.Name, Role: string(u.Role), CreatedAt: u.CreatedAt})
			}
			out, err := PageOf(all, func(u wire.User) string { return u.Name }, *in)
			if err != nil {
				return nil, a.Problem(ctx, err)
			}
			return &struct{ Body wire.Page[wire.User] }{out}, nil
		})
	create := a.Op(http.MethodPost, "/v1/users", "create-user", "create a user", "users", auth.Manage)
	create.DefaultStatus = http.StatusCreated
	huma.Register(a, create, func(ctx context.Context, in *struct{ Body wire.CreateUserRequest }) (*struct{ Body wire.User }, error) {
		role, err := auth.ParseRole(in.Body.Role)
		if err != nil {
			return nil, a.Problem(ctx, err)
		}
		u, err := a.cfg.Auth.CreateUser(ctx, in.Body.Name, role, in.Body.Password)
		if err != nil {
			return nil, a.Problem(ctx, err)
		}
		return &struct{ Body wire.User }{wire.User{Name: u.Name, Role: string(u.Role), CreatedAt: u.CreatedAt}}, nil
	})
	update := a.Op(http.MethodPatch, "/v1/users/{name}", "update-user", "change a user's role or password (revokes its tokens)", "users", auth.Manage)
	huma.Register(a, update, func(ctx context.Context, in *struct {
		Name string `path:"name" maxLength:"63"`
		Body wire.UpdateUserRequest
	}) (*struct{ Body wire.User }, error) {
		u, err := a.cfg.Auth.UpdateUser(ctx, in.Name, auth.Role(in.Body.Role), in.Body.Password)
		if err != nil {
			return nil, a.Problem(ctx, err)
		}
		return &struct{ Body wire.User }{wire.User{Name: u.Name, Role: string(u.Role), CreatedAt: u.CreatedAt}}, nil
	})
	del := a.Op(http.MethodDelete, "/v1/users/{name}", "delete-user", "delete a user (revokes its tokens)", "users", auth.Manage)
	del.DefaultStatus = http.StatusNoContent
	huma.Register(a, del, func(ctx context.Context, in *struct {
		Name string `path:"name" maxLength:"63"`
	}) (*struct{}, error) {
		if err := resource.ValidateName(in.Name); err != nil {
			return nil, a.Problem(ctx, err)
		}
		if err := a.cfg.Auth.DeleteUser(ctx, in.Name); err != nil {
			return nil, a.Problem(ctx, err)
		}
		return &struct{}{}, nil
	})
}
