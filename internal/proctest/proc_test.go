package proctest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// script starts sh -c body as a Proc of t, its log under t's temp dir.
func script(t testing.TB, dir, body string) *Proc {
	t.Helper()
	return Start(t, filepath.Join(dir, "sh.log"), nil, "/bin/sh", "-c", body)
}

// A clean exit on SIGTERM: the trap exits 0.
const onTERM = `trap 'exit 0' TERM; `

// untilTERM loops until the trap of onTERM ends it.
const untilTERM = `while :; do sleep 0.05; done`

func TestWaitLineKeepsOtherLines(t *testing.T) {
	p := script(t, t.TempDir(), onTERM+`echo first; echo active; echo "listening on https://127.0.0.1:1"; `+untilTERM)
	tests := []struct{ want, got string }{
		{"listening on", "listening on https://127.0.0.1:1"},
		{"active", "active"},
		{"first", "first"},
	}
	for _, tt := range tests {
		if got := p.WaitLine(tt.want); got != tt.got {
			t.Errorf("WaitLine(%q) = %q, want %q", tt.want, got, tt.got)
		}
	}
	p.Stop()
	if !p.Exited() {
		t.Error("Exited() false after Stop")
	}
}

func TestTakeLinesLeavesTheOthers(t *testing.T) {
	p := script(t, t.TempDir(), onTERM+`echo m1; echo other; echo m2; echo ready; `+untilTERM)
	p.WaitLine("ready")
	got := p.TakeLines(200*time.Millisecond, func(l string) bool { return strings.HasPrefix(l, "m") })
	if strings.Join(got, ",") != "m1,m2" {
		t.Errorf("TakeLines = %q, want [m1 m2]", got)
	}
	if l := p.WaitLine("o"); l != "other" {
		t.Errorf("WaitLine(o) after TakeLines = %q, want other", l)
	}
	if got := p.TakeLines(100*time.Millisecond, func(string) bool { return true }); len(got) != 0 {
		t.Errorf("TakeLines again = %q, want none: they were taken", got)
	}
}

// TestNeverBlocksOnStdout: a process that writes much more than a pipe
// holds, with nobody calling WaitLine, still runs to its end.
func TestNeverBlocksOnStdout(t *testing.T) {
	p := script(t, t.TempDir(), `i=0; while [ $i -lt 20000 ]; do echo "line $i ......................................"; i=$((i+1)); done; echo last`)
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the process did not finish writing 20000 lines within 60s: blocked on stdout")
	}
	if got := p.WaitLine("last"); got != "last" {
		t.Errorf("WaitLine(last) = %q after exit", got)
	}
}

func TestStderrInLog(t *testing.T) {
	dir := t.TempDir()
	p := script(t, filepath.Join(dir, "sub"), onTERM+`echo to-stderr >&2; echo ready; `+untilTERM)
	p.WaitLine("ready")
	p.Stop()
	raw, err := os.ReadFile(p.LogPath)
	if err != nil || string(raw) != "to-stderr\n" {
		t.Errorf("log %s: %q, %v; want %q", p.LogPath, raw, err, "to-stderr\n")
	}
}

// fakeTB records failures; Fatal ends the calling goroutine as testing does.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	fatal    string
	errors   []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// run calls fn with f in a goroutine, as a test would run, then f's
// cleanups in reverse order.
func (f *fakeTB) run(fn func(tb testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			for i := len(f.cleanups) - 1; i >= 0; i-- {
				f.cleanups[i]()
			}
		}()
		fn(f)
	}()
	<-done
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		act        func(p *Proc)
		wantFatal  string // a substring; "" wants none
		wantErrors []string
	}{
		{"stdout ends before the line", `echo hello; echo oops >&2; exit 3`,
			func(p *Proc) { p.WaitLine("listening on") }, `sh stdout ended (exit: exit status 3) before "listening on":` + "\noops", nil},
		{"dirty exit on SIGTERM fails", `trap 'exit 4' TERM; echo ready; ` + untilTERM,
			func(p *Proc) { p.WaitLine("ready") }, "", []string{"exit after SIGTERM: exit status 4"}},
		{"killed on purpose: any exit", onTERM + `echo ready; ` + untilTERM,
			func(p *Proc) {
				p.WaitLine("ready")
				if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
					panic(err)
				}
				p.Killed = true
			}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			var p *Proc
			f.run(func(tb testing.TB) {
				p = Start(tb, filepath.Join(t.TempDir(), "sh.log"), nil, "/bin/sh", "-c", tt.body)
				tt.act(p)
			})
			if tt.wantFatal == "" && f.fatal != "" || !strings.Contains(f.fatal, tt.wantFatal) {
				t.Errorf("fatal %q, want %q", f.fatal, tt.wantFatal)
			}
			ok := len(f.errors) == len(tt.wantErrors)
			for i := 0; ok && i < len(f.errors); i++ {
				ok = strings.Contains(f.errors[i], tt.wantErrors[i])
			}
			if !ok {
				t.Errorf("errors %q, want %q", f.errors, tt.wantErrors)
			}
			if !p.Exited() {
				t.Error("the process was not stopped at cleanup")
			}
		})
	}
}

func TestFreePort(t *testing.T) {
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") || addr == "127.0.0.1:0" {
		t.Fatalf("FreeAddr = %q", addr)
	}
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}
