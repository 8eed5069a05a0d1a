package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/decorator"
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
	return newEnvWith(t, func(*gateway.Gateway) {})
}

// newEnvWith is newEnv with the gateway adjusted by set before it serves.
func newEnvWith(t *testing.T, set func(*gateway.Gateway)) *env {
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
	gw := &gateway.Gateway{Catalog: cat, Queue: q, Clock: clk, Logger: log, Node: "gw-1"}
	set(gw)
	s := &Server{Gateway: gw,
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
	if strings.Contains(body, "sealedInputs") {
		t.Error("the document shows the stored record's sealedInputs: the wire view must not carry them")
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	for _, p := range []string{"/v1/services", "/v1/services/{name}/run", "/v1/executions/{id}/cancel", "/v1/login"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("document lacks %s", p)
		}
	}
	// Every list operation documents its paging.
	for _, p := range []string{"/v1/services", "/v1/executions", "/v1/users", "/v1/nodes", "/v1/secrets"} {
		raw, _ := json.Marshal(doc.Paths[p]["get"])
		for _, want := range []string{`"name":"limit"`, `"name":"pageToken"`, "nextPageToken"} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("GET %s does not document %s", p, want)
			}
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

func TestDeleteInUse(t *testing.T) {
	e := newEnv(t)
	for _, b := range []struct{ path, body string }{
		{"/v1/secrets", `{"name":"tok","value":"dG9rZW4tdmFsdWU="}`},
		{"/v1/secrets", `{"name":"cred","value":"Y3JlZC12YWx1ZQ=="}`},
		{"/v1/repositories", `{"name":"r","url":"/srv/git/r","credentialSecret":"cred"}`},
		{"/v1/decorators", `{"name":"d","schema":{"type":"object"}}`},
		{"/v1/services", `{"name":"s1","type":"executable","repository":"r","filename":"x","decorator":"d","secrets":[{"secret":"tok","env":"TOK"}]}`},
		{"/v1/services", `{"name":"s2","type":"executable","repository":"r","filename":"y"}`},
	} {
		if st, body, _ := e.do(t, auth.Admin, "POST", b.path, b.body); st != 201 {
			t.Fatalf("POST %s = %d %s", b.path, st, body)
		}
	}
	tests := []struct {
		path  string
		names []string
	}{
		{"/v1/repositories/r", []string{"service/s1", "service/s2"}},
		{"/v1/decorators/d", []string{"service/s1"}},
		{"/v1/secrets/tok", []string{"service/s1"}},
		{"/v1/secrets/cred", []string{"repository/r"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			st, body, _ := e.do(t, auth.Admin, "DELETE", tt.path, "")
			if st != http.StatusConflict {
				t.Fatalf("DELETE %s = %d %s, want 409", tt.path, st, body)
			}
			for _, n := range tt.names {
				if !strings.Contains(body, n) {
					t.Errorf("409 %s does not name %s", body, n)
				}
			}
			if st, body, _ := e.do(t, auth.Viewer, "GET", tt.path, ""); st != 200 || !strings.Contains(body, `"version":1`) {
				t.Errorf("after a refused delete GET %s = %d %s, want it unchanged", tt.path, st, body)
			}
		})
	}
	// Once nothing uses them, they go.
	for _, p := range []string{"/v1/services/s1", "/v1/services/s2", "/v1/decorators/d", "/v1/secrets/tok", "/v1/repositories/r", "/v1/secrets/cred"} {
		if st, body, _ := e.do(t, auth.Admin, "DELETE", p, ""); st != http.StatusNoContent {
			t.Errorf("DELETE %s = %d %s, want 204", p, st, body)
		}
	}
}

func TestMaxServiceTimeout(t *testing.T) {
	e := newEnvWith(t, func(g *gateway.Gateway) { g.MaxServiceTimeout = 15 * time.Minute })
	if st, body, _ := e.do(t, auth.Admin, "POST", "/v1/repositories", repoJSON); st != 201 {
		t.Fatalf("create repository: %d %s", st, body)
	}
	tests := []struct {
		name, body string
		want       int
	}{
		{"over the limit", `{"name":"long","type":"executable","repository":"r","filename":"x","timeoutSeconds":3600}`, 422},
		{"at the limit", `{"name":"ok","type":"executable","repository":"r","filename":"x","timeoutSeconds":900}`, 201},
		{"default timeout", `{"name":"dflt","type":"executable","repository":"r","filename":"x"}`, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, _ := e.do(t, auth.Admin, "POST", "/v1/services", tt.body)
			if st != tt.want {
				t.Fatalf("create = %d %s, want %d", st, body, tt.want)
			}
			if st == 422 && !strings.Contains(body, "15m0s") {
				t.Errorf("422 %s does not name the limit", body)
			}
		})
	}
	if st, body, _ := e.do(t, auth.Admin, "PUT", "/v1/services/ok", `{"type":"executable","repository":"r","filename":"x","timeoutSeconds":901,"version":1}`); st != 422 {
		t.Errorf("update over the limit = %d %s, want 422", st, body)
	}
	if st, _, _ := e.do(t, auth.Viewer, "GET", "/v1/services/long", ""); st != 404 {
		t.Errorf("the refused service exists: GET = %d", st)
	}
}

func TestPaging(t *testing.T) {
	e := newEnv(t)
	for _, b := range []struct{ path, body string }{
		{"/v1/repositories", repoJSON},
		{"/v1/services", `{"name":"s","type":"executable","repository":"r","filename":"x"}`},
		{"/v1/services", `{"name":"t","type":"executable","repository":"r","filename":"x"}`},
	} {
		if st, body, _ := e.do(t, auth.Admin, "POST", b.path, b.body); st != 201 {
			t.Fatalf("POST %s = %d %s", b.path, st, body)
		}
	}
	const n = 109
	for i := range n {
		svc := "s"
		if i%3 == 0 {
			svc = "t"
		}
		if st, body, _ := e.do(t, auth.Operator, "POST", "/v1/services/"+svc+"/run", `{"async":true}`); st != 202 {
			t.Fatalf("run %d = %d %s", i, st, body)
		}
	}
	walk := func(t *testing.T, path string, limit int) (ids []string, pages int) {
		t.Helper()
		tok := ""
		for {
			q := fmt.Sprintf("%s?limit=%d", path, limit)
			if strings.Contains(path, "?") {
				q = fmt.Sprintf("%s&limit=%d", path, limit)
			}
			if tok != "" {
				q += "&pageToken=" + url.QueryEscape(tok)
			}
			st, body, _ := e.do(t, auth.Viewer, "GET", q, "")
			if st != 200 {
				t.Fatalf("GET %s = %d %s", q, st, body)
			}
			var page struct {
				Items []struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"items"`
				NextPageToken string `json:"nextPageToken"`
			}
			if err := json.Unmarshal([]byte(body), &page); err != nil {
				t.Fatal(err)
			}
			if len(page.Items) > limit {
				t.Fatalf("GET %s: %d items, over the limit %d", q, len(page.Items), limit)
			}
			for _, it := range page.Items {
				ids = append(ids, it.ID+it.Name)
			}
			pages++
			if page.NextPageToken == "" {
				return ids, pages
			}
			if page.NextPageToken == tok {
				t.Fatalf("GET %s: the token did not move", q)
			}
			if pages > 2*n {
				t.Fatal("paging never ends")
			}
			tok = page.NextPageToken
		}
	}
	distinct := func(ids []string) int {
		seen := map[string]bool{}
		for _, id := range ids {
			seen[id] = true
		}
		return len(seen)
	}
	tests := []struct {
		name  string
		path  string
		limit int
		want  int
	}{
		{"executions by 2", "/v1/executions", 2, n},
		{"executions by 50", "/v1/executions", 50, n},
		{"filtered by service", "/v1/executions?service=t", 7, 37},
		{"services by 1", "/v1/services", 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids, pages := walk(t, tt.path, tt.limit)
			if len(ids) != tt.want || distinct(ids) != tt.want {
				t.Errorf("%s by %d: %d items, %d distinct, want %d", tt.path, tt.limit, len(ids), distinct(ids), tt.want)
			}
			if min := (tt.want + tt.limit - 1) / tt.limit; pages < min {
				t.Errorf("%d pages, want at least %d", pages, min)
			}
		})
	}
}

func TestRequestKeyBinding(t *testing.T) {
	e := newEnv(t)
	for _, b := range []struct{ path, body string }{
		{"/v1/repositories", repoJSON},
		{"/v1/decorators", `{"name":"d","schema":{"type":"object","properties":{"pw":{"type":"string","writeOnly":true},"host":{"type":"string"}}}}`},
		{"/v1/services", `{"name":"noop","type":"executable","repository":"r","filename":"x","decorator":"d"}`},
		{"/v1/services", `{"name":"sleeper","type":"executable","repository":"r","filename":"y","decorator":"d"}`},
	} {
		if st, body, _ := e.do(t, auth.Admin, "POST", b.path, b.body); st != 201 {
			t.Fatalf("POST %s = %d %s", b.path, st, body)
		}
	}
	st, body, _ := e.do(t, auth.Operator, "POST", "/v1/services/noop/run", `{"async":true,"requestKey":"k1","inputs":{"host":"h","pw":"first-secret"}}`)
	if st != 202 {
		t.Fatalf("first run = %d %s", st, body)
	}
	var first struct {
		ID string `json:"id"`
	}
	json.Unmarshal([]byte(body), &first)
	tests := []struct {
		name, path, body string
		want             int
	}{
		{"another service", "/v1/services/sleeper/run", `{"async":true,"requestKey":"k1","inputs":{"host":"h","pw":"first-secret"}}`, 409},
		{"other inputs", "/v1/services/noop/run", `{"async":true,"requestKey":"k1","inputs":{"host":"h2","pw":"first-secret"}}`, 409},
		{"another sensitive value", "/v1/services/noop/run", `{"async":true,"requestKey":"k1","inputs":{"host":"h","pw":"other-secret"}}`, 409},
		{"the same request", "/v1/services/noop/run", `{"async":true,"requestKey":"k1","inputs":{"pw":"first-secret","host":"h"}}`, 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, _ := e.do(t, auth.Operator, "POST", tt.path, tt.body)
			if st != tt.want {
				t.Fatalf("reuse = %d %s, want %d", st, body, tt.want)
			}
			if !strings.Contains(body, first.ID) {
				t.Errorf("answer %s does not name the first execution %s", body, first.ID)
			}
			if strings.Contains(body, "secret\"") || strings.Contains(body, "first-secret") || strings.Contains(body, "other-secret") {
				t.Errorf("answer %s shows a sensitive value", body)
			}
		})
	}
	if d := e.q.Depth(); d != 1 {
		t.Errorf("queue depth %d, want 1: refused reuses dispatch nothing", d)
	}
}

func TestProblemsHideValues(t *testing.T) {
	e := newEnv(t)
	for _, b := range []struct{ path, body string }{
		{"/v1/repositories", repoJSON},
		{"/v1/decorators", `{"name":"d","schema":{"type":"object","properties":{"pw":{"type":"string","writeOnly":true,"pattern":"^x+$","minLength":3},"n":{"type":"integer"}}}}`},
		{"/v1/services", `{"name":"s","type":"executable","repository":"r","filename":"x","decorator":"d"}`},
	} {
		if st, body, _ := e.do(t, auth.Admin, "POST", b.path, b.body); st != 201 {
			t.Fatalf("POST %s = %d %s", b.path, st, body)
		}
	}
	const leak = "hunter2-leak"
	tests := []struct {
		name, role, method, path, body string
	}{
		{"secret with an unknown field", "admin", "POST", "/v1/secrets", `{"name":"s1","value":"aHVudGVyMi1sZWFr","evil":"` + leak + `"}`},
		{"secret value not base64", "admin", "POST", "/v1/secrets", `{"name":"s2","value":"` + leak + `!!"}`},
		{"secret update with an unknown field", "admin", "PUT", "/v1/secrets/s1", `{"value":"aHVudGVyMi1sZWFr","version":1,"x":"` + leak + `"}`},
		{"sensitive input against its pattern", "operator", "POST", "/v1/services/s/run", `{"async":true,"inputs":{"pw":"` + leak + `"}}`},
		{"run body with an unknown field", "operator", "POST", "/v1/services/s/run", `{"async":true,"inputs":{"pw":"` + leak + `"},"oops":1}`},
		{"run with a bad type field", "operator", "POST", "/v1/services/s/run", `{"async":"` + leak + `","inputs":{"pw":"` + leak + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, _ := e.do(t, auth.Role(tt.role), tt.method, tt.path, tt.body)
			if st < 400 || st >= 500 {
				t.Fatalf("%s %s = %d %s, want a 4xx", tt.method, tt.path, st, body)
			}
			if strings.Contains(body, leak) || strings.Contains(body, "aHVudGVyMi1sZWFr") {
				t.Errorf("problem document echoes a request value: %s", body)
			}
		})
	}
}

func TestSecretValueRules(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, body  string
		want        int
		wantWarning bool
	}{
		{"empty value", `{"name":"e1","value":""}`, 422, false},
		{"no value", `{"name":"e2"}`, 422, false},
		{"too short to redact", `{"name":"short","value":"YWI="}`, 201, true}, // "ab"
		{"long enough", `{"name":"long","value":"YWJjZA=="}`, 201, false},     // "abcd"
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, _ := e.do(t, auth.Admin, "POST", "/v1/secrets", tt.body)
			if st != tt.want {
				t.Fatalf("create = %d %s, want %d", st, body, tt.want)
			}
			if got := strings.Contains(body, "not redacted"); got != tt.wantWarning {
				t.Errorf("create answer %s: warning %v, want %v", body, got, tt.wantWarning)
			}
		})
	}
	for _, name := range []string{"e1", "e2"} {
		if st, _, _ := e.do(t, auth.Admin, "GET", "/v1/secrets/"+name, ""); st != 404 {
			t.Errorf("refused secret %s: GET = %d, want 404 (nothing recorded)", name, st)
		}
	}
	if st, body, _ := e.do(t, auth.Admin, "PUT", "/v1/secrets/long", `{"name":"long","value":"","version":1}`); st != 422 {
		t.Errorf("update to an empty value = %d %s, want 422", st, body)
	}
	if st, body, _ := e.do(t, auth.Admin, "GET", "/v1/secrets/short", ""); st != 200 || strings.Contains(body, "warning") {
		t.Errorf("GET short = %d %s: the warning is not stored", st, body)
	}
}

