package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/metrics"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/wire"
)

type fakeLeader struct{ active atomic.Bool }

func (f *fakeLeader) Active() (bool, lease.Term) {
	return f.active.Load(), lease.Term{Holder: "gw-2", Epoch: 7, Address: "https://10.0.0.2:8443"}
}

type env struct {
	srv    *httptest.Server
	leader *fakeLeader
	q      *queue.Local
	tokens map[auth.Role]string
	cat    *catalog.Catalog
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := clock.Real{}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, _ := secret.NewKeyring(make([]byte, 32))
	cat := &catalog.Catalog{Store: st, Cluster: "default", Keyring: kr, Clock: clk}
	au := &auth.Service{Store: st, Cluster: "default", Clock: clk, Params: auth.Params{Time: 1, Memory: 1024, Threads: 1}}
	q := queue.NewLocal()
	log := slog.New(slog.DiscardHandler)
	e := &env{leader: &fakeLeader{}, q: q, tokens: map[auth.Role]string{}, cat: cat}
	e.leader.active.Store(true)
	s := &Server{Gateway: &gateway.Gateway{Catalog: cat, Queue: q, Clock: clk, Logger: log, Node: "gw-1"},
		Auth: au, Leader: e.leader, Logger: log, Cluster: "default", Node: "gw-1", Version: "test", MaxBodyBytes: 64 << 10,
		Metrics: metrics.New("gw-1", metrics.RoleGateway).Handler()}
	e.srv = httptest.NewServer(s.Handler())
	t.Cleanup(e.srv.Close)
	for _, r := range []auth.Role{auth.Admin, auth.Operator, auth.Viewer} {
		if _, err := au.CreateUser(t.Context(), string(r)+"-user", r, "a long enough password"); err != nil {
			t.Fatal(err)
		}
		tok, _, err := au.IssueToken(t.Context(), string(r)+"-user", r, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = tok
	}
	return e
}

func (e *env) do(t *testing.T, role auth.Role, method, path, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := e.tokens[role]; tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), resp.Header
}

const repoJSON = `{"name":"r","url":"/srv/git/r"}`

func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		role   auth.Role // "" = no token
		method string
		path   string
		body   string
		want   int
	}{
		{"no token", "", "GET", "/v1/services", "", 401},
		{"viewer reads", auth.Viewer, "GET", "/v1/services", "", 200},
		{"viewer cannot create", auth.Viewer, "POST", "/v1/repositories", repoJSON, 403},
		{"operator cannot create", auth.Operator, "POST", "/v1/repositories", repoJSON, 403},
		{"admin creates", auth.Admin, "POST", "/v1/repositories", repoJSON, 201},
		{"viewer cannot run", auth.Viewer, "POST", "/v1/services/s/run", `{}`, 403},
		{"operator runs (unknown service)", auth.Operator, "POST", "/v1/services/s/run", `{}`, 404},
		{"operator cannot list users", auth.Operator, "GET", "/v1/users", "", 403},
		{"admin lists users", auth.Admin, "GET", "/v1/users", "", 200},
		{"openapi is public", "", "GET", "/v1/openapi.json", "", 200},
		{"login is public", "", "POST", "/v1/login", `{"username":"viewer-user","password":"a long enough password"}`, 200},
		{"bad login", "", "POST", "/v1/login", `{"username":"viewer-user","password":"nope nope nope"}`, 401},
		{"healthz", "", "GET", "/healthz", "", 200},
		{"metrics are public", "", "GET", "/metrics", "", 200},
		{"readyz active", "", "GET", "/readyz", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, body, _ := e.do(t, tt.role, tt.method, tt.path, tt.body)
			if got != tt.want {
				t.Errorf("%s %s as %q = %d, want %d: %s", tt.method, tt.path, tt.role, got, tt.want, body)
			}
		})
	}
}

