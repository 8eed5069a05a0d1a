package loadbench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/proctest"
	"github.com/autogate/autogate/internal/queue/sqs/sqstest"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// binPath is the autogate binary TestMain builds, without -race.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(proctest.Main(m, emulator.Stop,
		proctest.Binary{Name: "autogate", Pkg: "github.com/autogate/autogate/cmd/autogate", Path: &binPath},
		// autogate-shim next to it, as make build and the image install it.
		proctest.Binary{Name: "autogate-shim", Pkg: "github.com/autogate/autogate/cmd/autogate-shim"}))
}

// secretKey is the stored-secret key every process of a set-up shares.
const secretKey = "AUTOGATE_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// nodeConcurrency is --concurrency of every node that runs services.
const nodeConcurrency = 16

// start runs autogate with args and env, logging stderr under dir, and
// stops it at tb's cleanup.
func start(tb testing.TB, dir string, env []string, args ...string) *proctest.Proc {
	tb.Helper()
	return proctest.Start(tb, filepath.Join(dir, "stderr.log"), append(os.Environ(), env...), binPath, args...)
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
	url := regexp.MustCompile(`https://[0-9.:]+`).FindString(p.WaitLine("listening on"))
	p.WaitLine("active")
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
		r.WaitLine("receiving from")
	}
	warm(tb, cl, 6) // both runners check the repository out
	return cl
}
