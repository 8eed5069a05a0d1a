package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// Live output with real processes: a service prints a line a second for
// 5 s, then waits for the test to let it end, so "the lines arrived before
// the run ended" is checked without racing the clock.

const liveSecret = "live-output-secret-0123456789"

// wantTicker is the ticker's whole output as stored: the secret redacted.
const wantTicker = "token: " + execution.Redacted + "\ntick 1\ntick 2\ntick 3\ntick 4\ntick 5\n"

// liveSetup creates, through cl, a repository with the ticker service and
// the secret it prints; it returns the file whose creation ends the run.
func liveSetup(t *testing.T, cl *client.Client) (release string) {
	t.Helper()
	dir := t.TempDir()
	release = filepath.Join(dir, "release")
	repo := filepath.Join(dir, "repo")
	gitRepo(t, repo, map[string]string{
		"ticker.sh": "#!/bin/sh\necho \"token: $TOKEN\"\nfor i in 1 2 3 4 5; do echo \"tick $i\"; sleep 1; done\n" +
			"n=0; while [ ! -e \"$1\" ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done\necho bye >&2\nexit 3\n",
	}, map[string]os.FileMode{"ticker.sh": 0o755})
	ctx := context.Background()
	for _, o := range []resource.Object{
		&resource.Repository{Meta: resource.Meta{Name: "live"}, URL: repo},
		&resource.Secret{Meta: resource.Meta{Name: "tok"}, Value: []byte(liveSecret)},
		&resource.Service{Meta: resource.Meta{Name: "ticker"}, Type: resource.Executable, Repository: "live",
			Filename: "ticker.sh", Args: []string{release}, Secrets: []resource.SecretBinding{{Secret: "tok", Env: "TOKEN"}}},
	} {
		if err := cl.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return release
}

// followTicker runs the ticker and follows it with cl's FollowOutput: all
// five lines must arrive while the run is still running, redacted, then
// the end with the service's exit code.
func followTicker(t *testing.T, cl *client.Client, release string) {
	t.Helper()
	ctx := context.Background()
	e, err := cl.Run(ctx, "ticker", wire.RunRequest{Async: true})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var stdout, stderr strings.Builder
	five := make(chan struct{})
	var once sync.Once
	type result struct {
		end wire.OutputEnd
		err error
	}
	done := make(chan result, 1)
	go func() {
		end, err := cl.FollowOutput(ctx, e.ID, "", func(o client.Output) error {
			mu.Lock()
			defer mu.Unlock()
			if o.Stream == "stderr" {
				stderr.WriteString(o.Text)
			} else {
				stdout.WriteString(o.Text)
			}
			if strings.Contains(stdout.String(), "tick 5\n") {
				once.Do(func() { close(five) })
			}
			return nil
		})
		done <- result{end, err}
	}()
	select {
	case <-five:
	case r := <-done:
		t.Fatalf("stream ended before the fifth line: %+v, %v; stdout %q", r.end, r.err, stdout.String())
	case <-time.After(90 * time.Second):
		mu.Lock()
		t.Fatalf("not all five lines within 90 s; got %q", stdout.String())
	}
	x, err := cl.Execution(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != execution.Running {
		t.Errorf("status when the fifth line arrived: %s, want running (the run waits for the test)", x.Status)
	}
	// Each version is one write of the record: submission, claim, the
	// followed mark, output flushes, heartbeats.
	t.Logf("record version when the fifth line arrived, %v after the start: %d", time.Since(x.CreatedAt).Round(100*time.Millisecond), x.Version)
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(90 * time.Second):
		t.Fatal("no end event within 90 s of the release")
	}
	if r.err != nil || r.end.Status != execution.Failed || r.end.ExitCode == nil || *r.end.ExitCode != 3 {
		t.Errorf("end: %+v, %v; want failed with exit code 3", r.end, r.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if stdout.String() != wantTicker || stderr.String() != "bye\n" {
		t.Errorf("streamed stdout %q stderr %q, want %q and %q, each once", stdout.String(), stderr.String(), wantTicker, "bye\n")
	}
}

// TestLiveOutputLocal: in-process execution streams from the executor's
// capture; `autogate logs -f` prints the lines as the service writes them
// and exits with its exit code.
func TestLiveOutputLocal(t *testing.T) {
	requireTool(t, "git")
	base := t.TempDir()
	dataDir := filepath.Join(base, "data")
	srv := startServer(t, dataDir, t.TempDir())
	srv.waitLine("active")
	ca, pass := filepath.Join(dataDir, "tls", "tls.crt"), filepath.Join(dataDir, "admin-password")
	cl, err := client.New(srv.url, apiLogin(t, srv.url, ca, pass), client.TLS{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	release := liveSetup(t, cl)
	t.Run("the API stream", func(t *testing.T) { followTicker(t, cl, release) })

	t.Run("logs -f", func(t *testing.T) {
		os.Remove(release)
		c := &cliRunner{t: t, config: filepath.Join(base, "cli.yaml")}
		c.must(0, "login", "--server", srv.url, "--ca-file", ca, "--password-file", pass)
		id := strings.TrimSpace(c.must(0, "run", "service", "executable", "ticker", "--async").stdout)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binPath, "logs", "-f", id)
		cmd.Env = append(os.Environ(), "AUTOGATE_CONFIG="+c.config)
		var errb strings.Builder
		cmd.Stderr = &errb
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 16)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		var got []string
		for len(got) < 6 {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("logs -f ended after %q; stderr %q", got, errb.String())
				}
				got = append(got, l)
			case <-time.After(90 * time.Second):
				t.Fatalf("logs -f printed only %q within 90 s", got)
			}
		}
		x, err := cl.Execution(context.Background(), id)
		if err != nil || x.Status != execution.Running {
			t.Errorf("status when logs -f had printed five ticks: %v %v, want running", x.Status, err)
		}
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		for l := range lines {
			got = append(got, l)
		}
		err = cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != 3 || strings.Join(got, "\n")+"\n" != wantTicker || !strings.Contains(errb.String(), "bye\n") ||
			!strings.Contains(errb.String(), "failed (exit code 3)") || strings.Contains(errb.String()+strings.Join(got, ""), liveSecret) {
			t.Errorf("logs -f: exit %d (%v), stdout %q, stderr %q; want 3, the redacted lines once", code, err, got, errb.String())
		}
	})
}

// TestLiveOutputDistributed: a runner process on the queue flushes the
// output to the DynamoDB record while the gateway follows it.
func TestLiveOutputDistributed(t *testing.T) {
	d := newDistributed(t, 1)
	cl := d.client(d.active(-1))
	release := liveSetup(t, cl)
	// A heartbeat far longer than the run: the lines can only come from the
	// flushes a follower asks for.
	d.startRunner(0, "--heartbeat", "30s")
	followTicker(t, cl, release)
}

// TestLiveOutputThroughManager: the stream crosses the manager's tunnel
// as the gateway writes it.
func TestLiveOutputThroughManager(t *testing.T) {
	requireTool(t, "git")
	requireManagerCmd(t, binPath)
	m := lightManager(t)
	m.localGateway("live-1", "live-gw")
	mc, err := client.New(m.mgr.url, m.mgrToken, client.TLS{CAFile: m.mgrCA})
	if err != nil {
		t.Fatal(err)
	}
	cl := mc.Cluster("live-1")
	release := liveSetup(t, cl)
	followTicker(t, cl, release) // the request timeout (3 s) is shorter than the run: streams are not cut by it
}

// lightManager starts a manager on its embedded store, without the
// DynamoDB emulator, and logs the CLI and the API in to it as admin.
func lightManager(t *testing.T) *managerEnv {
	t.Helper()
	dir := t.TempDir()
	mgrDir := filepath.Join(dir, "manager")
	mgr := startManager(t, binPath, mgrDir, nil, "--heartbeat", "1s", "--request-timeout", "3s", "--node", "mgr-0")
	mgr.waitLine("active")
	mgrCA := filepath.Join(mgrDir, "tls", "tls.crt")
	m := &managerEnv{t: t, dir: dir, mgr: mgr, mgrCA: mgrCA, hc: managerHTTP(t, mgrCA), creds: map[string]string{},
		mgrToken: apiLogin(t, mgr.url, mgrCA, filepath.Join(mgrDir, "admin-password")),
		cli:      &cliRunner{t: t, config: filepath.Join(dir, "cli.yaml")}}
	m.cli.must(0, "login", "--name", "manager", "--server", mgr.url, "--ca-file", mgrCA,
		"--password-file", filepath.Join(mgrDir, "admin-password"))
	return m
}

// localGateway registers cluster id and starts its one gateway, node, on
// an embedded store, connected to the manager; it returns when the
// manager routes to it.
func (m *managerEnv) localGateway(id, node string) *server {
	m.t.Helper()
	m.register(id)
	gw := startServerEnv(m.t, filepath.Join(m.dir, id, "data"), m.t.TempDir(), []string{"AUTOGATE_SECRET_KEY="},
		"--cluster", id, "--node", node, "--manager-url", m.mgr.url, "--manager-credential-file", m.creds[id],
		"--manager-ca-file", m.mgrCA)
	gw.waitLine("active")
	m.waitConnected(id, node)
	return gw
}
