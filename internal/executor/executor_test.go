package executor

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
)

// testGrace keeps kill-path tests short.
const testGrace = 300 * time.Millisecond

// newExecutor returns an executor with its directories in t.TempDir and a
// short kill grace; mutate may change the config first.
func newExecutor(t *testing.T, mutate func(*Config)) *Executor {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{WorkRoot: filepath.Join(dir, "work"), CacheDir: filepath.Join(dir, "cache"), KillGrace: testGrace, ShimPath: testShim(t)}
	if mutate != nil {
		mutate(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// writeTree creates a source tree: path → content, where a content of
// "->target" makes a symlink and a path ending in "*" an executable file
// (the "*" is dropped).
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if n, ok := strings.CutSuffix(name, "*"); ok {
			name, mode = n, 0o755
		}
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content), mode)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// script is an executable service running a /bin/sh script.
func script(body string) (resource.Service, map[string]string) {
	return resource.Service{Meta: resource.Meta{Name: "svc"}, Type: resource.Executable, Filename: "run.sh", TimeoutSeconds: 30},
		map[string]string{"run.sh*": "#!/bin/sh\n" + body}
}

func runScript(t *testing.T, e *Executor, body string, mutate func(*Job)) (Result, error) {
	t.Helper()
	svc, files := script(body)
	job := Job{ExecutionID: "exec-1", Service: svc, SourceDir: writeTree(t, files)}
	if mutate != nil {
		mutate(&job)
	}
	return e.Run(t.Context(), job)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// processGone reports whether pid has exited (absent or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// Format: pid (comm) state ...; comm may hold spaces or parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"defaults", Config{WorkRoot: filepath.Join(dir, "w"), CacheDir: filepath.Join(dir, "c")}, false},
		{"no work root", Config{CacheDir: dir}, true},
		{"no cache dir", Config{WorkRoot: dir}, true},
		{"negative limit", Config{WorkRoot: dir, CacheDir: dir, OutputLimit: -1}, true},
		{"negative grace", Config{WorkRoot: dir, CacheDir: dir, KillGrace: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(tt.cfg)
			if got := err != nil; got != tt.wantErr {
				t.Fatalf("New: got error %v, want error: %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if e.cfg.Python != "python3" || e.cfg.OutputLimit != 64<<10 || e.cfg.KillGrace != 5*time.Second || e.cfg.PathEnv != os.Getenv("PATH") {
				t.Errorf("defaults: got %+v", e.cfg)
			}
			if fi, err := os.Stat(tt.cfg.WorkRoot); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("WorkRoot: got %v, %v want a 0700 directory", fi, err)
			}
		})
	}
}

func TestRunExecutableStatus(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, nil)
	tests := []struct {
		name       string
		body       string
		wantStatus execution.Status
		wantCode   int
		wantReason string
		wantStdout string
		wantStderr string
	}{
		{"success", "echo out; echo err >&2", execution.Succeeded, 0, "", "out\n", "err\n"},
		{"exit code", "echo failing; exit 3", execution.Failed, 3, "exit code 3", "failing\n", ""},
		{"signal", "kill -KILL $$", execution.Failed, -1, "terminated by signal 9 (killed)", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := runScript(t, e, tt.body, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if res.Status != tt.wantStatus || res.ExitCode != tt.wantCode || res.Reason != tt.wantReason {
				t.Errorf("got (%s, %d, %q) want (%s, %d, %q)", res.Status, res.ExitCode, res.Reason, tt.wantStatus, tt.wantCode, tt.wantReason)
			}
			if res.Stdout.Data != tt.wantStdout || res.Stderr.Data != tt.wantStderr {
				t.Errorf("output: got %q / %q want %q / %q", res.Stdout.Data, res.Stderr.Data, tt.wantStdout, tt.wantStderr)
			}
			if res.Stdout.Bytes != int64(len(tt.wantStdout)) {
				t.Errorf("stdout bytes: got %d want %d", res.Stdout.Bytes, len(tt.wantStdout))
			}
		})
	}
}

