package gitrepo

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/autogate/autogate/internal/logtest"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/resource"
)

// srcRepo is a git repository on disk the tests commit to.
type srcRepo struct {
	t   *testing.T
	dir string
}

func newSrcRepo(t *testing.T) *srcRepo {
	t.Helper()
	r := &srcRepo{t: t, dir: t.TempDir()}
	r.git("init", "--quiet", "-b", "trunk")
	return r
}

// git runs git in the repository, isolated from the host's configuration.
func (r *srcRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = r.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + r.t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (path → content; content "->target" makes a symlink)
// and commits them, returning the new commit's SHA.
func (r *srcRepo) commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		_ = os.Remove(p) // may not exist
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "--quiet", "--allow-empty", "-m", "change")
	return r.git("rev-parse", "HEAD")
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCheckoutReferences(t *testing.T) {
	t.Parallel()
	src := newSrcRepo(t)
	c1 := src.commit(map[string]string{"app.txt": "one", "bin/run.sh": "#!/bin/sh\n"})
	src.git("tag", "v1")
	src.git("tag", "-a", "-m", "annotated", "v1-annotated")
	src.git("checkout", "--quiet", "-b", "feature")
	c2 := src.commit(map[string]string{"app.txt": "two"})
	src.git("checkout", "--quiet", "trunk")

	cache := New(t.TempDir(), nil)
	tests := []struct {
		name, ref, wantCommit, wantContent string
	}{
		{"empty is default branch", "", c1, "one"},
		{"HEAD is default branch", "HEAD", c1, "one"},
		{"branch", "feature", c2, "two"},
		{"lightweight tag", "v1", c1, "one"},
		{"annotated tag", "v1-annotated", c1, "one"},
		{"full commit", c2, c2, "two"},
		{"short commit", c2[:10], c2, "two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, commit, err := cache.Checkout(t.Context(), resource.Repository{URL: src.dir, Reference: tt.ref}, nil)
			if err != nil {
				t.Fatalf("Checkout(%q): %v", tt.ref, err)
			}
			if commit != tt.wantCommit {
				t.Errorf("commit: got %s want %s", commit, tt.wantCommit)
			}
			if got := readFile(t, filepath.Join(dir, "app.txt")); got != tt.wantContent {
				t.Errorf("app.txt: got %q want %q", got, tt.wantContent)
			}
			if filepath.Base(dir) != commit {
				t.Errorf("dir %s: want it named by commit %s", dir, commit)
			}
			if _, err := os.Stat(filepath.Join(dir, ".git")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf(".git in tree: got err %v want not exist", err)
			}
		})
	}
}