func TestRunRejectsBadInputsBeforeRecording(t *testing.T) {
	e := newEnv(t)
	for _, b := range []struct{ path, body string }{
		{"/v1/repositories", repoJSON},
		{"/v1/services", `{"name":"s","type":"executable","repository":"r","filename":"x"}`},
	} {
		if st, body, _ := e.do(t, auth.Admin, "POST", b.path, b.body); st != 201 {
			t.Fatalf("POST %s = %d %s", b.path, st, body)
		}
	}
	tests := []struct{ name, inputs, detail string }{
		{"empty key", `{"":"v"}`, `input key \"\"`},
		{"equals in key", `{"x=y":"v"}`, `input key \"x=y\"`},
		{"NUL in a value", `{"host":"a\u0000b"}`, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, _ := e.do(t, auth.Operator, "POST", "/v1/services/s/run", `{"async":true,"inputs":`+tt.inputs+`}`)
			if st != 422 || !strings.Contains(body, tt.detail) {
				t.Errorf("run = %d %s, want 422 mentioning %s", st, body, tt.detail)
			}
		})
	}
	if _, body, _ := e.do(t, auth.Viewer, "GET", "/v1/executions", ""); !strings.Contains(body, `"items":[]`) || e.q.Depth() != 0 {
		t.Errorf("after refused runs: executions %s, queue depth %d; want none", body, e.q.Depth())
	}
}