func TestRunInputsArgv(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, nil)
	res, err := runScript(t, e, `for a; do printf '%s\n' "$a"; done`, func(j *Job) {
		j.Service.Args = []string{"first", "-x"}
		j.Inputs = map[string]any{
			"name": "two words", "count": 3, "ratio": 0.5, "dry": true,
			"tags": []any{"a", "b"}, "opts": map[string]any{"k": "<v>"}, "none": nil,
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"first", "-x", "--count", "3", "--dry", "true", "--name", "two words", "--none", "null",
		"--opts", `{"k":"<v>"}`, "--ratio", "0.5", "--tags", `["a","b"]`}
	if got := strings.Split(strings.TrimSuffix(res.Stdout.Data, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("argv: got %q want %q", got, want)
	}
}

func TestRunEnvironmentScrubbed(t *testing.T) {
	t.Setenv("AUTOGATE_TEST_HOST_LEAK", "leaked")
	t.Setenv("PIP_INDEX_URL", "https://host-index.invalid/simple")
	e := newExecutor(t, func(c *Config) { c.PathEnv = "/usr/bin:/bin" })
	res, err := runScript(t, e, `cat /proc/$$/environ
stat -c %a "$HOME" "$AUTOGATE_SECRET_FILE_DB_PASSWORD" "$AUTOGATE_INPUTS_FILE" >&2
cat "$AUTOGATE_INPUTS_FILE" >&2`, func(j *Job) {
		j.ExecutionID = "01JTESTEXEC"
		j.Service.Env = map[string]string{"MY_VAR": "mine", "LANG": "overridden"}
		j.Service.Secrets = []resource.SecretBinding{
			{Secret: "api-token", Env: "API_TOKEN"},
			{Secret: "db.password", File: "db-password"},
		}
		j.Secrets = map[string][]byte{"api-token": []byte("tok-value-1"), "db.password": []byte("pw-value-2")}
		j.Inputs = map[string]any{"region": "eu"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != execution.Succeeded {
		t.Fatalf("status %s: %s\n%s", res.Status, res.Reason, res.Stderr.Data)
	}
	env := map[string]string{}
	for kv := range strings.SplitSeq(strings.TrimRight(res.Stdout.Data, "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var keys []string
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"API_TOKEN", "AUTOGATE_EXECUTION_ID", "AUTOGATE_INPUTS_FILE", "AUTOGATE_SECRET_FILE_DB_PASSWORD", "HOME", "LANG", "MY_VAR", "PATH"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("environment keys: got %v want %v", keys, wantKeys)
	}
	home := env["HOME"]
	for k, want := range map[string]string{
		"PATH":                             "/usr/bin:/bin",
		"MY_VAR":                           "mine",
		"LANG":                             "overridden",
		"AUTOGATE_EXECUTION_ID":            "01JTESTEXEC",
		"API_TOKEN":                        execution.Redacted, // the value is the secret, redacted in output
		"AUTOGATE_INPUTS_FILE":             filepath.Join(home, ".autogate", "inputs.json"),
		"AUTOGATE_SECRET_FILE_DB_PASSWORD": filepath.Join(home, ".secrets", "db-password"),
	} {
		if env[k] != want {
			t.Errorf("%s: got %q want %q", k, env[k], want)
		}
	}
	if !strings.HasPrefix(home, e.cfg.WorkRoot+string(filepath.Separator)) {
		t.Errorf("HOME %q: want a directory under WorkRoot %q", home, e.cfg.WorkRoot)
	}
	if want := "700\n600\n600\n{\"region\":\"eu\"}"; res.Stderr.Data != want {
		t.Errorf("run dir, secret and inputs file modes, inputs: got %q want %q", res.Stderr.Data, want)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory after the run: got %v want it removed", err)
	}
}

func TestRunRedactsSecrets(t *testing.T) {
	t.Parallel()
	const secret, sensitive = "s3cr3t-value-xyz", "hunter2-sensitive"
	tests := []struct {
		name  string
		limit int
	}{
		{"roomy", 0},
		{"cut right after a secret", 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExecutor(t, func(c *Config) { c.OutputLimit = tt.limit })
			// Each printf is its own write, so the secret crosses write
			// boundaries; it is printed from the env, a file and argv.
			res, err := runScript(t, e, `printf 'a%.0s' $(seq 1 20); printf 's3cr3t-'; printf 'value-xyz\n'
echo "env=$TOKEN" >&2
cat "$AUTOGATE_SECRET_FILE_TOKEN"
echo "arg=$2" >&2
printf 'hunter2-'; printf 'sensitive\n'`, func(j *Job) {
				j.Service.Secrets = []resource.SecretBinding{{Secret: "token", Env: "TOKEN", File: "token"}}
				j.Secrets = map[string][]byte{"token": []byte(secret)}
				j.Inputs = map[string]any{"password": sensitive}
				j.Sensitive = []string{sensitive, "ab"} // "ab" is too short to redact
			})
			if err != nil {
				t.Fatal(err)
			}
			all := res.Stdout.Data + res.Stderr.Data + res.Reason
			for _, s := range []string{secret, sensitive, "s3cr3t-", "hunter2-"} {
				if strings.Contains(all, s) {
					t.Errorf("output contains %q:\nstdout %q\nstderr %q", s, res.Stdout.Data, res.Stderr.Data)
				}
			}
			if !strings.Contains(res.Stdout.Data, execution.Redacted) || !strings.Contains(res.Stderr.Data, "env="+execution.Redacted) {
				t.Errorf("want %s in place of the secret: stdout %q stderr %q", execution.Redacted, res.Stdout.Data, res.Stderr.Data)
			}
		})
	}
}

func TestRunOutputTruncated(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, func(c *Config) { c.OutputLimit = 1000 })
	res, err := runScript(t, e, `head -c 100000 /dev/zero | tr '\0' a; echo small >&2`, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("a", 1000) + "\n[autogate: output truncated: 1000 of 100000 bytes kept]"
	if res.Stdout.Data != want || !res.Stdout.Truncated || res.Stdout.Bytes != 100000 {
		t.Errorf("stdout: got (len %d, truncated %v, bytes %d, tail %q) want (len %d, true, 100000, tail %q)",
			len(res.Stdout.Data), res.Stdout.Truncated, res.Stdout.Bytes, res.Stdout.Data[max(0, len(res.Stdout.Data)-60):], len(want), want[len(want)-60:])
	}
	if res.Stderr.Data != "small\n" || res.Stderr.Truncated {
		t.Errorf("stderr: got %+v want untruncated %q", res.Stderr, "small\n")
	}
}

func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		wantCode int
	}{
		{"grandchild honours SIGTERM", "sleep 100 &\necho $! > \"$1\"\nwait", -1},
		{"grandchild ignores SIGTERM", "(trap '' TERM; exec sleep 100) &\necho $! > \"$1\"\nwait", -1},
		{"leader ignores SIGTERM", "trap '' TERM\nsleep 100 &\necho $! > \"$1\"\nwhile :; do wait; done", -1},
		{"grandchild detached from stdout", "(trap '' TERM; exec sleep 100) >/dev/null 2>&1 &\necho $! > \"$1\"\nwait", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExecutor(t, nil)
			pidFile := filepath.Join(t.TempDir(), "pid")
			start := time.Now()
			res, err := runScript(t, e, tt.body, func(j *Job) {
				j.Service.TimeoutSeconds = 1
				j.Service.Args = []string{pidFile}
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != execution.TimedOut || res.Reason != "timed out after 1s" || res.ExitCode != tt.wantCode {
				t.Errorf("got (%s, %q, %d) want (%s, %q, %d)", res.Status, res.Reason, res.ExitCode, execution.TimedOut, "timed out after 1s", tt.wantCode)
			}
			if took := time.Since(start); took > time.Second+testGrace+2*time.Second {
				t.Errorf("Run took %v; want about timeout + grace", took)
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, fmt.Sprintf("grandchild %d to die", pid), func() bool { return processGone(pid) })
		})
	}
}

func TestRunKillsLeftoversAfterExit(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, func(c *Config) { c.KillGrace = 10 * time.Second })
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	res, err := runScript(t, e, "sleep 100 >/dev/null 2>&1 &\necho $! > \"$1\"\necho done", func(j *Job) {
		j.Service.Args = []string{pidFile}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != execution.Succeeded || res.Stdout.Data != "done\n" {
		t.Errorf("got (%s, %q) want (succeeded, %q)", res.Status, res.Stdout.Data, "done\n")
	}
	// The leftover honours SIGTERM, so the run must not wait out the grace.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run took %v; want well under the 10s grace", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, fmt.Sprintf("leftover %d to die", pid), func() bool { return processGone(pid) })
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cause      error
		wantReason string
	}{
		{"plain", nil, "canceled"},
		{"with a cause", errors.New("cancel requested by alice"), "canceled: cancel requested by alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExecutor(t, nil)
			started := filepath.Join(t.TempDir(), "started")
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			svc, files := script("echo started > \"$1\"\nexec sleep 100")
			svc.Args = []string{started}
			src := writeTree(t, files)
			done := make(chan Result, 1)
			go func() {
				res, err := e.Run(ctx, Job{ExecutionID: "c", Service: svc, SourceDir: src})
				if err != nil {
					t.Errorf("Run: %v", err)
				}
				done <- res
			}()
			waitFor(t, 10*time.Second, "the service to start", func() bool { _, err := os.Stat(started); return err == nil })
			cancel(tt.cause)
			res := <-done
			if res.Status != execution.Canceled || res.Reason != tt.wantReason || res.ExitCode != -1 {
				t.Errorf("got (%s, %q, %d) want (%s, %q, -1)", res.Status, res.Reason, res.ExitCode, execution.Canceled, tt.wantReason)
			}
		})
	}
}

func TestRunMissingTool(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	e := newExecutor(t, func(c *Config) { c.PathEnv = empty })
	tests := []struct {
		typ     resource.ServiceType
		file    string
		wantMsg string
	}{
		{resource.PythonScript, "main.py", "python3 not found: install python3 and python3-venv"},
		{resource.AnsiblePlaybook, "site.yml", "ansible-playbook not found: install ansible-core (apt-get install ansible-core)"},
		{resource.OpenTofuPlan, "", "tofu not found: install OpenTofu (https://opentofu.org/docs/intro/install/)"},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			t.Parallel()
			files := map[string]string{"main.tf": ""}
			if tt.file != "" {
				files[tt.file] = ""
			}
			res, err := e.Run(t.Context(), Job{Service: resource.Service{Type: tt.typ, Filename: tt.file}, SourceDir: writeTree(t, files)})
			if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got error %v want ErrSetup saying %q", err, tt.wantMsg)
			}
			if res.Status != execution.Failed || res.ExitCode != -1 {
				t.Errorf("result: got (%s, %d) want (failed, -1)", res.Status, res.ExitCode)
			}
		})
	}
}