func TestTrustedPrincipal(t *testing.T) {
	e := newEnv(t)
	h := e.srv.Config.Handler
	tests := []struct {
		name   string
		p      auth.Principal
		token  bool // also send a (viewer) bearer token, which must be ignored
		method string
		path   string
		body   string
		want   int
	}{
		{"viewer reads without a token", auth.Principal{User: "manager:v", Role: auth.Viewer}, false, "GET", "/v1/services", "", 200},
		{"whoami names the trusted caller", auth.Principal{User: "manager:v", Role: auth.Viewer}, false, "GET", "/v1/whoami", "", 200},
		{"the role check still applies", auth.Principal{User: "manager:v", Role: auth.Viewer}, false, "POST", "/v1/repositories", repoJSON, 403},
		{"admin creates", auth.Principal{User: "manager:a", Role: auth.Admin}, true, "POST", "/v1/repositories", repoJSON, 201},
		{"no role, no access", auth.Principal{User: "manager:x"}, false, "GET", "/v1/services", "", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rd io.Reader
			if tt.body != "" {
				rd = strings.NewReader(tt.body)
			}
			req := httptest.NewRequestWithContext(WithPrincipal(t.Context(), tt.p), tt.method, tt.path, rd)
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tt.token {
				req.Header.Set("Authorization", "Bearer "+e.tokens[auth.Viewer])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("%s %s as %+v = %d, want %d: %s", tt.method, tt.path, tt.p, rec.Code, tt.want, rec.Body)
			}
			if tt.path == "/v1/whoami" && !strings.Contains(rec.Body.String(), `"user":"manager:v"`) {
				t.Errorf("whoami = %s", rec.Body)
			}
		})
	}
	t.Run("a standby refuses trusted callers too", func(t *testing.T) {
		e.leader.active.Store(false)
		defer e.leader.active.Store(true)
		req := httptest.NewRequestWithContext(WithPrincipal(t.Context(), auth.Principal{User: "m", Role: auth.Admin}), "GET", "/v1/services", nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("standby = %d, want 503", rec.Code)
		}
	})
}

func TestProblems(t *testing.T) {
	e := newEnv(t)
	if st, body, _ := e.do(t, auth.Admin, "POST", "/v1/repositories", repoJSON); st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	tests := []struct {
		name       string
		method     string
		path, body string
		want       int
		detail     string
	}{
		{"unknown resource", "GET", "/v1/services/nope", "", 404, "not found"},
		{"duplicate", "POST", "/v1/repositories", repoJSON, 409, "already exists"},
		{"unknown field", "POST", "/v1/repositories", `{"name":"x","url":"/a","evil":1}`, 422, ""},
		{"malformed JSON", "POST", "/v1/repositories", `{"name":`, 400, ""},
		{"path trick name", "POST", "/v1/repositories", `{"name":"../etc","url":"/a"}`, 400, ".."},
		{"oversized body", "POST", "/v1/repositories", `{"name":"big","url":"/a","description":"` + strings.Repeat("x", 70<<10) + `"}`, 413, ""},
		{"stale update", "PUT", "/v1/repositories/r", `{"name":"r","url":"/b","version":7}`, 409, "version"},
		{"rename", "PUT", "/v1/repositories/r", `{"name":"q","url":"/b","version":1}`, 400, "renamed"},
		{"bad page token", "GET", "/v1/services?pageToken=garbage", "", 400, "page token"},
		{"bad execution id", "GET", "/v1/executions/..%2F..%2Fetc", "", 400, "execution ID"},
		{"bad status filter", "GET", "/v1/executions?status=weird", "", 422, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, hdr := e.do(t, auth.Admin, tt.method, tt.path, tt.body)
			if st != tt.want {
				t.Fatalf("status %d, want %d: %s", st, tt.want, body)
			}
			if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			var p wire.Problem
			if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != tt.want {
				t.Errorf("problem body %s (err %v)", body, err)
			}
			if !strings.Contains(body, tt.detail) {
				t.Errorf("problem %s lacks %q", body, tt.detail)
			}
		})
	}
	// Nothing above changed the repository.
	_, body, _ := e.do(t, auth.Admin, "GET", "/v1/repositories/r", "")
	if !strings.Contains(body, `"version":1`) || !strings.Contains(body, `"/srv/git/r"`) {
		t.Errorf("repository changed by bad requests: %s", body)
	}
}

func TestStandby(t *testing.T) {
	e := newEnv(t)
	e.leader.active.Store(false)
	st, body, _ := e.do(t, auth.Admin, "GET", "/v1/services", "")
	if st != 503 || !strings.Contains(body, "standby; the active is gw-2 at https://10.0.0.2:8443") {
		t.Errorf("standby API = %d %s", st, body)
	}
	if st, _, _ := e.do(t, "", "GET", "/healthz", ""); st != 200 {
		t.Errorf("standby healthz = %d, want 200", st)
	}
	if st, body, _ := e.do(t, "", "GET", "/readyz", ""); st != 503 || !strings.Contains(body, "gw-2") {
		t.Errorf("standby readyz = %d %s, want 503 naming the active", st, body)
	}
}