func TestProblemMessagesReadable(t *testing.T) {
	e := newEnv(t)
	if st, body, _ := e.do(t, auth.Admin, "POST", "/v1/repositories", repoJSON); st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	const id = "01M8T0Q3RX1QEKM21BT0ET22NX"
	st, body, _ := e.do(t, auth.Admin, "GET", "/v1/executions/"+id, "")
	if st != 404 || !strings.Contains(body, "execution "+id+": not found") || strings.Contains(body, "default/execution") {
		t.Errorf("unknown execution = %d %s; want 404 naming the ID, not the store key", st, body)
	}
	st, body, _ = e.do(t, auth.Admin, "PUT", "/v1/repositories/r", `{"name":"q","url":"/b","version":1}`)
	var p wire.Problem
	_ = json.Unmarshal([]byte(body), &p)
	if st != 400 || p.Detail != "invalid: the name in the body differs from the one in the path; resources cannot be renamed" {
		t.Errorf("rename = %d %q", st, p.Detail)
	}
}

// TestBacklogFull429: beyond the backlog limit a submission gets 429 with
// Retry-After and a readable reason, and records nothing: no execution, no
// message, no request key (the same key is free once there is room).
func TestBacklogFull429(t *testing.T) {
	var q *queue.Local
	e := newEnvWith(t, func(g *gateway.Gateway) {
		q = g.Queue.(*queue.Local)
		g.MaxBacklog, g.Backlog = 2, gateway.QueueBacklog{Queue: q}
	})
	for _, b := range []struct{ path, body string }{
		{"/v1/repositories", repoJSON},
		{"/v1/services", `{"name":"s","type":"executable","repository":"r","filename":"x"}`},
	} {
		if st, body, _ := e.do(t, auth.Admin, "POST", b.path, b.body); st != 201 {
			t.Fatalf("POST %s = %d %s", b.path, st, body)
		}
	}
	for range 2 {
		if st, body, _ := e.do(t, auth.Operator, "POST", "/v1/services/s/run", `{"async":true}`); st >= 300 {
			t.Fatalf("run under the limit = %d %s", st, body)
		}
	}
	st, body, h := e.do(t, auth.Operator, "POST", "/v1/services/s/run", `{"async":true,"requestKey":"k"}`)
	if st != 429 || h.Get("Retry-After") != "1" || !strings.Contains(body, "backlog full") {
		t.Fatalf("run over the limit = %d (Retry-After %q) %s; want 429, Retry-After 1, a reason", st, h.Get("Retry-After"), body)
	}
	_, list, _ := e.do(t, auth.Viewer, "GET", "/v1/executions", "")
	if n := strings.Count(list, `"id":`); n != 2 || q.Depth() != 2 {
		t.Fatalf("after the refusal: %d executions, queue depth %d; want 2 and 2", n, q.Depth())
	}
	if _, err := q.Receive(t.Context(), 1, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st, body, _ = e.do(t, auth.Operator, "POST", "/v1/services/s/run", `{"async":true,"requestKey":"k"}`)
	if st >= 300 {
		t.Fatalf("run with the refused key once there is room = %d %s", st, body)
	}
	var ex wire.Execution
	if err := json.Unmarshal([]byte(body), &ex); err != nil || ex.ID == "" || strings.Contains(list, ex.ID) {
		t.Fatalf("run with the refused key = %s (%v): want a new execution", body, err)
	}
}

// TestRunInputErrorsPerField: a run whose inputs break the decorator's
// schema gets a 422 whose errors name each failing input by location, as
// huma names the body's own fields, so a form can show each by its field.
func TestRunInputErrorsPerField(t *testing.T) {
	e := newEnv(t)
	for _, b := range []struct{ path, body string }{
		{"/v1/repositories", repoJSON},
		{"/v1/decorators", `{"name":"d","schema":{"type":"object","required":["host"],"properties":{"host":{"type":"string"},` +
			`"count":{"type":"integer","minimum":1},"pw":{"type":"string","writeOnly":true,"minLength":8},"tags":{"type":"array","items":{"type":"string"}}}}}`},
		{"/v1/services", `{"name":"s","type":"executable","repository":"r","filename":"x","decorator":"d"}`},
	} {
		if st, body, _ := e.do(t, auth.Admin, "POST", b.path, b.body); st != 201 {
			t.Fatalf("POST %s = %d %s", b.path, st, body)
		}
	}
	st, body, _ := e.do(t, auth.Operator, "POST", "/v1/services/s/run", `{"async":true,"inputs":{"count":0,"pw":"short","tags":["a",5]}}`)
	if st != 422 {
		t.Fatalf("run = %d %s, want 422", st, body)
	}
	var p wire.Problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	if p.Detail != decorator.ErrInputs.Error() {
		t.Errorf("detail %q, want %q (the violations are in errors[])", p.Detail, decorator.ErrInputs.Error())
	}
	got := map[string]string{}
	for _, d := range p.Errors {
		got[d.Location] = d.Message
	}
	for _, loc := range []string{"body.inputs", "body.inputs.count", "body.inputs.pw", "body.inputs.tags[1]"} {
		if _, ok := got[loc]; !ok {
			t.Errorf("no error at %s; got %v", loc, got)
		}
	}
	if strings.Contains(got["body.inputs.pw"], "short") {
		t.Errorf("the sensitive input's error quotes it: %q", got["body.inputs.pw"])
	}
	if !strings.Contains(got["body.inputs"], "host") {
		t.Errorf("the missing required input is not named: %q", got["body.inputs"])
	}
}
