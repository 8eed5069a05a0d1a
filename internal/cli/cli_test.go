package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/resource"
)

func TestParseSets(t *testing.T) {
	tests := []struct {
		name       string
		sets, strs []string
		want       map[string]any
		wantErr    bool
	}{
		{"types", []string{"host=10.0.0.1", "count=3", "on=true", "list=[1,2]", "obj={\"a\":1}", "q=\"7\""}, nil,
			map[string]any{"host": "10.0.0.1", "count": float64(3), "on": true, "list": []any{float64(1), float64(2)},
				"obj": map[string]any{"a": float64(1)}, "q": "7"}, false},
		{"empty value", []string{"x="}, nil, map[string]any{"x": ""}, false},
		{"equals in value", []string{"url=a=b"}, nil, map[string]any{"url": "a=b"}, false},
		{"set-string wins", []string{"n=3"}, []string{"n=3"}, map[string]any{"n": "3"}, false},
		{"no equals", []string{"host"}, nil, nil, true},
		{"empty key", []string{"=v"}, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSets(tt.sets, tt.strs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if err != nil && ExitCode(err) != 2 {
				t.Errorf("exit code %d for a usage error", ExitCode(err))
			}
		})
	}
}

func FuzzParseSets(f *testing.F) {
	for _, s := range []string{"a=1", "b=[", "=x", "c={\"d\":null}", "x=\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSets([]string{s}, nil)
		k, _, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			if err == nil {
				t.Fatalf("accepted %q", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("rejected %q: %v", s, err)
		}
		if _, present := got[k]; !present || len(got) != 1 {
			t.Fatalf("parseSets(%q) = %v", s, got)
		}
	})
}

func TestParseManifests(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		kinds   []resource.Kind
		wantErr string
	}{
		{"stream", "kind: repository\nname: r\nurl: /srv/r\n---\n# comment\nkind: service\nname: s\ntype: executable\nrepository: r\nfilename: a.sh\n",
			[]resource.Kind{resource.KindRepository, resource.KindService}, ""},
		{"secret string value", "kind: secret\nname: s\nstringValue: hunter2\n", []resource.Kind{resource.KindSecret}, ""},
		{"missing kind", "name: x\n", nil, "missing kind"},
		{"unknown kind", "kind: widget\nname: x\n", nil, "kind"},
		{"unknown field", "kind: repository\nname: r\nurl: /a\nbogus: 1\n", nil, "bogus"},
		{"invalid name", "kind: repository\nname: ../r\nurl: /a\n", nil, ".."},
		{"malformed", "kind: [\n", nil, "document 1"},
		{"not a mapping", "- a\n- b\n", nil, "mapping"},
		{"empty", "# nothing\n---\n", nil, "no resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseManifests([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds []resource.Kind
			for _, m := range got {
				kinds = append(kinds, m.Kind)
			}
			if !reflect.DeepEqual(kinds, tt.kinds) {
				t.Errorf("kinds %v, want %v", kinds, tt.kinds)
			}
		})
	}
	got, _ := parseManifests([]byte("kind: secret\nname: s\nstringValue: hunter2\n"))
	if string(got[0].Obj.(*resource.Secret).Value) != "hunter2" {
		t.Error("stringValue not used as the secret value")
	}
}

func FuzzParseManifests(f *testing.F) {
	f.Add("kind: repository\nname: r\nurl: /srv/r\n")
	f.Add("kind: service\nname: s\n---\nkind: secret\nname: x\nvalue: aGk=\n")
	f.Add("---\n---\n")
	f.Fuzz(func(t *testing.T, in string) {
		docs, err := parseManifests([]byte(in))
		if err != nil {
			return
		}
		for _, d := range docs {
			if d.Obj.Validate() != nil {
				t.Fatalf("parseManifests returned an invalid %s", d.Kind)
			}
		}
	})
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("boom"), 1},
		{usageErr{errors.New("x")}, 2},
		{fmt.Errorf("wrapped: %w", &client.Error{Status: http.StatusNotFound}), 3},
		{&client.Error{Status: http.StatusConflict}, 4},
		{&client.Error{Status: http.StatusUnauthorized}, 5},
		{&client.Error{Status: http.StatusForbidden}, 5},
		{&client.Error{Status: http.StatusUnprocessableEntity}, 6},
		{&client.Error{Status: http.StatusRequestEntityTooLarge}, 6},
		{&client.Error{Status: http.StatusServiceUnavailable}, 7},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), 7},
		{exitErr{21, "timed out"}, 21},
		{&client.Error{Status: http.StatusBadRequest}, 6},
		{fmt.Errorf("document 2: %w", resource.ErrInvalid), 6}, // apply's local check: as create's 400
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"get"}, "KIND"},
		{[]string{"get", "widgets"}, "kind"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"run", "service", "perl", "x"}, "service type"},
		{[]string{"create", "secret", "s"}, "exactly one"},
		{[]string{"services"}, "unknown command"},
		{[]string{"get", "services", "-o", "xml"}, "no context"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
			code := a.Main(context.Background(), append(tt.args, "--config", filepath.Join(t.TempDir(), "c.yaml")))
			if code != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d stderr %q; want 2 mentioning %q", code, errb.String(), tt.want)
			}
		})
	}
}

