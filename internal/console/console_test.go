package console_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/console"
	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/store/bolt"
)

type activeLeader struct{}

func (activeLeader) Active() (bool, lease.Term) { return true, lease.Term{} }

const password = "a long enough password"

// consoleMux serves the shared API and the console on a bolt store with
// an admin "root" and a viewer "ann".
func consoleMux(tb testing.TB) (*http.ServeMux, *auth.Service) {
	tb.Helper()
	clk := clock.Real{}
	st, err := bolt.Open(filepath.Join(tb.TempDir(), "s.db"), clk)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	au := &auth.Service{Store: st, Cluster: "default", Clock: clk, Params: auth.Params{Time: 1, Memory: 1024, Threads: 1}}
	mux := http.NewServeMux()
	log := slog.New(slog.DiscardHandler)
	a := httpapi.New(mux, httpapi.Config{Title: "t", Version: "v", Auth: au, Leader: activeLeader{}, Logger: log,
		LoginHint: "log in", Realm: "test", Cluster: "c1"})
	console.Mount(mux, console.Config{API: a, Kind: console.Gateway, Cluster: "c1", Logger: log})
	for _, u := range []struct {
		name string
		role auth.Role
	}{{"root", auth.Admin}, {"ann", auth.Viewer}} {
		if _, err := au.CreateUser(context.Background(), u.name, u.role, password); err != nil {
			tb.Fatal(err)
		}
	}
	return mux, au
}

// consoleServer is consoleMux over TLS.
func consoleServer(t *testing.T) (*httptest.Server, *auth.Service) {
	t.Helper()
	mux, au := consoleMux(t)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv, au
}

// browser is a client with a cookie jar, as a browser keeps cookies.
func browser(t *testing.T, srv *httptest.Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: srv.Client().Transport, Jar: jar}
}

func do(t *testing.T, hc *http.Client, method, u string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

func signIn(t *testing.T, srv *httptest.Server, hc *http.Client, user string) (csrf string) {
	t.Helper()
	resp, body := do(t, hc, "POST", srv.URL+"/ui/session", map[string]string{"Content-Type": "application/json"},
		`{"username":"`+user+`","password":"`+password+`"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in %s: %d %s", user, resp.StatusCode, body)
	}
	u, _ := url.Parse(srv.URL)
	for _, c := range hc.Jar.Cookies(u) {
		if c.Name == httpapi.CSRFCookie {
			return c.Value
		}
	}
	t.Fatalf("no %s cookie after sign-in", httpapi.CSRFCookie)
	return ""
}

func TestHeaders(t *testing.T) {
	srv, _ := consoleServer(t)
	for _, path := range []string{"/ui/", "/ui/app.js", "/ui/style.css", "/ui/session", "/ui/nope"} {
		resp, body := do(t, srv.Client(), "GET", srv.URL+path, nil, "")
		if got := resp.Header.Get("Content-Security-Policy"); got != console.CSP {
			t.Errorf("GET %s: CSP %q, want %q", path, got, console.CSP)
		}
		if !strings.Contains(console.CSP, "script-src 'self'") || strings.Contains(console.CSP, "unsafe-inline") ||
			!strings.Contains(console.CSP, "frame-ancestors 'none'") {
			t.Errorf("CSP %q is not strict", console.CSP)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", path, resp.Header)
		}
		if path == "/ui/" && (!strings.Contains(body, `<script type="module" src="app.js">`) || strings.Contains(body, "<script>")) {
			t.Errorf("index: %s", body)
		}
		if path == "/ui/app.js" && !strings.Contains(resp.Header.Get("Content-Type"), "javascript") {
			t.Errorf("app.js Content-Type %q", resp.Header.Get("Content-Type"))
		}
	}
}

func TestSession(t *testing.T) {
	srv, au := consoleServer(t)
	hc := browser(t, srv)

	// A wrong password sets no cookie.
	resp, body := do(t, hc, "POST", srv.URL+"/ui/session", map[string]string{"Content-Type": "application/json"},
		`{"username":"root","password":"wrong wrong wrong"}`)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("bad password: %d %v %s", resp.StatusCode, resp.Cookies(), body)
	}
	// Sign-in from another origin is refused.
	resp, _ = do(t, hc, "POST", srv.URL+"/ui/session", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"},
		`{"username":"root","password":"`+password+`"}`)
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Fatalf("cross-origin sign-in: %d %v", resp.StatusCode, resp.Cookies())
	}

	resp, body = do(t, hc, "POST", srv.URL+"/ui/session", map[string]string{"Content-Type": "application/json"},
		`{"username":"root","password":"`+password+`"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %d %s", resp.StatusCode, body)
	}
	var sess console.Session
	if err := json.Unmarshal([]byte(body), &sess); err != nil || sess.User != "root" || !sess.CanWrite || sess.Kind != console.Gateway {
		t.Fatalf("session %s (%v)", body, err)
	}
	var token, csrf string
	for _, c := range resp.Cookies() {
		switch c.Name {
		case httpapi.SessionCookie:
			token = c.Value
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
				t.Errorf("session cookie flags: %+v", c)
			}
		case httpapi.CSRFCookie:
			csrf = c.Value
			if c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("csrf cookie flags: %+v", c)
			}
		}
	}
	if token == "" || csrf != httpapi.CSRFToken(token) || strings.Contains(body, token) {
		t.Fatalf("cookies: token %q csrf %q; body %s", token, csrf, body)
	}

	// The cookie authenticates reads.
	if resp, body := do(t, hc, "GET", srv.URL+"/v1/whoami", nil, ""); resp.StatusCode != 200 || !strings.Contains(body, `"root"`) {
		t.Fatalf("whoami by cookie: %d %s", resp.StatusCode, body)
	}
	// A state-changing request by cookie needs the CSRF header.
	newUser := `{"name":"bob","role":"viewer","password":"` + password + `"}`
	ct := map[string]string{"Content-Type": "application/json"}
	for _, tt := range []struct {
		name string
		csrf string
	}{{"missing", ""}, {"wrong", httpapi.CSRFToken("agt_other")}} {
		h := map[string]string{"Content-Type": "application/json"}
		if tt.csrf != "" {
			h[httpapi.CSRFHeader] = tt.csrf
		}
		resp, body := do(t, hc, "POST", srv.URL+"/v1/users", h, newUser)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, httpapi.CSRFHeader) {
			t.Errorf("%s CSRF token: %d %s, want 403", tt.name, resp.StatusCode, body)
		}
	}
	if us, _ := au.ListUsers(t.Context()); len(us) != 2 {
		t.Fatalf("refused requests created a user: %v", us)
	}
	ct[httpapi.CSRFHeader] = csrf
	if resp, body := do(t, hc, "POST", srv.URL+"/v1/users", ct, newUser); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create user with CSRF token: %d %s", resp.StatusCode, body)
	}
	// A bearer request is unchanged: no CSRF header needed.
	plain := srv.Client()
	resp, body = do(t, plain, "DELETE", srv.URL+"/v1/users/bob", map[string]string{"Authorization": "Bearer " + token}, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("bearer delete: %d %s", resp.StatusCode, body)
	}

	// Sign-out needs the CSRF token too, then revokes the token.
	if resp, _ := do(t, hc, "POST", srv.URL+"/ui/logout", nil, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", resp.StatusCode)
	}
	if resp, body := do(t, hc, "POST", srv.URL+"/ui/logout", map[string]string{httpapi.CSRFHeader: csrf}, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if _, err := au.Authenticate(t.Context(), token); err == nil {
		t.Fatal("the session's token still authenticates after sign-out")
	}
	if resp, _ := do(t, hc, "GET", srv.URL+"/ui/session", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("session after logout: %d", resp.StatusCode)
	}
}