func TestRunPathChecks(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, nil)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "run.sh"), []byte("#!/bin/sh\necho escaped\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		files   map[string]string
		svc     resource.Service
		wantMsg string // "" = must succeed
	}{
		{"working dir symlink to an absolute dir", map[string]string{"wd": "->" + outside},
			resource.Service{Type: resource.Executable, WorkingDir: "wd", Filename: "run.sh"}, "symlink wd -> " + outside + " leads outside the source tree"},
		{"working dir symlink up and out", map[string]string{"sub/wd": "->../../..", "sub/x": ""},
			resource.Service{Type: resource.Executable, WorkingDir: "sub/wd", Filename: "run.sh"}, "leads outside the source tree"},
		{"filename symlink out", map[string]string{"run.sh": "->" + filepath.Join(outside, "run.sh")},
			resource.Service{Type: resource.Executable, Filename: "run.sh"}, "symlink run.sh"},
		{"requirements symlink out", map[string]string{"main.py": "", "req.txt": "->/etc/hostname"},
			resource.Service{Type: resource.PythonScript, Filename: "main.py", Requirements: "req.txt"}, "requirements"},
		{"dotdot in filename", map[string]string{"run.sh*": "#!/bin/sh\n"},
			resource.Service{Type: resource.Executable, Filename: "../run.sh"}, `must not contain ".."`},
		{"working dir is a file", map[string]string{"wd": "", "run.sh*": "#!/bin/sh\n"},
			resource.Service{Type: resource.Executable, WorkingDir: "wd", Filename: "run.sh"}, "not a directory"},
		{"missing filename", map[string]string{"other": ""},
			resource.Service{Type: resource.Executable, Filename: "run.sh"}, "filename"},
		{"not executable", map[string]string{"run.sh": "#!/bin/sh\n"},
			resource.Service{Type: resource.Executable, Filename: "run.sh"}, "run.sh is not executable"},
		{"internal symlinks", map[string]string{"real/run.sh*": "#!/bin/sh\necho inside\n", "wd": "->real", "real/link.sh": "->run.sh"},
			resource.Service{Type: resource.Executable, WorkingDir: "wd", Filename: "link.sh"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := e.Run(t.Context(), Job{Service: tt.svc, SourceDir: writeTree(t, tt.files)})
			if tt.wantMsg == "" {
				if err != nil || res.Status != execution.Succeeded || res.Stdout.Data != "inside\n" {
					t.Errorf("got (%+v, %v) want success printing %q", res, err, "inside\n")
				}
				return
			}
			if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got error %v want ErrSetup containing %q", err, tt.wantMsg)
			}
			if strings.Contains(res.Stdout.Data, "escaped") {
				t.Error("the file outside the tree ran")
			}
		})
	}
}