func TestClusterRouting(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/clusters":
			fmt.Fprint(w, `{"items":[{"id":"eu-1","status":"connected","node":"gw-1","epoch":3,"createdAt":"2026-01-01T00:00:00Z"},`+
				`{"id":"us-1","status":"disconnected","createdAt":"2026-01-01T00:00:00Z"}]}`)
		case strings.HasPrefix(r.URL.Path, "/v1/clusters/ghost-1/"):
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"status":404,"detail":"cluster \"ghost-1\" is not registered"}`)
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/services"):
			fmt.Fprint(w, `{"items":[]}`)
		case r.Method == http.MethodGet:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"status":404,"detail":"not found"}`)
		default:
			w.WriteHeader(http.StatusCreated)
			io.Copy(w, r.Body)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("current: manager\ncontexts:\n  manager:\n    server: "+srv.URL+"\n    token: agt_x\n"), 0o600)
	manifest := filepath.Join(dir, "m.yaml")
	os.WriteFile(manifest, []byte("kind: repository\nname: r\nurl: /srv/r\n"), 0o600)
	tests := []struct {
		name      string
		args      []string
		code      int
		wantPaths []string
		wantOut   []string
	}{
		{"routed listing", []string{"get", "services", "--cluster", "eu-1"}, 0,
			[]string{"GET /v1/clusters/eu-1/services"}, nil},
		{"registry, never routed", []string{"get", "clusters", "--cluster", "eu-1"}, 0,
			[]string{"GET /v1/clusters"}, []string{"eu-1", "connected", "gw-1", "us-1", "disconnected"}},
		{"one cluster of the registry", []string{"get", "cluster", "us-1", "-o", "json"}, 0,
			[]string{"GET /v1/clusters"}, []string{`"id": "us-1"`}},
		{"unknown cluster in the registry", []string{"get", "cluster", "nope"}, 3, []string{"GET /v1/clusters"}, nil},
		{"apply to several clusters", []string{"apply", "-f", manifest, "--cluster", "eu-1,ghost-1,us-1"}, 3,
			[]string{"GET /v1/clusters", "GET /v1/clusters/eu-1/repositories/r", "POST /v1/clusters/eu-1/repositories",
				"GET /v1/clusters/us-1/repositories/r", "POST /v1/clusters/us-1/repositories"},
			[]string{"eu-1: repository/r created", "eu-1: applied", "ghost-1: failed: cluster \"ghost-1\" is not registered", "us-1: applied"}},
		{"several clusters elsewhere", []string{"get", "services", "--cluster", "eu-1,us-1"}, 2, nil, nil},
		{"no cluster, no routing", []string{"get", "services"}, 0, []string{"GET /v1/services"}, nil},
		{"logout is never routed", []string{"logout", "--cluster", "eu-1"}, 0, []string{"POST /v1/logout"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			paths = nil
			mu.Unlock()
			var out, errb bytes.Buffer
			a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
			code := a.Main(context.Background(), append(tt.args, "--config", cfg))
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, errb.String())
			}
			mu.Lock()
			got := paths
			mu.Unlock()
			if !reflect.DeepEqual(got, tt.wantPaths) {
				t.Errorf("requests %q, want %q", got, tt.wantPaths)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// fakeServer serves handle; cfg is a CLI config whose current context
// points at it.
func fakeServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) (cfg string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(handle))
	t.Cleanup(srv.Close)
	cfg = filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("current: c\ncontexts:\n  c:\n    server: "+srv.URL+"\n    token: agt_x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestCreateSecretPrintsWarning(t *testing.T) {
	cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"name":"s","version":1,"warning":"secret s: the value is 2 bytes, shorter than 4: it is not redacted from service output"}`)
	})
	var out, errb bytes.Buffer
	a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
	code := a.Main(context.Background(), []string{"create", "secret", "s", "--from-literal", "ab", "--config", cfg})
	if code != 0 || !strings.Contains(errb.String(), "warning: secret s: the value is 2 bytes") || !strings.Contains(out.String(), "secret/s created") {
		t.Errorf("exit %d stdout %q stderr %q; want 0 and the warning on stderr", code, out.String(), errb.String())
	}
}

func TestLoginRefusesClearText(t *testing.T) {
	var logins atomic.Int32
	login := func(w http.ResponseWriter, r *http.Request) {
		logins.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"token":"agt_x","user":"admin","role":"admin","expiresAt":"2030-01-01T00:00:00Z"}`)
	}
	plain := httptest.NewServer(http.HandlerFunc(login))
	defer plain.Close()
	selfSigned := httptest.NewTLSServer(http.HandlerFunc(login))
	defer selfSigned.Close()
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("a long enough password"), 0o600)
	_, port, _ := strings.Cut(strings.TrimPrefix(plain.URL, "http://"), ":")
	tests := []struct {
		name   string
		args   []string
		code   int
		want   string
		logins int32
	}{
		{"http to loopback without the flag", []string{"--server", plain.URL}, 2, "--insecure-http", 0},
		{"http to a remote host", []string{"--server", "http://gateway.example.com:8443", "--insecure-http"}, 2, "in clear", 0},
		{"other scheme", []string{"--server", "ftp://127.0.0.1"}, 2, "https://", 0},
		{"http to loopback with the flag", []string{"--server", plain.URL, "--insecure-http"}, 0, "", 1},
		{"http to localhost with the flag", []string{"--server", "http://localhost:" + port, "--insecure-http"}, 0, "", 1},
		{"self-signed without --ca-file", []string{"--server", selfSigned.URL}, 1, "--ca-file", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logins.Store(0)
			var out, errb bytes.Buffer
			a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
			args := append([]string{"login", "--password-file", pw, "--config", filepath.Join(t.TempDir(), "c.yaml")}, tt.args...)
			code := a.Main(context.Background(), args)
			if code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d stderr %q; want %d mentioning %q", code, errb.String(), tt.code, tt.want)
			}
			if got := logins.Load(); got != tt.logins {
				t.Errorf("%d login requests reached the server, want %d", got, tt.logins)
			}
		})
	}
}