func TestSecretsNeverReturned(t *testing.T) {
	e := newEnv(t)
	val := "dG9wLXNlY3JldC12YWx1ZQ==" // base64 of top-secret-value
	if st, body, _ := e.do(t, auth.Admin, "POST", "/v1/secrets", `{"name":"s","value":"`+val+`"}`); st != 201 || strings.Contains(body, val) {
		t.Fatalf("create secret = %d %s", st, body)
	}
	for _, p := range []string{"/v1/secrets", "/v1/secrets/s"} {
		_, body, _ := e.do(t, auth.Viewer, "GET", p, "")
		if strings.Contains(body, val) || strings.Contains(body, "sealed") || strings.Contains(body, "top-secret") {
			t.Errorf("GET %s leaks the secret: %s", p, body)
		}
	}
	got, err := e.cat.SecretValue(t.Context(), "s")
	if err != nil || string(got) != "top-secret-value" {
		t.Errorf("stored secret = %q, %v", got, err)
	}
	// Re-putting the same value is a no-op: no new version.
	_, body, _ := e.do(t, auth.Admin, "PUT", "/v1/secrets/s", `{"name":"s","value":"`+val+`","version":1}`)
	if !strings.Contains(body, `"version":1`) {
		t.Errorf("unchanged secret update bumped the version: %s", body)
	}
}

func TestRunIdempotentAndRedacted(t *testing.T) {
	e := newEnv(t)
	for _, b := range []struct{ path, body string }{
		{"/v1/repositories", repoJSON},
		{"/v1/decorators", `{"name":"d","schema":{"type":"object","properties":{"pw":{"type":"string","writeOnly":true},"host":{"type":"string"}}}}`},
		{"/v1/services", `{"name":"s","type":"executable","repository":"r","filename":"x","decorator":"d"}`},
	} {
		if st, body, _ := e.do(t, auth.Admin, "POST", b.path, b.body); st != 201 {
			t.Fatalf("POST %s = %d %s", b.path, st, body)
		}
	}
	run := `{"async":true,"requestKey":"k1","inputs":{"host":"h","pw":"hunter2-secret"}}`
	st1, body1, _ := e.do(t, auth.Operator, "POST", "/v1/services/s/run", run)
	st2, body2, _ := e.do(t, auth.Operator, "POST", "/v1/services/s/run", run)
	if st1 != 202 || st2 != 202 {
		t.Fatalf("runs = %d %s / %d %s", st1, body1, st2, body2)
	}
	var e1, e2 execution.Execution
	json.Unmarshal([]byte(body1), &e1)
	json.Unmarshal([]byte(body2), &e2)
	if e1.ID == "" || e1.ID != e2.ID {
		t.Errorf("same request key gave executions %q and %q", e1.ID, e2.ID)
	}
	if e.q.Depth() != 1 {
		t.Errorf("queue depth %d, want 1 message for one accepted run", e.q.Depth())
	}
	if strings.Contains(body1, "hunter2") || e1.Inputs["pw"] != execution.Redacted || e1.Inputs["host"] != "h" {
		t.Errorf("recorded inputs %v", e1.Inputs)
	}
	stored, err := e.cat.Execution(t.Context(), e1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored.SealedInputs, []byte("hunter2")) {
		t.Error("sealed inputs hold the plaintext")
	}
	in, err := e.cat.OpenInputs(t.Context(), stored)
	if err != nil || in["pw"] != "hunter2-secret" {
		t.Errorf("OpenInputs = %v, %v", in, err)
	}
	// Cancel a queued execution: terminal at once, a second cancel conflicts.
	if st, body, _ := e.do(t, auth.Operator, "POST", "/v1/executions/"+e1.ID+"/cancel", ""); st != 200 || !strings.Contains(body, `"canceled"`) {
		t.Errorf("cancel = %d %s", st, body)
	}
	if st, _, _ := e.do(t, auth.Operator, "POST", "/v1/executions/"+e1.ID+"/cancel", ""); st != 409 {
		t.Errorf("second cancel = %d, want 409", st)
	}
	if st, body, _ := e.do(t, auth.Viewer, "GET", "/v1/executions?status=canceled", ""); st != 200 || !strings.Contains(body, e1.ID) {
		t.Errorf("list canceled = %d %s", st, body)
	}
}

func TestOpenAPIDocument(t *testing.T) {
	e := newEnv(t)
	_, body, _ := e.do(t, "", "GET", "/v1/openapi.json", "")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	for _, p := range []string{"/v1/services", "/v1/services/{name}/run", "/v1/executions/{id}/cancel", "/v1/login"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("document lacks %s", p)
		}
	}
}

func TestWarmCachesDecorators(t *testing.T) {
	e := newEnv(t)
	for _, b := range []string{
		`{"name":"d1","schema":{"type":"object"}}`,
		`{"name":"d2","schema":{"type":"object","required":["x"]}}`,
	} {
		if st, body, _ := e.do(t, auth.Admin, "POST", "/v1/decorators", b); st != 201 {
			t.Fatalf("create decorator: %d %s", st, body)
		}
	}
	g := &gateway.Gateway{Catalog: e.cat, Queue: e.q, Clock: clock.Real{}, Logger: slog.New(slog.DiscardHandler)}
	n, err := g.Warm(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("Warm = %d, %v; want 2 decorators cached", n, err)
	}
}
