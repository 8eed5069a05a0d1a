package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/store/bolt"
)

type activeLeader struct{}

func (activeLeader) Active() (bool, lease.Term) { return true, lease.Term{} }

// userServer serves the shared auth routes on a bolt store with one admin,
// "root", whose token it returns.
func userServer(t *testing.T) (url, rootToken string) {
	t.Helper()
	clk := clock.Real{}
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), clk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	au := &auth.Service{Store: st, Cluster: "default", Clock: clk, Params: auth.Params{Time: 1, Memory: 1024, Threads: 1}}
	mux := http.NewServeMux()
	New(mux, Config{Title: "t", Version: "v", Auth: au, Leader: activeLeader{}, Logger: slog.New(slog.DiscardHandler),
		LoginHint: "log in", Realm: "test"})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	if _, err := au.CreateUser(t.Context(), "root", auth.Admin, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := au.Login(t.Context(), "root", "a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, tok
}

func call(t *testing.T, url, token, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, url+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func login(t *testing.T, url, user, pw string) string {
	t.Helper()
	st, body := call(t, url, "", "POST", "/v1/login", `{"username":"`+user+`","password":"`+pw+`"}`)
	var out struct{ Token string }
	if st != 200 || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("login %s = %d %s", user, st, body)
	}
	return out.Token
}

// whoami returns the caller's role, or "" with the status if refused.
func whoami(t *testing.T, url, token string) (string, int) {
	t.Helper()
	st, body := call(t, url, token, "GET", "/v1/whoami", "")
	var out struct{ Role string }
	_ = json.Unmarshal([]byte(body), &out)
	return out.Role, st
}

func TestUserWritesRevokeTokens(t *testing.T) {
	url, root := userServer(t)
	mustCall := func(method, path, body string, want int) {
		t.Helper()
		if st, b := call(t, url, root, method, path, body); st != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, st, b, want)
		}
	}
	mustCall("POST", "/v1/users", `{"name":"rolly","role":"admin","password":"a long enough password"}`, 201)
	old := login(t, url, "rolly", "a long enough password")
	if r, st := whoami(t, url, old); r != "admin" {
		t.Fatalf("rolly's whoami = %q %d", r, st)
	}
	// The case: delete rolly, recreate it as a viewer.
	mustCall("DELETE", "/v1/users/rolly", "", 204)
	mustCall("POST", "/v1/users", `{"name":"rolly","role":"viewer","password":"a long enough password"}`, 201)
	for _, probe := range []struct{ method, path string }{{"GET", "/v1/whoami"}, {"GET", "/v1/users"}} {
		if st, body := call(t, url, old, probe.method, probe.path, ""); st != 401 {
			t.Errorf("the deleted admin's token on %s %s = %d %s, want 401", probe.method, probe.path, st, body)
		}
	}
	viewer := login(t, url, "rolly", "a long enough password")
	mustCall("PATCH", "/v1/users/rolly", `{"role":"operator"}`, 200)
	if r, st := whoami(t, url, viewer); st != 401 {
		t.Errorf("token after a role change: whoami = %q %d, want 401", r, st)
	}
	op := login(t, url, "rolly", "a long enough password")
	if r, _ := whoami(t, url, op); r != "operator" {
		t.Errorf("new login after the role change = %q, want operator", r)
	}
	mustCall("PATCH", "/v1/users/rolly", `{"password":"another long password"}`, 200)
	if r, st := whoami(t, url, op); st != 401 {
		t.Errorf("token after a password change: whoami = %q %d, want 401", r, st)
	}
	login(t, url, "rolly", "another long password")
	mustCall("PATCH", "/v1/users/rolly", `{}`, 400)
	mustCall("PATCH", "/v1/users/rolly", `{"role":"root"}`, 422)
	mustCall("PATCH", "/v1/users/nobody", `{"role":"viewer"}`, 404)
	if r, _ := whoami(t, url, root); r != "admin" {
		t.Errorf("root's own token = %q after changes to another user", r)
	}
}

func TestLastAdminRefused(t *testing.T) {
	url, root := userServer(t)
	for _, req := range []struct{ method, path, body string }{
		{"DELETE", "/v1/users/root", ""},
		{"PATCH", "/v1/users/root", `{"role":"viewer"}`},
	} {
		st, body := call(t, url, root, req.method, req.path, req.body)
		if st != 409 || !strings.Contains(body, "last admin") || !strings.Contains(body, "create or promote another admin") || strings.Contains(body, "version") {
			t.Errorf("%s %s = %d %s, want 409 naming the last admin", req.method, req.path, st, body)
		}
	}
	if r, _ := whoami(t, url, root); r != "admin" {
		t.Errorf("root after the refusals = %q, want admin", r)
	}
	// With a second admin the first may step down.
	if st, b := call(t, url, root, "POST", "/v1/users", `{"name":"second","role":"admin","password":"a long enough password"}`); st != 201 {
		t.Fatalf("create second = %d %s", st, b)
	}
	if st, b := call(t, url, root, "PATCH", "/v1/users/root", `{"role":"viewer"}`); st != 200 {
		t.Errorf("demote one of two admins = %d %s", st, b)
	}
}