func TestRunCopiesSourceFreshEachTime(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, nil)
	src := writeTree(t, map[string]string{
		"run.sh*":        "#!/bin/sh\ncat state.txt; echo changed > state.txt; ls -a | tr '\\n' ' '",
		"state.txt":      "pristine\n",
		".autogate/evil": "shadow",
		"fifo-free/a":    "",
		"out":            "->/etc",
	})
	svc, _ := script("")
	for i := range 2 {
		res, err := e.Run(t.Context(), Job{Service: svc, SourceDir: src})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(res.Stdout.Data, "pristine\n") {
			t.Errorf("run %d: got %q want the pristine source", i, res.Stdout.Data)
		}
		if strings.Contains(res.Stdout.Data, " out ") || strings.Contains(res.Stdout.Data, "evil") {
			t.Errorf("run %d: listing %q: want no escaping symlink and the reserved .autogate dir the executor's own", i, res.Stdout.Data)
		}
	}
	if b, err := os.ReadFile(filepath.Join(src, "state.txt")); err != nil || string(b) != "pristine\n" {
		t.Errorf("source state.txt: got %q, %v want it untouched", b, err)
	}
	if entries, err := os.ReadDir(e.cfg.WorkRoot); err != nil || len(entries) != 0 {
		t.Errorf("WorkRoot after runs: got %v, %v want empty", entries, err)
	}
}

