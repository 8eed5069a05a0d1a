package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/proctest"
)

// The end-to-end tests build the real binary, start `autogate server` on a
// free port with a temp data dir, and drive it only through the CLI.

var binPath string

// plainBin is the binary built without -race, for the load test and the
// benchmarks whose figures must not carry the race detector's cost; built
// on first use.
var plainBin struct {
	once sync.Once
	path string
	err  error
}

// usePlainBinary makes this test or benchmark start the binary built
// without -race (tests of this package never run in parallel).
func usePlainBinary(tb testing.TB) {
	tb.Helper()
	plainBin.once.Do(func() {
		plainBin.path = filepath.Join(filepath.Dir(binPath), "autogate-plain")
		plainBin.err = proctest.Build(plainBin.path, ".", false)
	})
	if plainBin.err != nil {
		tb.Fatalf("build autogate without -race: %v", plainBin.err)
	}
	race := binPath
	binPath = plainBin.path
	tb.Cleanup(func() { binPath = race })
}

func TestMain(m *testing.M) {
	// bench_test.go runs serve in-process: this test binary is then the
	// services' shim, as the real binary is.
	if code, ok := executor.RunShim(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(proctest.Main(m, func() {
		emulator.Stop()
		if benchShimPath != "" {
			os.RemoveAll(filepath.Dir(benchShimPath))
		}
	},
		proctest.Binary{Name: "autogate", Pkg: ".", Race: true, Path: &binPath},
		// The services' shim next to it, as make build and the image install it.
		proctest.Binary{Name: executor.ShimBinary, Pkg: "../autogate-shim"}))
}

// server is a running `autogate server` (or manager, or runner) process;
// proctest.Proc starts it, keeps its output and stops it at cleanup.
type server struct {
	*proctest.Proc
	t       testing.TB // the test that started it
	dataDir string
	wheels  string
	url     string
}

func startServer(t testing.TB, dataDir, wheels string, extra ...string) *server {
	t.Helper()
	return startServerEnv(t, dataDir, wheels, []string{"AUTOGATE_SECRET_KEY="}, extra...) // the key comes from the data dir
}

func startServerEnv(t testing.TB, dataDir, wheels string, env []string, extra ...string) *server {
	t.Helper()
	logPath := filepath.Join(filepath.Dir(dataDir), fmt.Sprintf("server-%d.log", time.Now().UnixNano()))
	args := append([]string{"server", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--log-level", "debug",
		"--pip-no-index", "--pip-find-links", wheels, "--shutdown-grace", "5s"}, extra...)
	s := &server{Proc: proctest.Start(t, logPath, append(os.Environ(), env...), binPath, args...), t: t, dataDir: dataDir, wheels: wheels}
	s.url = serverURL(s.waitLine("listening on"))
	return s
}

// serverURL is the first URL on a "listening on" line.
func serverURL(line string) string { return regexp.MustCompile(`https?://[0-9.:]+`).FindString(line) }

// waitLine waits for a stdout line containing want (proctest.Proc.WaitLine).
func (s *server) waitLine(want string) string {
	s.t.Helper()
	return s.WaitLine(want)
}

// wait waits for the process to exit and returns how it ended.
func (s *server) wait() error { return s.Wait() }

// stop sends SIGTERM and waits for a clean exit (proctest.Proc.Stop).
func (s *server) stop() { s.Stop() }

// cliRunner runs the autogate CLI with a per-test config file.
type cliRunner struct {
	t      *testing.T
	config string
	env    []string
}

type result struct {
	stdout, stderr string
	code           int
}

func (c *cliRunner) run(args ...string) result {
	c.t.Helper()
	return c.runIn(nil, args...)
}

func (c *cliRunner) runIn(stdin io.Reader, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(append(os.Environ(), "AUTOGATE_CONFIG="+c.config), c.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, stdin
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("autogate %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// must runs args and fails the test unless the exit code is want.
func (c *cliRunner) must(want int, args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != want {
		c.t.Fatalf("autogate %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// untilClosed calls f(0), f(1), ... in a goroutine until stop is closed
// (it looks before each call); the channel it returns is closed when that
// goroutine has ended. The load a test keeps up while it kills things.
func untilClosed(stop <-chan struct{}, f func(n int)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			f(n)
		}
	}()
	return done
}

func gitRepo(t testing.TB, dir string, files map[string]string, modes map[string]os.FileMode) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if m, ok := modes[name]; ok {
			mode = m
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "services")
}

func git(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// buildWheel writes the example pinglib wheel into dir with scripts/wheel.py.
func buildWheel(t *testing.T, dir string) {
	t.Helper()
	root := repoRoot(t)
	out, err := exec.Command("python3", filepath.Join(root, "scripts", "wheel.py"),
		filepath.Join(root, "examples", "pylib"), "pinglib", "0.1.0", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("build wheel: %v\n%s", err, out)
	}
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not installed; scripts/deps.sh installs it", name)
		}
		t.Skipf("SKIPPING: %s not installed (run `make deps`); CI fails instead of skipping", name)
	}
}

type execJSON struct {
	ID       string         `json:"id"`
	Status   string         `json:"status"`
	Reason   string         `json:"reason"`
	ExitCode *int           `json:"exitCode"`
	Commit   string         `json:"commit"`
	Inputs   map[string]any `json:"inputs"`
	Stdout   struct {
		Data string `json:"data"`
	} `json:"stdout"`
	Stderr struct {
		Data string `json:"data"`
	} `json:"stderr"`
}

func decodeExec(t *testing.T, s string) execJSON {
	t.Helper()
	var e execJSON
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		t.Fatalf("decode execution: %v\n%s", err, s)
	}
	return e
}

const secretValue = "s3cr3t-Tok3n-9f8e7d"

// secretHash is the first 16 hex digits of sha256(secretValue): the service
// compares against it so the repository never holds the secret itself.
var secretHash = func() string { h := sha256.Sum256([]byte(secretValue)); return hex.EncodeToString(h[:])[:16] }()

func TestEndToEnd(t *testing.T) {
	requireTool(t, "git")
	requireTool(t, "python3")
	requireTool(t, "ansible-playbook")
	base := t.TempDir()
	wheels := filepath.Join(base, "wheels")
	buildWheel(t, wheels)
	repo := filepath.Join(base, "repo")
	root := repoRoot(t)
	ping, _ := os.ReadFile(filepath.Join(root, "examples", "ping", "main.py"))
	gitRepo(t, repo, map[string]string{
		"ping/main.py":          string(ping),
		"ping/requirements.txt": "pinglib==0.1.0\n",
		"bin/noop.sh":           "#!/bin/sh\nexit 0\n",
		"bin/secret.sh":         "#!/bin/sh\n[ \"$(printf %s \"$TOKEN\" | sha256sum | cut -c1-16)\" = " + secretHash + " ] && echo token-matches\necho \"leak attempt: $TOKEN\"\necho \"file: $(cat \"$AUTOGATE_SECRET_FILE_API_TOKEN\")\" >&2\n",
		"bin/sleep.sh":          "#!/bin/sh\necho started\nsleep 60\necho never\n",
		"bin/fail.sh":           "#!/bin/sh\necho failing >&2\nexit 3\n",
		"play/site.yml":         "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug:\n        msg: \"site={{ site }}\"\n",
	}, map[string]os.FileMode{"bin/noop.sh": 0o755, "bin/secret.sh": 0o755, "bin/sleep.sh": 0o755, "bin/fail.sh": 0o755})

	dataDir := filepath.Join(base, "data")
	srv := startServer(t, dataDir, wheels)
	srv.waitLine("active")
	c := &cliRunner{t: t, config: filepath.Join(base, "cli.yaml")}
	c.must(0, "login", "--server", srv.url, "--ca-file", filepath.Join(dataDir, "tls", "tls.crt"),
		"--password-file", filepath.Join(dataDir, "admin-password"))

	schema := filepath.Join(base, "ping.schema.json")
	os.WriteFile(schema, []byte(`{"type":"object","required":["host"],"properties":{"host":{"type":"string"},"count":{"type":"integer","minimum":1,"maximum":10}},"additionalProperties":false}`), 0o644)
	c.must(0, "create", "repository", "demo", "--url", repo, "--reference", "main")
	c.must(0, "create", "decorator", "ping-input", "--schema", schema)
	c.must(0, "create", "service", "python-script", "ping", "--repository", "demo", "--working-dir", "ping",
		"--filename", "main.py", "--decorator", "ping-input", "--requirements", "requirements.txt")
	c.must(0, "create", "service", "executable", "noop", "--repository", "demo", "--filename", "bin/noop.sh")
	c.must(0, "create", "service", "executable", "fail", "--repository", "demo", "--filename", "bin/fail.sh")
	c.must(0, "create", "service", "executable", "sleeper", "--repository", "demo", "--filename", "bin/sleep.sh", "--timeout", "2s")
	c.must(0, "create", "service", "executable", "longsleeper", "--repository", "demo", "--filename", "bin/sleep.sh")
	c.must(0, "create", "service", "ansible-playbook", "site", "--repository", "demo", "--working-dir", "play", "--filename", "site.yml")
	secretFile := filepath.Join(base, "token")
	os.WriteFile(secretFile, []byte(secretValue), 0o600)
	c.must(0, "create", "secret", "api-token", "--from-file", secretFile)
	c.must(0, "create", "service", "executable", "secretive", "--repository", "demo", "--filename", "bin/secret.sh",
		"--secret-env", "api-token=TOKEN", "--secret-file", "api-token=token.txt")

	t.Run("python-script with a requirement", func(t *testing.T) {
		r := c.must(0, "run", "service", "python-script", "ping", "--set", "host=10.0.0.1", "--set", "count=3")
		for _, want := range []string{"probe 1 to 10.0.0.1: ok", "probe 3 to 10.0.0.1: ok", `"count": 3`} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
	})
	t.Run("ansible-playbook against localhost", func(t *testing.T) {
		r := c.must(0, "run", "service", "ansible-playbook", "site", "--set", "site=lab-7")
		if !strings.Contains(r.stdout, "site=lab-7") {
			t.Errorf("playbook output lacks the input:\n%s", r.stdout)
		}
	})
	t.Run("executable", func(t *testing.T) {
		r := c.must(0, "run", "service", "executable", "noop", "-o", "json")
		e := decodeExec(t, r.stdout)
		if e.Status != "succeeded" || e.ExitCode == nil || *e.ExitCode != 0 || len(e.Commit) != 40 {
			t.Errorf("noop execution = %+v, want succeeded, exit 0, a commit", e)
		}
		r = c.must(20, "run", "service", "executable", "fail")
		if !strings.Contains(r.stderr, "failing") || !strings.Contains(r.stderr, "exit code 3") {
			t.Errorf("failed run stderr:\n%s", r.stderr)
		}
	})
	t.Run("decorator rejection changes nothing", func(t *testing.T) {
		before := c.must(0, "get", "executions", "-o", "json").stdout
		for _, args := range [][]string{
			{"--set", "host=h", "--set", "count=99"},
			{"--set", "count=2"},
			{"--set", "host=h", "--set", "port=22"},
		} {
			r := c.run(append([]string{"run", "service", "python-script", "ping"}, args...)...)
			if r.code != 6 || !strings.Contains(r.stderr, "decorator") {
				t.Errorf("run %v: exit %d, stderr %q; want exit 6 naming the decorator", args, r.code, r.stderr)
			}
		}
		if after := c.must(0, "get", "executions", "-o", "json").stdout; after != before {
			t.Error("a rejected run recorded an execution")
		}
		c.must(6, "run", "service", "executable", "ping") // wrong type
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		r := c.must(21, "run", "service", "executable", "sleeper")
		if !strings.Contains(r.stderr, "timed_out") {
			t.Errorf("stderr %q lacks timed_out", r.stderr)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("2 s timeout took %v", d)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		id := strings.TrimSpace(c.must(0, "run", "service", "executable", "longsleeper", "--async").stdout)
		waitFor(t, func() bool {
			return decodeExec(t, c.must(0, "get", "execution", id, "-o", "json").stdout).Status == "running"
		})
		c.must(0, "cancel", "execution", id)
		waitFor(t, func() bool {
			return decodeExec(t, c.must(0, "get", "execution", id, "-o", "json").stdout).Status == "canceled"
		})
		e := decodeExec(t, c.must(0, "get", "execution", id, "-o", "json").stdout)
		if strings.Contains(e.Stdout.Data, "never") {
			t.Error("canceled service ran to completion")
		}
		c.must(4, "cancel", "execution", id) // already finished: conflict
	})
	var secretExec string
	t.Run("secret reaches the service and nothing else", func(t *testing.T) {
		r := c.must(0, "run", "service", "executable", "secretive", "-o", "json")
		e := decodeExec(t, r.stdout)
		secretExec = e.ID
		if !strings.Contains(e.Stdout.Data, "token-matches") {
			t.Errorf("service did not get the secret: %q", e.Stdout.Data)
		}
		if !strings.Contains(e.Stdout.Data, "leak attempt: [REDACTED]") || !strings.Contains(e.Stderr.Data, "file: [REDACTED]") {
			t.Errorf("printed secret not redacted: stdout %q stderr %q", e.Stdout.Data, e.Stderr.Data)
		}
		for _, args := range [][]string{
			{"get", "secrets", "-o", "json"}, {"get", "secret", "api-token", "-o", "yaml"}, {"describe", "secret", "api-token"},
			{"describe", "execution", e.ID}, {"logs", e.ID}, {"export"}, {"get", "executions", "-o", "yaml"},
		} {
			r := c.must(0, args...)
			if strings.Contains(r.stdout+r.stderr, secretValue) {
				t.Errorf("autogate %v printed the secret", args)
			}
		}
	})
	t.Run("stale update rejected", func(t *testing.T) {
		other := filepath.Join(base, "other.yaml")
		os.WriteFile(other, []byte("kind: service\nname: noop\ntype: executable\nrepository: demo\nfilename: bin/noop.sh\ndescription: changed meanwhile\n"), 0o644)
		editor := filepath.Join(base, "editor.sh")
		// The "editor" lets someone else change the service first, then edits its copy.
		script := fmt.Sprintf("#!/bin/sh\nAUTOGATE_CONFIG=%s %s apply -f %s >/dev/null || exit 9\nsed -i 's/^filename: .*/filename: bin\\/fail.sh/' \"$1\"\n", c.config, binPath, other)
		os.WriteFile(editor, []byte(script), 0o755)
		ed := &cliRunner{t: t, config: c.config, env: []string{"EDITOR=" + editor, "VISUAL="}}
		r := ed.run("edit", "service", "noop")
		if r.code != 4 || !strings.Contains(r.stderr, "version") {
			t.Fatalf("stale edit: exit %d stderr %q; want exit 4 (conflict)", r.code, r.stderr)
		}
		got := c.must(0, "get", "service", "noop", "-o", "json").stdout
		if !strings.Contains(got, "changed meanwhile") || strings.Contains(got, "fail.sh") {
			t.Errorf("after the rejected edit the service is %s", got)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		big := filepath.Join(base, "big")
		os.WriteFile(big, bytes.Repeat([]byte("x"), 2<<20), 0o600)
		badYAML := filepath.Join(base, "bad.yaml")
		os.WriteFile(badYAML, []byte("kind: service\nname: [unclosed\n"), 0o644)
		unknownField := filepath.Join(base, "unknown.yaml")
		os.WriteFile(unknownField, []byte("kind: service\nname: x\ntype: executable\nrepository: demo\nfilename: a\nbogus: 1\n"), 0o644)
		tests := []struct {
			name string
			args []string
			code int
		}{
			{"unknown service", []string{"get", "service", "nope"}, 3},
			{"unknown execution", []string{"describe", "execution", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 3},
			{"run unknown service", []string{"run", "service", "executable", "nope"}, 3},
			{"duplicate", []string{"create", "repository", "demo", "--url", repo}, 4},
			{"dot-dot name", []string{"create", "repository", "..", "--url", repo}, 6},
			{"slash name", []string{"create", "repository", "a/b", "--url", repo}, 6},
			{"control char name", []string{"create", "repository", "a\x01b", "--url", repo}, 6},
			{"over-long name", []string{"create", "repository", strings.Repeat("a", 64), "--url", repo}, 6},
			{"escaping filename", []string{"create", "service", "executable", "esc", "--repository", "demo", "--filename", "../../etc/passwd"}, 6},
			{"service on missing repo", []string{"create", "service", "executable", "orphan", "--repository", "nope", "--filename", "a"}, 3},
			{"oversized body", []string{"create", "secret", "huge", "--from-file", big}, 6},
			{"malformed yaml", []string{"apply", "-f", badYAML}, 2},
			{"unknown field", []string{"apply", "-f", unknownField}, 2},
			{"bad service type", []string{"create", "service", "perl", "x", "--repository", "demo"}, 2},
			{"bad execution id", []string{"get", "execution", "../../x"}, 6},
		}
		before := c.must(0, "export").stdout
		for _, tt := range tests {
			r := c.run(tt.args...)
			if r.code != tt.code || strings.TrimSpace(r.stderr) == "" {
				t.Errorf("%s: exit %d (stderr %q), want %d with a message", tt.name, r.code, r.stderr, tt.code)
			}
		}
		if after := c.must(0, "export").stdout; after != before {
			t.Errorf("bad input changed resources:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("symlink escape in repository", func(t *testing.T) {
		evil := filepath.Join(base, "evil")
		gitRepo(t, evil, map[string]string{"run.sh": "#!/bin/sh\ncat secret\n"}, map[string]os.FileMode{"run.sh": 0o755})
		os.Symlink("/etc/passwd", filepath.Join(evil, "secret"))
		git(t, evil, "add", "-A")
		git(t, evil, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "link")
		c.must(0, "create", "repository", "evil", "--url", evil)
		c.must(0, "create", "service", "executable", "evil", "--repository", "evil", "--filename", "run.sh")
		r := c.must(20, "run", "service", "executable", "evil")
		if strings.Contains(r.stdout, "root:") || !strings.Contains(r.stderr, "symlink") {
			t.Errorf("symlink escape: stdout %q stderr %q; want a failure naming the symlink", r.stdout, r.stderr)
		}
	})
	t.Run("apply is idempotent", func(t *testing.T) {
		exported := filepath.Join(base, "export.yaml")
		os.WriteFile(exported, []byte(c.must(0, "export").stdout), 0o644)
		r := c.must(0, "apply", "-f", exported)
		if strings.Contains(r.stdout, "configured") || strings.Contains(r.stdout, "created") {
			t.Errorf("re-applying the export changed something:\n%s", r.stdout)
		}
	})

	executionsBefore := c.must(0, "get", "executions", "-o", "json").stdout
	resourcesBefore := c.must(0, "export").stdout
	srv.stop()

	t.Run("secret never in the store or the log", func(t *testing.T) {
		err := filepath.Walk(dataDir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return err
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(raw, []byte(secretValue)) {
				t.Errorf("%s holds the secret in plain text", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		logs, _ := os.ReadFile(srv.LogPath)
		if bytes.Contains(logs, []byte(secretValue)) {
			t.Error("the server log holds the secret")
		}
		if !bytes.Contains(logs, []byte(secretExec)) {
			t.Error("the server log does not mention the secret run at all; the check above proves nothing")
		}
	})

	t.Run("restart keeps every resource and execution", func(t *testing.T) {
		// Same address, so the CLI context still points at it.
		startServer(t, dataDir, wheels, "--listen", strings.TrimPrefix(srv.url, "https://")).waitLine("active")
		if got := c.must(0, "export").stdout; got != resourcesBefore {
			t.Errorf("resources after restart differ:\n%s\nwant:\n%s", got, resourcesBefore)
		}
		if got := c.must(0, "get", "executions", "-o", "json").stdout; got != executionsBefore {
			t.Errorf("executions after restart differ")
		}
		c.must(0, "run", "service", "executable", "noop")
	})
}

// waitFor polls cond every 100 ms for up to 60 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for !cond() {
		select {
		case <-deadline:
			t.Fatal("condition not met within 60s")
		case <-tick.C:
		}
	}
}