func TestApplyChecksEveryDocumentFirst(t *testing.T) {
	var mu sync.Mutex
	var writes []string
	cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/repositories/existing":
			fmt.Fprint(w, `{"name":"existing","url":"/srv/e","version":1}`)
		case r.Method == http.MethodGet:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"status":404,"detail":"not found"}`)
		default:
			mu.Lock()
			writes = append(writes, r.Method+" "+r.URL.Path)
			mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			io.Copy(w, r.Body)
		}
	})
	repo := "kind: repository\nname: r\nurl: /srv/r\n"
	tests := []struct {
		name      string
		manifest  string
		code      int
		want      []string
		wantWrite bool
	}{
		{"bad names in two documents", repo + "---\nkind: repository\nname: Bad\nurl: /a\n---\nkind: decorator\nname: ../d\nschema: {}\n", 6,
			[]string{"document 2", "document 3"}, false},
		{"missing references", repo + "---\nkind: service\nname: s\ntype: executable\nrepository: nope\nfilename: a.sh\ndecorator: d\n---\nkind: secret\nname: k\n", 6,
			[]string{"document 2 (service/s): repository nope does not exist", "decorator d does not exist", "document 3 (secret/k): no value"}, false},
		{"decorator that does not compile", repo + "---\nkind: decorator\nname: d\nschema: {type: 7}\n", 6, []string{"document 2: decorator d"}, false},
		{"references in the file or on the server", repo + "---\nkind: service\nname: s\ntype: executable\nrepository: r\nfilename: a.sh\n---\n" +
			"kind: service\nname: t\ntype: executable\nrepository: existing\nfilename: a.sh\n", 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			writes = nil
			mu.Unlock()
			f := filepath.Join(t.TempDir(), "m.yaml")
			os.WriteFile(f, []byte(tt.manifest), 0o600)
			var out, errb bytes.Buffer
			a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
			code := a.Main(context.Background(), []string{"apply", "-f", f, "--config", cfg})
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			mu.Lock()
			got := writes
			mu.Unlock()
			if (len(got) > 0) != tt.wantWrite {
				t.Errorf("writes %q; want some: %v", got, tt.wantWrite)
			}
		})
	}
}

func TestEditSecret(t *testing.T) {
	var mu sync.Mutex
	var put string
	conflict := false
	cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			fmt.Fprint(w, `{"name":"s","version":3}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		put = string(b)
		c := conflict
		mu.Unlock()
		if c {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"status":409,"detail":"you edited version 3, the current one is 4"}`)
			return
		}
		w.Write(b)
	})
	editor := filepath.Join(t.TempDir(), "ed.sh")
	os.WriteFile(editor, []byte("#!/bin/sh\necho 'stringValue: new-router-pass' >> \"$1\"\n"), 0o755)
	run := func() (int, string) {
		var out, errb bytes.Buffer
		a := &App{Out: &out, Err: &errb, Getenv: func(k string) string {
			if k == "EDITOR" {
				return editor
			}
			return ""
		}}
		return a.Main(context.Background(), []string{"edit", "secret", "s", "--config", cfg}), errb.String()
	}
	code, stderr := run()
	// base64 of "new-router-pass"
	if code != 0 || !strings.Contains(put, `"value":"bmV3LXJvdXRlci1wYXNz"`) {
		t.Errorf("edit with a new value: exit %d stderr %q, sent %s", code, stderr, put)
	}
	mu.Lock()
	conflict = true
	mu.Unlock()
	code, stderr = run()
	_, path, ok := strings.Cut(stderr, "your edits are kept in ")
	path, _, _ = strings.Cut(path, "\n")
	if code != 4 || !ok {
		t.Fatalf("conflicting edit: exit %d stderr %q; want 4 and where the edits are", code, stderr)
	}
	defer os.Remove(path)
	kept, err := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if err != nil || !strings.Contains(string(kept), "stringValue: new-router-pass") || fi.Mode().Perm() != 0o600 {
		t.Errorf("kept edits %q (%v, mode %v): want the edited YAML, 0600", kept, err, fi.Mode())
	}
}

func TestSecretFileHelpSaysWhere(t *testing.T) {
	var out bytes.Buffer
	a := &App{Out: &out, Err: &out, Getenv: func(string) string { return "" }}
	a.Main(context.Background(), []string{"create", "service", "--help"})
	if !strings.Contains(out.String(), "AUTOGATE_SECRET_FILE_<SECRET>") {
		t.Errorf("create service --help does not say where --secret-file puts the file:\n%s", out.String())
	}
}

// TestRunWaitsOutFullBacklog: the CLI retries a run the server refused
// with 429 (after its Retry-After) and says so on stderr, once a try.
func TestRunWaitsOutFullBacklog(t *testing.T) {
	var runs atomic.Int64
	cfg := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/run") {
			if runs.Add(1) <= 2 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"status":429,"detail":"backlog full: 10 runs accepted and not finished, the limit is 10"}`)
				return
			}
			fmt.Fprint(w, `{"id":"ex-1","service":"s","status":"queued","createdAt":"2026-01-01T00:00:00Z"}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"status":404,"detail":"not found"}`)
	})
	var out, errb bytes.Buffer
	a := &App{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}
	if code := a.Main(context.Background(), []string{"run", "service", "executable", "s", "--async", "--config", cfg}); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, errb.String())
	}
	if n := runs.Load(); n != 3 {
		t.Errorf("%d run requests, want 3", n)
	}
	if got := strings.Count(errb.String(), "server busy (429: backlog full"); got != 2 || !strings.Contains(errb.String(), "retrying in") {
		t.Errorf("stderr %q: want two retry lines naming the full backlog", errb.String())
	}
}
