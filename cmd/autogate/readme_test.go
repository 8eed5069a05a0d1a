package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/logtest"
	"github.com/autogate/autogate/internal/proctest"
)

// Issue 13 item 14: the README's "Try it by hand" works exactly as written.
// TestReadmeTryItByHand copies the source tree's tracked files (what a
// clone holds) to a temp dir and runs the section's two code blocks there,
// each command as written, in a fresh HOME: the first block up to the
// server, then the server in the background, then the second block in
// another shell. It substitutes only what the README says may be
// substituted: AUTOGATE_LISTEN, a free port instead of 8443 (the README
// says to export it when the port is taken), and $EDITOR, which `edit`
// opens (here a script that changes the service's description). The Go
// set-up of this machine (module and build caches, its go env file) is
// passed through, since a fresh HOME would otherwise hide it. Any step
// that fails, even the first of an && list, fails the test and is named.
func TestReadmeTryItByHand(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := tryItBlocks(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 {
		t.Fatalf("the README's \"Try it by hand\" has %d code blocks; want 2 (the server's shell, the client's)", len(blocks))
	}
	setup, client := blocks[0], blocks[1]
	serverAt := -1
	for i, s := range setup {
		if strings.HasPrefix(s, "bin/autogate server") {
			serverAt = i
		}
	}
	if serverAt != len(setup)-1 {
		t.Fatalf("the first block must end with the server it starts: %q", setup)
	}

	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	copyTracked(t, root, src)
	home := filepath.Join(tmp, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	editor := filepath.Join(tmp, "editor.sh")
	if err := os.WriteFile(editor, []byte("#!/bin/sh\n"+
		"if grep -q '^description:' \"$1\"; then sed -i 's/^description:.*/description: edited by the README test/' \"$1\"\n"+
		"else echo 'description: edited by the README test' >> \"$1\"; fi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	listen := proctest.FreeAddr(t)
	env := readmeEnv(t, home, "AUTOGATE_LISTEN="+listen, "EDITOR="+editor)

	ctx := t.Context()
	if out, err := runSteps(ctx, src, env, setup[:serverAt]); err != nil {
		t.Fatalf("first block: %v\n%s", err, out)
	}
	srv := startReadmeServer(t, src, env, setup[serverAt])
	out, err := runSteps(ctx, src, env, client)
	if err != nil {
		t.Fatalf("second block: %v\n%s\nserver log:\n%s", err, out, srv.String())
	}
	if testing.Verbose() {
		t.Logf("the README's second block:\n%s", out)
	}
	for _, want := range []string{
		"probe 3 to 10.0.0.1: ok", // the sync run's output
		"service/ping edited",     // edit went through $EDITOR
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the README's steps printed no %q:\n%s", want, out)
		}
	}
	if !strings.Contains(srv.String(), "listening on https://"+listen) {
		t.Errorf("the server did not listen on AUTOGATE_LISTEN %s:\n%s", listen, srv.String())
	}
}

// The step runner itself: a failure anywhere in a step, the first command
// of an && list or a pipeline's first stage included, stops the script and
// names the step; variables carry from one step to the next.
func TestRunStepsStopsAtAFailedStep(t *testing.T) {
	tests := []struct {
		name    string
		steps   []string
		failing int // 0: none
	}{
		{"all pass, a variable carries", []string{"X=$(echo hi)", `test "$X" = hi`}, 0},
		{"first of an && list", []string{"true", "false && true", "echo never"}, 2},
		{"pipeline's first stage", []string{"false | cat", "echo never"}, 1},
		{"a failed substitution in an assignment", []string{"ID=$(false)", "echo never"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runSteps(t.Context(), t.TempDir(), os.Environ(), tc.steps)
			if tc.failing == 0 {
				if err != nil {
					t.Errorf("got %v, want no error\n%s", err, out)
				}
				return
			}
			want := fmt.Sprintf("step %d (%s)", tc.failing, tc.steps[tc.failing-1])
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got error %v, want one naming %s\n%s", err, want, out)
			}
			if strings.Contains(out, "never") {
				t.Errorf("a step after the failed one ran:\n%s", out)
			}
		})
	}
}

// tryItBlocks returns the fenced code blocks of the README's "Try it by
// hand" section (up to the next heading), each as its commands: a line
// ending in \, && or | continues on the next, as in bash.
func tryItBlocks(readme string) ([][]string, error) {
	const title = "\n## Try it by hand\n"
	start := strings.Index(readme, title)
	if start < 0 {
		return nil, fmt.Errorf(`no "## Try it by hand" section`)
	}
	var blocks [][]string
	var cur []string
	in, pending := false, ""
	for _, line := range strings.Split(readme[start+len(title):], "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			if in {
				if pending != "" {
					return nil, fmt.Errorf("a command continues past its block: %q", pending)
				}
				blocks = append(blocks, cur)
				cur = nil
			}
			in = !in
			continue
		case !in && strings.HasPrefix(line, "#"):
			return blocks, nil // the next heading
		case !in || strings.TrimSpace(line) == "" && pending == "":
			continue
		}
		if pending != "" {
			pending += "\n"
		}
		pending += line
		code := strings.TrimSpace(line)
		if i := strings.Index(code, " #"); i >= 0 {
			code = strings.TrimSpace(code[:i])
		}
		if !strings.HasSuffix(code, `\`) && !strings.HasSuffix(code, "&&") && !strings.HasSuffix(code, "|") {
			cur = append(cur, pending)
			pending = ""
		}
	}
	if in {
		return nil, fmt.Errorf("an unclosed code block")
	}
	return blocks, nil
}

// runSteps runs steps in one bash in dir, in order, and stops at the first
// that fails: each is wrapped as `{ step } || fail`, which catches a failure
// of any command of an && list (set -e would not), with pipefail for
// pipelines. Each step is echoed before it runs.
func runSteps(ctx context.Context, dir string, env []string, steps []string) (string, error) {
	var script strings.Builder
	script.WriteString("set -o pipefail\n")
	for i, s := range steps {
		fmt.Fprintf(&script, "printf '+ %%s\\n' %s\n{\n%s\n} || { echo \"README step %d failed with exit status $?\" >&2; exit 97; }\n",
			shellQuote(s), s, i+1)
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return out.String(), nil
	}
	if m := regexp.MustCompile(`README step (\d+) failed with exit status (\d+)`).FindStringSubmatch(out.String()); m != nil {
		n, _ := strconv.Atoi(m[1]) // \d+
		return out.String(), fmt.Errorf("step %d (%s) failed with exit status %s", n, steps[n-1], m[2])
	}
	return out.String(), fmt.Errorf("bash: %w", err)
}

// shellQuote quotes s for bash as one word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// readmeEnv is this environment as a newcomer's would be: a fresh HOME, no
// AUTOGATE_*, XDG_*, AWS_*, EDITOR or VISUAL of the test machine, with its
// Go set-up kept (module and build caches, its go env file), plus extra.
func readmeEnv(t *testing.T, home string, extra ...string) []string {
	t.Helper()
	goEnv, err := exec.Command("go", "env", "GOENV", "GOMODCACHE", "GOCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	vals := strings.Split(strings.TrimSpace(string(goEnv)), "\n")
	if len(vals) != 4 {
		t.Fatalf("go env printed %q", goEnv)
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "EDITOR", k == "VISUAL", strings.HasPrefix(k, "AUTOGATE_"), strings.HasPrefix(k, "XDG_"), strings.HasPrefix(k, "AWS_"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "GOENV="+vals[0], "GOMODCACHE="+vals[1], "GOCACHE="+vals[2], "GOPATH="+vals[3])
	return append(env, extra...)
}

// copyTracked copies the files git tracks under root (what a clone holds,
// as they are on disk now) to dst, keeping their modes.
func copyTracked(t *testing.T, root, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		from := filepath.Join(root, rel)
		fi, err := os.Lstat(from)
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, to); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// startReadmeServer runs the README's server step in the background (in its
// own process group, stopped with SIGTERM at cleanup) and waits until it
// says it is active, as the README tells the reader to; it returns its
// output so far and to come.
func startReadmeServer(t *testing.T, dir string, env []string, step string) *logtest.Buffer {
	t.Helper()
	cmd := exec.Command("bash", "-c", step)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	all := &logtest.Buffer{}
	cmd.Stderr = all
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	active := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		said := false
		for sc.Scan() {
			fmt.Fprintln(all, sc.Text())
			if !said && strings.Contains(sc.Text(), ": active") {
				said = true
				close(active)
			}
		}
		done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) // gone already if it failed
		select {
		case <-done:
		case <-time.After(45 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stuck past its shutdown grace
			<-done
		}
	})
	select {
	case <-active:
	case err := <-done:
		done <- err
		t.Fatalf("the README's server step %q exited: %v\n%s", step, err, all.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("the README's server step %q did not say it is active within 2 min:\n%s", step, all.String())
	}
	return all
}

// tryItBlocks keeps continued lines in one command and stops at the next
// heading.
func TestTryItBlocks(t *testing.T) {
	doc := "# X\n\n## Try it by hand\n\ntext\n\n```\nmake build\nbin/a server   # comment\n```\n\nmore\n\n```\nD=x\nR=$(y) && cp a b &&\n  git c\nbin/a create \\\n  --flag v\n\nbin/a run | cat\n```\n\n### Next\n\n```\nnot this\n```\n"
	got, err := tryItBlocks(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"make build", "bin/a server   # comment"},
		{"D=x", "R=$(y) && cp a b &&\n  git c", "bin/a create \\\n  --flag v", "bin/a run | cat"}}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
