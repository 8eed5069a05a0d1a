package executor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/resource"
)

// supervisorEnv makes the test binary act as a service's supervisor (see
// superviseMain) instead of running tests; its value is a directory.
const supervisorEnv = "AUTOGATE_EXECUTOR_TEST_SUPERVISOR"

func TestMain(m *testing.M) {
	if code, ok := RunShim(os.Args); ok {
		os.Exit(code)
	}
	if dir := os.Getenv(supervisorEnv); dir != "" {
		os.Exit(superviseMain(dir))
	}
	os.Exit(m.Run())
}

// testShim is the shim the tests' executors use: this test binary, whose
// TestMain begins with RunShim.
func testShim(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// superviseMain runs one executable service under a shim until killed: the
// service writes its PID and its grandchildren's (one in its group, one that
// left it with setsid) to dir/pids, then waits.
func superviseMain(dir string) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	e, err := New(Config{WorkRoot: filepath.Join(dir, "work"), CacheDir: filepath.Join(dir, "cache"), ShimPath: exe})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	src := filepath.Join(dir, "src")
	body := "#!/bin/sh\nsleep 100 &\ng=$!\nsetsid sleep 100 &\ns=$!\necho \"$$ $g $s\" > \"$1.tmp\"\nmv \"$1.tmp\" \"$1\"\nwait\n"
	if err := os.MkdirAll(src, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(src, "run.sh"), []byte(body), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	svc := resource.Service{Meta: resource.Meta{Name: "svc"}, Type: resource.Executable, Filename: "run.sh", TimeoutSeconds: 300,
		Args: []string{filepath.Join(dir, "pids")}}
	res, err := e.Run(context.Background(), Job{ExecutionID: "exec-1", Service: svc, SourceDir: src})
	fmt.Fprintln(os.Stderr, "service ended:", res.Status, err) // only if nobody killed us
	return 1
}

// TestShimKillsTreeWhenSupervisorKilled is issue 12 item 4 at the package
// level: kill -9 of the process running the executor leaves nothing of the
// service alive a second later, grandchildren and a setsid one included.
func TestShimKillsTreeWhenSupervisorKilled(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed: cannot start a grandchild outside the group")
	}
	dir := t.TempDir()
	sup := exec.Command(testShim(t))
	sup.Env = append(os.Environ(), supervisorEnv+"="+dir)
	sup.Stderr = os.Stderr
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	waitFor(t, 20*time.Second, "the service to write its PIDs", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "pids"))
		if err != nil {
			return false
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("pids file %q: %v", b, err)
			}
			pids = append(pids, pid)
		}
		return true
	})
	if len(pids) != 3 {
		t.Fatalf("got PIDs %v, want service, grandchild, setsid grandchild", pids)
	}
	for _, pid := range pids {
		if processGone(pid) {
			t.Fatalf("process %d gone before the supervisor was killed", pid)
		}
	}
	if err := sup.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = sup.Wait() // killed: the error says so
	killed := time.Now()
	for _, pid := range pids {
		waitFor(t, time.Second-time.Since(killed), fmt.Sprintf("process %d to die with its supervisor", pid), func() bool { return processGone(pid) })
	}
	t.Logf("service tree gone %v after kill -9 of its supervisor", time.Since(killed))
}

// TestShimReportsExit checks the shim hands the service's ending through
// unchanged: its exit code, or the signal that ended it.
func TestShimReportsExit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		wantCode int
		wantWhy  string
	}{
		{"exit code", "exit 3", 3, "exit code 3"},
		{"signal the Go runtime ignores", "kill -USR1 $$", -1, "terminated by signal 10 (user defined signal 1)"},
		{"SIGTERM", "kill -TERM $$", -1, "terminated by signal 15 (terminated)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExecutor(t, nil)
			res, err := runScript(t, e, tt.body, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tt.wantCode || res.Reason != tt.wantWhy {
				t.Errorf("got (%d, %q) want (%d, %q)", res.ExitCode, res.Reason, tt.wantCode, tt.wantWhy)
			}
		})
	}
}
