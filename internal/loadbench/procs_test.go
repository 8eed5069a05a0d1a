package loadbench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/queue/sqs/sqstest"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// binPath is the autogate binary TestMain builds, without -race.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "autogate-load-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "autogate")
	// autogate-shim next to it, as make build and the image install it.
	for pkg, out := range map[string]string{"cmd/autogate": binPath, "cmd/autogate-shim": filepath.Join(dir, "autogate-shim")} {
		build := exec.Command("go", "build", "-o", out, "github.com/autogate/autogate/"+pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	emulator.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// secretKey is the stored-secret key every process of a set-up shares.
const secretKey = "AUTOGATE_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// nodeConcurrency is --concurrency of every node that runs services.
const nodeConcurrency = 16

// proc is one autogate process.
type proc struct {
	cmd   *exec.Cmd
	log   string
	lines chan string
	done  chan error
}

// start runs autogate with args and env, logging stderr under dir.
func start(tb testing.TB, dir string, env []string, args ...string) *proc {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	p := &proc{log: filepath.Join(dir, "stderr.log"), lines: make(chan string, 64), done: make(chan error, 1)}
	logf, err := os.Create(p.log)
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = logf
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody waits for more lines: drop them
			}
		}
	}()
	tb.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	})
	return p
}

// waitLine waits up to 90 s for a stdout line containing want.
func (p *proc) waitLine(tb testing.TB, want string) string {
	tb.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, want) {
				return l
			}
		case err := <-p.done:
			raw, _ := os.ReadFile(p.log)
			tb.Fatalf("%s exited (%v) before %q:\n%s", p.cmd.Args[1], err, want, tail(raw))
		case <-timeout:
			raw, _ := os.ReadFile(p.log)
			tb.Fatalf("no %q from %s within 90s:\n%s", want, p.cmd.Args[1], tail(raw))
		}
	}
}

func tail(b []byte) []byte {
	if len(b) > 8<<10 {
		return b[len(b)-8<<10:]
	}
	return b
}

// noopRepo makes a git repository holding the no-op service.
func noopRepo(tb testing.TB, dir string) (repo, script string) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	script = filepath.Join(dir, "noop.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"},
		{"-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q", "-m", "noop"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			tb.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return dir, script
}

// gateway starts `autogate server` with extra flags, waits until it is
// active, logs in as admin, creates the no-op service and warms it up.
func gateway(tb testing.TB, dir, repo string, env []string, extra ...string) *client.Client {
	tb.Helper()
	data := filepath.Join(dir, "data")
	args := append([]string{"server", "--data-dir", data, "--listen", "127.0.0.1:0", "--log-level", "warn",
		"--node", "gw-0", "--concurrency", fmt.Sprint(nodeConcurrency), "--shutdown-grace", "5s"}, extra...)
	p := start(tb, dir, append([]string{secretKey}, env...), args...)
	url := regexp.MustCompile(`https://[0-9.:]+`).FindString(p.waitLine(tb, "listening on"))
	p.waitLine(tb, "active")
	ca := client.TLS{CAFile: filepath.Join(data, "tls", "tls.crt")}
	anon, err := client.New(url, "", ca)
	if err != nil {
		tb.Fatal(err)
	}
	pw, err := os.ReadFile(filepath.Join(data, "admin-password"))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	login, err := anon.Login(ctx, "admin", strings.TrimSpace(string(pw)))
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := client.New(url, login.Token, ca)
	if err != nil {
		tb.Fatal(err)
	}
	if err := cl.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "r"}, URL: repo}); err != nil {
		tb.Fatal(err)
	}
	if err := cl.Create(ctx, &resource.Service{Meta: resource.Meta{Name: "noop"}, Type: resource.Executable, Repository: "r", Filename: "noop.sh"}); err != nil {
		tb.Fatal(err)
	}
	return cl
}

// warm runs n no-op runs, so checkouts and caches are in place.
func warm(tb testing.TB, cl *client.Client, n int) {
	tb.Helper()
	for range n {
		if e, err := cl.Run(context.Background(), "noop", wire.RunRequest{}); err != nil || e.Status != execution.Succeeded {
			tb.Fatalf("warm-up run: %v %+v", err, e)
		}
	}
}

// allInOne starts the all-in-one set-up: one server, embedded store,
// services run in-process.
func allInOne(tb testing.TB, repo string) *client.Client {
	tb.Helper()
	cl := gateway(tb, filepath.Join(tb.TempDir(), "aio"), repo, nil)
	warm(tb, cl, 3)
	return cl
}

// distributed starts one gateway on DynamoDB Local and a fauxqs queue, and
// two runner processes.
func distributed(tb testing.TB, repo string) *client.Client {
	tb.Helper()
	emulator.DynamoDB(tb)
	q := sqstest.New(tb, sqstest.Options{MaxReceiveCount: 5, Visibility: 30 * time.Second})
	env := append(emulator.Env(), secretKey)
	table := fmt.Sprintf("load%d", time.Now().UnixNano())
	initCmd := exec.Command(binPath, "init", "table", "--table", table)
	initCmd.Env = append(os.Environ(), env...)
	if out, err := initCmd.CombinedOutput(); err != nil {
		tb.Fatalf("autogate init table: %v\n%s", err, out)
	}
	base := tb.TempDir()
	cl := gateway(tb, filepath.Join(base, "gw"), repo, emulator.Env(), "--store", "dynamodb", "--table", table,
		"--cluster", "load-1", "--execution", "queue", "--queue-url", q.URL, "--dlq-url", q.DLQURL)
	for i := range 2 {
		dir := filepath.Join(base, fmt.Sprintf("runner-%d", i))
		r := start(tb, dir, env, "runner", "--cluster", "load-1", "--table", table, "--queue-url", q.URL,
			"--node", fmt.Sprintf("runner-%d", i), "--data-dir", dir, "--concurrency", fmt.Sprint(nodeConcurrency),
			"--log-level", "warn", "--shutdown-grace", "10s")
		r.waitLine(tb, "receiving from")
	}
	warm(tb, cl, 6) // both runners check the repository out
	return cl
}