func TestCheckoutCacheHitAndMovedBranch(t *testing.T) {
	t.Parallel()
	src := newSrcRepo(t)
	c1 := src.commit(map[string]string{"app.txt": "one"})
	logs := &logtest.Counter{}
	cache := New(t.TempDir(), slog.New(logs))
	repo := resource.Repository{URL: src.dir, Reference: "trunk"}

	dir1, got1, err := cache.Checkout(t.Context(), repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir2, got2, err := cache.Checkout(t.Context(), repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got1 != c1 || got2 != c1 || dir1 != dir2 {
		t.Fatalf("second checkout: got (%s, %s) want (%s, %s)", dir2, got2, dir1, c1)
	}
	if n := logs.Count("git tree exported"); n != 1 {
		t.Errorf("exports after a cache hit: got %d want 1", n)
	}

	c2 := src.commit(map[string]string{"app.txt": "two"})
	dir3, got3, err := cache.Checkout(t.Context(), repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got3 != c2 {
		t.Errorf("after the branch moved: got commit %s want %s", got3, c2)
	}
	if got := readFile(t, filepath.Join(dir3, "app.txt")); got != "two" {
		t.Errorf("after the branch moved: app.txt got %q want %q", got, "two")
	}
	if got := readFile(t, filepath.Join(dir1, "app.txt")); got != "one" {
		t.Errorf("old tree changed: app.txt got %q want %q", got, "one")
	}
	if n := logs.Count("git tree exported"); n != 2 {
		t.Errorf("exports: got %d want 2", n)
	}
}

func TestCheckoutExportsCommitBytesDespiteAttributes(t *testing.T) {
	t.Parallel()
	src := newSrcRepo(t)
	src.commit(map[string]string{
		".gitattributes": "hidden.txt export-ignore\nsubst.txt export-subst\ncrlf.txt text eol=crlf\n",
		"hidden.txt":     "still here",
		"subst.txt":      "$Format:%H$",
		"crlf.txt":       "a\nb\n",
	})
	dir, _, err := New(t.TempDir(), nil).Checkout(t.Context(), resource.Repository{URL: src.dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"hidden.txt": "still here", "subst.txt": "$Format:%H$", "crlf.txt": "a\nb\n"} {
		if got := readFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s: got %q want %q", name, got, want)
		}
	}
}

func TestCheckoutModesAndSymlinks(t *testing.T) {
	t.Parallel()
	src := newSrcRepo(t)
	src.commit(map[string]string{"run.sh": "#!/bin/sh\n", "lib/data.txt": "data", "lib/up": "->../run.sh", "link": "->lib/data.txt", "dirlink": "->lib"})
	src.git("update-index", "--chmod=+x", "run.sh")
	src.git("commit", "--quiet", "-m", "exec")
	dir, _, err := New(t.TempDir(), nil).Checkout(t.Context(), resource.Repository{URL: src.dir}, nil)
	if err != nil {
		t.Fatalf("internal symlinks: got error %v want none", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("run.sh mode: got %v want executable", fi.Mode())
	}
	if got := readFile(t, filepath.Join(dir, "link")); got != "data" {
		t.Errorf("link: got %q want %q", got, "data")
	}
	if got := readFile(t, filepath.Join(dir, "dirlink", "data.txt")); got != "data" {
		t.Errorf("dirlink/data.txt: got %q want %q", got, "data")
	}
}

func TestCheckoutRejectsUnsafeSymlinks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		link  string
	}{
		{"absolute", map[string]string{"passwd": "->/etc/passwd"}, "passwd"},
		{"relative up and out", map[string]string{"deep/er/x": "->../../../x"}, "deep/er/x"},
		{"through an internal link to the root", map[string]string{"self": "->.", "sneaky": "->self/../outside"}, "sneaky"},
		{"through an absolute link", map[string]string{"abs": "->/tmp", "via": "->abs/x"}, "abs"},
		{"loop", map[string]string{"a": "->b", "b": "->a"}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := newSrcRepo(t)
			src.commit(tt.files)
			cacheDir := t.TempDir()
			_, _, err := New(cacheDir, nil).Checkout(t.Context(), resource.Repository{URL: src.dir}, nil)
			if !errors.Is(err, ErrUnsafeTree) {
				t.Fatalf("got error %v want ErrUnsafeTree", err)
			}
			if !strings.Contains(err.Error(), "symlink ") {
				t.Errorf("error %q: want it to name the symlink", err)
			}
			trees, err := filepath.Glob(filepath.Join(cacheDir, "trees", "*", "*"))
			if err != nil {
				t.Fatal(err)
			}
			if len(trees) != 0 {
				t.Errorf("trees left after rejection: got %v want none", trees)
			}
		})
	}
}

func TestLinkEscapes(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"self": ".", "ab": "a/b", "abs": "/etc"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, rel, target string
		escapes           bool
	}{
		{"sibling", "a/l", "../c", false},
		{"to root", "a/b/l", "../..", false},
		{"one too many", "a/b/l", "../../..", true},
		{"dangling inside", "l", "nope/x", false},
		{"dangling then out", "l", "nope/../../x", true},
		{"via self", "l", "self/../x", true},
		{"via deeper link", "l", "ab/../../x", false},
		{"via deeper link out", "l", "ab/../../../x", true},
		{"absolute", "l", "/etc", true},
		{"via absolute", "l", "abs/passwd", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := linkEscapes(root, tt.rel, tt.target)
			if got := why != ""; got != tt.escapes {
				t.Errorf("linkEscapes(%s -> %s): got escapes=%v (%q) want %v", tt.rel, tt.target, got, why, tt.escapes)
			}
		})
	}
}

func TestCheckoutErrors(t *testing.T) {
	t.Parallel()
	src := newSrcRepo(t)
	src.commit(map[string]string{"a": "a"})
	plain := t.TempDir()
	cache := New(t.TempDir(), nil)
	tests := []struct {
		name    string
		repo    resource.Repository
		wantIs  error
		wantMsg string
	}{
		{"unknown branch", resource.Repository{URL: src.dir, Reference: "nope"}, ErrUnknownReference, `"nope"`},
		{"unknown commit", resource.Repository{URL: src.dir, Reference: strings.Repeat("ab", 20)}, ErrUnknownReference, strings.Repeat("ab", 20)},
		{"reference is an option", resource.Repository{URL: src.dir, Reference: "--upload-pack=touch /tmp/pwned"}, resource.ErrInvalid, "must not start with '-'"},
		{"url is an option", resource.Repository{URL: "--upload-pack=touch /tmp/pwned"}, resource.ErrInvalid, "starts with '-'"},
		{"ext transport", resource.Repository{URL: "ext::sh -c touch% /tmp/pwned"}, resource.ErrInvalid, "scheme"},
		{"plain directory", resource.Repository{URL: plain}, nil, "not appear to be a git repository"},
		{"missing directory", resource.Repository{URL: filepath.Join(plain, "missing")}, os.ErrNotExist, "missing"},
		{"credential over http", resource.Repository{URL: "http://127.0.0.1:1/r.git"}, resource.ErrInvalid, "only sent over https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cred []byte
			if strings.HasPrefix(tt.repo.URL, "http:") {
				cred = []byte("tok")
			}
			_, _, err := cache.Checkout(t.Context(), tt.repo, cred)
			if err == nil {
				t.Fatal("got no error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("got error %v want one wrapping %v", err, tt.wantIs)
			}
			if tt.wantIs == nil && (errors.Is(err, ErrUnknownReference) || errors.Is(err, ErrUnsafeTree)) {
				t.Errorf("got error %v want a git error, not a sentinel", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got error %q want it to contain %q", err, tt.wantMsg)
			}
		})
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Error("/tmp/pwned exists: argument injection reached git")
	}
}

func TestCheckoutConcurrent(t *testing.T) {
	t.Parallel()
	src := newSrcRepo(t)
	want := src.commit(map[string]string{"app.txt": "one", "lib/x.txt": "x"})
	dir := t.TempDir()
	logs := &logtest.Counter{}
	// Two caches on one directory stand in for two processes: only the
	// flock keeps them apart.
	caches := []*Cache{New(dir, slog.New(logs)), New(dir, slog.New(logs))}
	type result struct {
		dir, commit string
		err         error
	}
	results := make([]result, 8)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			d, c, err := caches[i%2].Checkout(t.Context(), resource.Repository{URL: src.dir, Reference: "trunk"}, nil)
			results[i] = result{d, c, err}
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Errorf("goroutine %d: %v", i, r.err)
			continue
		}
		if r.commit != want || r.dir != results[0].dir {
			t.Errorf("goroutine %d: got (%s, %s) want (%s, %s)", i, r.dir, r.commit, results[0].dir, want)
		}
	}
	if n := logs.Count("git tree exported"); n != 1 {
		t.Errorf("exports: got %d want 1", n)
	}
	if got := readFile(t, filepath.Join(results[0].dir, "lib", "x.txt")); got != "x" {
		t.Errorf("lib/x.txt: got %q want %q", got, "x")
	}
}