func TestRunAnsiblePlaybook(t *testing.T) {
	t.Parallel()
	if _, err := lookPath("ansible-playbook", os.Getenv("PATH")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ansible-playbook not found: install ansible-core (apt-get install ansible-core)")
		}
		t.Skip("SKIPPING: ansible-playbook not found; install ansible-core to run this test")
	}
	e := newExecutor(t, nil)
	src := writeTree(t, map[string]string{"play/site.yml": `- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "greeting={{ greeting }} count={{ count }} host={{ inventory_hostname }}"
`})
	res, err := e.Run(t.Context(), Job{
		ExecutionID: "ansible",
		Service:     resource.Service{Type: resource.AnsiblePlaybook, WorkingDir: "play", Filename: "site.yml", TimeoutSeconds: 60},
		Inputs:      map[string]any{"greeting": "hello-from-autogate", "count": 2},
		SourceDir:   src,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != execution.Succeeded {
		t.Fatalf("status %s (%s)\nstdout:\n%s\nstderr:\n%s", res.Status, res.Reason, res.Stdout.Data, res.Stderr.Data)
	}
	if want := "greeting=hello-from-autogate count=2 host=localhost"; !strings.Contains(res.Stdout.Data, want) {
		t.Errorf("stdout: got\n%s\nwant it to contain %q", res.Stdout.Data, want)
	}
}

func TestRunOpenTofuStandIn(t *testing.T) {
	t.Parallel()
	const msg = "opentofu-plan tested up to the tool boundary with a stand-in tofu; real OpenTofu is not installable on this machine"
	t.Log(msg)
	fmt.Fprintln(os.Stderr, msg)

	tests := []struct {
		name       string
		apply      bool
		failOn     string
		wantCalls  []string
		wantStatus execution.Status
		wantReason string
	}{
		{"plan", false, "", []string{"init -input=false -no-color", "plan -input=false -no-color -out=plan.tfplan -var-file=VARS"}, execution.Succeeded, ""},
		{"plan and apply", true, "", []string{"init -input=false -no-color", "plan -input=false -no-color -out=plan.tfplan -var-file=VARS", "apply -input=false -no-color plan.tfplan"}, execution.Succeeded, ""},
		{"plan fails", true, "plan", []string{"init -input=false -no-color", "plan -input=false -no-color -out=plan.tfplan -var-file=VARS"}, execution.Failed, "tofu plan: exit code 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bin := t.TempDir()
			logFile := filepath.Join(t.TempDir(), "calls")
			stub := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %q
for a; do case "$a" in -var-file=*) cat "${a#-var-file=}" > %q.vars;; esac; done
echo "tofu $1 ran in $(pwd)"
[ "$1" = %q ] && { echo "boom" >&2; exit 1; }
exit 0
`, logFile, logFile, tt.failOn)
			if err := os.WriteFile(filepath.Join(bin, "tofu"), []byte(stub), 0o755); err != nil {
				t.Fatal(err)
			}
			e := newExecutor(t, func(c *Config) { c.PathEnv = bin + ":/usr/bin:/bin" })
			res, err := e.Run(t.Context(), Job{
				Service:   resource.Service{Type: resource.OpenTofuPlan, WorkingDir: "infra"},
				Inputs:    map[string]any{"region": "eu-west-1", "size": 3},
				SourceDir: writeTree(t, map[string]string{"infra/main.tf": "# empty"}),
				Apply:     tt.apply,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.wantStatus || res.Reason != tt.wantReason {
				t.Errorf("got (%s, %q) want (%s, %q)", res.Status, res.Reason, tt.wantStatus, tt.wantReason)
			}
			b, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			calls := strings.Split(strings.TrimSpace(string(b)), "\n")
			for i := range calls {
				if before, _, ok := strings.Cut(calls[i], "-var-file="); ok {
					calls[i] = before + "-var-file=VARS"
				}
			}
			if !slices.Equal(calls, tt.wantCalls) {
				t.Errorf("tofu calls: got %q want %q", calls, tt.wantCalls)
			}
			if vars, err := os.ReadFile(logFile + ".vars"); err != nil || string(vars) != `{"region":"eu-west-1","size":3}` {
				t.Errorf("var file: got %q, %v", vars, err)
			}
			if got := strings.Count(res.Stdout.Data, "tofu "); got != len(tt.wantCalls) {
				t.Errorf("stdout of all steps: got %q want %d lines", res.Stdout.Data, len(tt.wantCalls))
			}
			if !strings.Contains(res.Stdout.Data, string(filepath.Separator)+"infra\n") {
				t.Errorf("stdout %q: want tofu run in the working dir", res.Stdout.Data)
			}
		})
	}
}

func TestSecretFileVar(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"db-password", "AUTOGATE_SECRET_FILE_DB_PASSWORD"},
		{"a.b_c", "AUTOGATE_SECRET_FILE_A_B_C"},
		{"x/y", "AUTOGATE_SECRET_FILE_X_Y"},
	}
	for _, tt := range tests {
		if got := secretFileVar(tt.in); got != tt.want {
			t.Errorf("secretFileVar(%q): got %q want %q", tt.in, got, tt.want)
		}
	}
}

func TestRunSecretNotProvided(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, nil)
	_, err := runScript(t, e, "true", func(j *Job) {
		j.Service.Secrets = []resource.SecretBinding{{Secret: "missing", Env: "X"}}
	})
	if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "secret missing") {
		t.Errorf("got %v want ErrSetup naming the secret", err)
	}
}

// Compile-time check that the process group really is separate: a service
// signalling its own group must not reach the test process.
func TestRunOwnProcessGroup(t *testing.T) {
	t.Parallel()
	e := newExecutor(t, nil)
	res, err := runScript(t, e, "kill -TERM 0; sleep 5", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != execution.Failed || res.Reason != fmt.Sprintf("terminated by signal %d (%v)", syscall.SIGTERM, syscall.SIGTERM) {
		t.Errorf("got (%s, %q) want failed by SIGTERM", res.Status, res.Reason)
	}
}

// TestRunSensitiveInputsNotInArgv: /proc/PID/cmdline is world-readable, so a
// writeOnly input must reach the service through the inputs file only.
func TestRunSensitiveInputsNotInArgv(t *testing.T) {
	t.Parallel()
	const pw = "hunter2-in-argv"
	out := filepath.Join(t.TempDir(), "cmdline")
	e := newExecutor(t, nil)
	res, err := runScript(t, e, `tr '\0' ' ' < /proc/$$/cmdline > "$OUT"; echo >> "$OUT"; cat "$AUTOGATE_INPUTS_FILE" >> "$OUT"`, func(j *Job) {
		j.Service.Env = map[string]string{"OUT": out}
		j.Inputs = map[string]any{"host": "10.0.0.1", "password": pw}
		j.SensitiveInputs = []string{"password"}
	})
	if err != nil || res.Status != execution.Succeeded {
		t.Fatalf("run: %v %s %s", err, res.Status, res.Reason)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	cmdline, inputs, _ := strings.Cut(string(b), "\n")
	if strings.Contains(cmdline, pw) || strings.Contains(cmdline, "--password") {
		t.Errorf("cmdline %q holds the sensitive input", cmdline)
	}
	if !strings.Contains(cmdline, "--host 10.0.0.1") {
		t.Errorf("cmdline %q: want the other inputs as arguments", cmdline)
	}
	if !strings.Contains(inputs, `"password":"`+pw+`"`) {
		t.Errorf("inputs file %q: want the sensitive input in it", inputs)
	}
}

func TestRunRedactsEncodedSecrets(t *testing.T) {
	t.Parallel()
	const secret = "line-one-of-a-key\nline-two-of-a-key"
	e := newExecutor(t, nil)
	res, err := runScript(t, e, `printf '%s' "$TOKEN" | base64 -w0; echo
printf '%s' "$TOKEN" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo
printf '%s' "$TOKEN" | od -An -tx1 | tr -d ' \n'; echo
printf '%s\n' "$TOKEN" | tail -n 1`, func(j *Job) {
		j.Service.Secrets = []resource.SecretBinding{{Secret: "token", Env: "TOKEN"}}
		j.Secrets = map[string][]byte{"token": []byte(secret)}
	})
	if err != nil || res.Status != execution.Succeeded {
		t.Fatalf("run: %v %s %s", err, res.Status, res.Reason)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(secret))
	for _, leak := range []string{b64, strings.TrimRight(b64, "="), hex.EncodeToString([]byte(secret)), "line-two-of-a-key"} {
		if strings.Contains(res.Stdout.Data, leak) {
			t.Errorf("stdout %q holds %q", res.Stdout.Data, leak)
		}
	}
	if got := strings.Count(res.Stdout.Data, execution.Redacted); got != 4 {
		t.Errorf("stdout %q: got %d redactions want 4", res.Stdout.Data, got)
	}
}

// Where --secret-file puts the file is documented for users (issue 13
// item 15): the README names the variable and its example is what
// secretFileVar computes.
func TestSecretFileVarDocumented(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(readme)), " ")
	for _, want := range []string{"`AUTOGATE_SECRET_FILE_<NAME>`", "`db-password` → `" + secretFileVar("db-password") + "`", "`.secrets/`"} {
		if !strings.Contains(text, want) {
			t.Errorf("the README does not say %s", want)
		}
	}
}

// TestRunDirRoots: with DiskWorkRoot set, an opentofu-plan run (whose
// `tofu init` downloads providers into its directory) gets its directory
// there and every other type under WorkRoot; without it, all use WorkRoot.
func TestRunDirRoots(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	// The stand-in tofu and the executable both print where they ran.
	if err := os.WriteFile(filepath.Join(bin, "tofu"), []byte("#!/bin/sh\npwd\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := writeTree(t, map[string]string{"main.tf": "# empty", "run.sh": "#!/bin/sh\npwd\n"})
	if err := os.Chmod(filepath.Join(src, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		disk     bool
		svc      resource.Service
		wantDisk bool
	}{
		{"tofu with disk root", true, resource.Service{Type: resource.OpenTofuPlan}, true},
		{"executable with disk root", true, resource.Service{Type: resource.Executable, Filename: "run.sh"}, false},
		{"tofu without disk root", false, resource.Service{Type: resource.OpenTofuPlan}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			e := newExecutor(t, func(c *Config) {
				c.PathEnv = bin + ":/usr/bin:/bin"
				if tt.disk {
					c.DiskWorkRoot = filepath.Join(filepath.Dir(c.WorkRoot), "disk")
				}
				cfg = *c
			})
			res, err := e.Run(t.Context(), Job{ExecutionID: "e1", Service: tt.svc, SourceDir: src})
			if err != nil || res.Status != execution.Succeeded {
				t.Fatalf("run: %v %+v", err, res)
			}
			want := cfg.WorkRoot
			if tt.wantDisk {
				want = cfg.DiskWorkRoot
			}
			// tofu prints once per step (init, plan); every line is the run dir.
			for _, dir := range strings.Fields(res.Stdout.Data) {
				if filepath.Dir(dir) != want {
					t.Errorf("ran in %s, want a directory under %s", dir, want)
				}
			}
			if res.Stdout.Data == "" {
				t.Error("no output: the stand-ins did not run")
			}
		})
	}
}