// TestRevokedSession: the cookie's token follows the token rules: a
// password change revokes it.
func TestRevokedSession(t *testing.T) {
	srv, au := consoleServer(t)
	hc := browser(t, srv)
	signIn(t, srv, hc, "ann")
	if resp, _ := do(t, hc, "GET", srv.URL+"/ui/session", nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("session: %d", resp.StatusCode)
	}
	if _, err := au.UpdateUser(t.Context(), "ann", "", "another long password"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, hc, "GET", srv.URL+"/v1/whoami", nil, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("whoami after a password change: %d, want 401", resp.StatusCode)
	}
}

// TestViewerForbidden: a viewer's cookie with a valid CSRF token is still
// refused a write.
func TestViewerForbidden(t *testing.T) {
	srv, au := consoleServer(t)
	hc := browser(t, srv)
	csrf := signIn(t, srv, hc, "ann")
	resp, body := do(t, hc, "POST", srv.URL+"/v1/users", map[string]string{"Content-Type": "application/json", httpapi.CSRFHeader: csrf},
		`{"name":"bob","role":"admin","password":"`+password+`"}`)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "role viewer") {
		t.Fatalf("viewer create user: %d %s, want 403", resp.StatusCode, body)
	}
	if us, _ := au.ListUsers(t.Context()); len(us) != 2 {
		t.Fatalf("a user was created: %v", us)
	}
}

func TestSignInBadBody(t *testing.T) {
	srv, _ := consoleServer(t)
	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"not JSON", "user=root", http.StatusBadRequest},
		{"unknown field", `{"username":"root","password":"x","extra":1}`, http.StatusBadRequest},
		{"too large", `{"username":"` + strings.Repeat("a", 20<<10) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := do(t, srv.Client(), "POST", srv.URL+"/ui/session", map[string]string{"Content-Type": "application/json"}, tt.body)
			if resp.StatusCode != tt.want || len(resp.Cookies()) != 0 {
				t.Errorf("got %d %v, want %d and no cookie", resp.StatusCode, resp.Cookies(), tt.want)
			}
		})
	}
}

// FuzzSignIn: no body makes the sign-in fail with a 5xx or set a cookie
// without the right password.
func FuzzSignIn(f *testing.F) {
	for _, s := range []string{`{"username":"root","password":"x"}`, `{}`, `[]`, `null`, `{"username":1}`, "\x00", `{"username":"root","password":"x"}{}`} {
		f.Add(s)
	}
	mux, _ := consoleMux(f)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/ui/session", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code >= 500 || len(rec.Result().Cookies()) != 0 {
			t.Errorf("body %q: %d, cookies %v", body, rec.Code, rec.Result().Cookies())
		}
	})
}
