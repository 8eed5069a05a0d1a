package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// TestKill9LeavesNoServiceProcess is issue 12 item 4: kill -9 of the process
// running a service (a runner, or a gateway in local execution) leaves no
// process of the service alive a second later, its grandchild included.
func TestKill9LeavesNoServiceProcess(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) (cl *client.Client, victim *server, repoDir string)
	}{
		{"runner", func(t *testing.T) (*client.Client, *server, string) {
			d := newDistributedID(t, "orphan-runner", 1)
			cl := d.client(d.active(-1))
			return cl, d.startRunner(0), filepath.Join(d.dir, "tree-repo")
		}},
		{"gateway in local execution", func(t *testing.T) (*client.Client, *server, string) {
			c := newClusterID(t, "orphan-gw", 1)
			a := c.active(-1)
			return c.client(a), c.nodes[a], filepath.Join(c.dir, "tree-repo")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, victim, repoDir := tt.start(t)
			pidFile := filepath.Join(t.TempDir(), "pids")
			gitRepo(t, repoDir, map[string]string{
				"tree.sh": fmt.Sprintf("#!/bin/sh\nsleep 300 &\necho \"$$ $!\" > %[1]s.tmp\nmv %[1]s.tmp %[1]s\nwait\n", pidFile),
			}, map[string]os.FileMode{"tree.sh": 0o755})
			ctx := context.Background()
			if err := cl.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "tree"}, URL: repoDir}); err != nil {
				t.Fatal(err)
			}
			if err := cl.Create(ctx, &resource.Service{Meta: resource.Meta{Name: "tree"}, Type: resource.Executable, Repository: "tree", Filename: "tree.sh"}); err != nil {
				t.Fatal(err)
			}
			e, err := cl.Run(ctx, "tree", wire.RunRequest{Async: true})
			if err != nil {
				t.Fatal(err)
			}
			runningOn(t, cl, e.ID)
			var pids []int
			waitFor(t, func() bool {
				b, err := os.ReadFile(pidFile)
				if err != nil {
					return false
				}
				for _, f := range strings.Fields(string(b)) {
					pid, err := strconv.Atoi(f)
					if err != nil {
						t.Fatalf("pid file %q: %v", b, err)
					}
					pids = append(pids, pid)
				}
				return true
			})
			if len(pids) != 2 {
				t.Fatalf("got PIDs %v, want the service's and its grandchild's", pids)
			}
			for _, pid := range pids {
				if !processAlive(pid) {
					t.Fatalf("process %d not running before the kill", pid)
				}
			}
			victim.Killed = true
			if err := victim.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = victim.wait() // killed: the error says so
			killed := time.Now()
			deadline := killed.Add(time.Second)
			for _, pid := range pids {
				for processAlive(pid) {
					if time.Now().After(deadline) {
						t.Fatalf("process %d of the service still alive %v after kill -9 of its %s", pid, time.Since(killed), tt.name)
					}
					tick(10 * time.Millisecond)
				}
			}
			t.Logf("service tree gone %v after kill -9", time.Since(killed))
		})
	}
}

// processAlive reports whether pid is a live process (not a zombie: those
// are dead and wait only for a reaper).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}