// TestCheckoutCredentialNeverLeaks checks the credential reaches an HTTPS
// server as Basic auth and appears in no error, for a refusing server and
// for a closed port.
func TestCheckoutCredentialNeverLeaks(t *testing.T) {
	t.Parallel()
	const cred = "s3cr3t-t0ken-value"
	var (
		mu        sync.Mutex
		gotHeader string
	)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotHeader = r.Header.Get("Authorization")
		mu.Unlock()
		// Echo it back, in case git ever prints response bodies.
		http.Error(w, "denied "+r.Header.Get("Authorization"), http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	// git trusts the test server through the cache's own HOME.
	caPath := filepath.Join(dir, "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caPath, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "cache", "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cache", "home", ".gitconfig"), []byte("[http]\n\tsslCAInfo = "+caPath+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cache := New(filepath.Join(dir, "cache"), nil)

	token := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + cred))
	tests := []struct {
		name, url string
	}{
		{"refusing server", srv.URL + "/org/repo.git"},
		{"closed port", "https://" + closed + "/org/repo.git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := cache.Checkout(t.Context(), resource.Repository{URL: tt.url, Reference: "main"}, []byte(cred))
			if err == nil {
				t.Fatal("got no error")
			}
			t.Logf("error: %v", err)
			for _, s := range []string{cred, token} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains the credential (%q)", err, s)
				}
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "Basic " + token; gotHeader != want {
		t.Errorf("Authorization at the server: got %q want %q", gotHeader, want)
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	g := &git{src: source{url: "https://bob:pw-in-url@example.com/r.git", user: "bob", cred: []byte("tok-123")}}
	in := fmt.Sprintf("fatal: header %s; token %s; raw %s; url pw pw-in-url", g.authHeader(), g.basicToken(), "tok-123")
	got := g.scrub(in)
	for _, s := range []string{"tok-123", g.basicToken(), "pw-in-url"} {
		if strings.Contains(got, s) {
			t.Errorf("scrub: got %q, still containing %q", got, s)
		}
	}
	if strings.Contains(strings.Join(g.env(), "\n"), "tok-123") {
		t.Error("env carries the raw credential; want only its Basic-auth encoding")
	}
}

func TestCheckoutRefreshWindow(t *testing.T) {
	t.Parallel()
	src := newSrcRepo(t)
	c1 := src.commit(map[string]string{"app.txt": "one"})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cache := New(t.TempDir(), nil)
	cache.Refresh = 5 * time.Second
	cache.Now = func() time.Time { return now }
	repo := resource.Repository{URL: src.dir, Reference: "trunk"}
	checkout := func() string {
		t.Helper()
		_, commit, err := cache.Checkout(t.Context(), repo, nil)
		if err != nil {
			t.Fatal(err)
		}
		return commit
	}
	if got := checkout(); got != c1 {
		t.Fatalf("first checkout %s, want %s", got, c1)
	}
	c2 := src.commit(map[string]string{"app.txt": "two"})
	now = now.Add(4 * time.Second)
	if got := checkout(); got != c1 {
		t.Errorf("within the refresh window: got %s, want the remembered %s", got, c1)
	}
	now = now.Add(2 * time.Second)
	if got := checkout(); got != c2 {
		t.Errorf("after the refresh window: got %s, want the moved branch's %s", got, c2)
	}
}
