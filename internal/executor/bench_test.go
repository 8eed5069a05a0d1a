package executor

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
)

const noopScript = "#!/bin/sh\nexit 0\n"

// BenchmarkRunNoop measures a whole Executor.Run of a no-op executable:
// run dir, copy, inputs file, process group, capture, cleanup. The run
// directories are on disk (the test's temp dir, DATA_DIR/work's file
// system here) and on memory (DefaultWorkRoot), side by side; memory-shim
// starts the service through the long-lived shim, as the server does.
func BenchmarkRunNoop(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "noop.sh"), []byte(noopScript), 0o755); err != nil {
		b.Fatal(err)
	}
	disk := filepath.Join(dir, "work")
	memory, why := DefaultWorkRoot(disk)
	shim, err := os.Executable() // TestMain serves as the shim
	if err != nil {
		b.Fatal(err)
	}
	for _, root := range []struct {
		name, dir, shim string
	}{{"disk", disk, ""}, {"memory", memory, ""}, {"memory-shim", memory, shim}} {
		b.Run(root.name, func(b *testing.B) {
			if root.dir == memory && memory == disk {
				b.Skipf("no memory run directory here: %s", why)
			}
			e, err := New(Config{WorkRoot: root.dir, CacheDir: filepath.Join(dir, "cache"), ShimPath: root.shim})
			if err != nil {
				b.Fatal(err)
			}
			job := Job{ExecutionID: "bench", Service: resource.Service{Type: resource.Executable, Filename: "noop.sh"}, SourceDir: src,
				Inputs: map[string]any{"a": "b"}}
			for b.Loop() {
				res, err := e.Run(b.Context(), job)
				if err != nil || res.Status != execution.Succeeded {
					b.Fatalf("Run: %v %+v", err, res)
				}
			}
		})
	}
}

// BenchmarkBareExec runs the same script with plain os/exec, the floor
// BenchmarkRunNoop is compared with.
func BenchmarkBareExec(b *testing.B) {
	p := filepath.Join(b.TempDir(), "noop.sh")
	if err := os.WriteFile(p, []byte(noopScript), 0o755); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := exec.CommandContext(b.Context(), p, "--a", "b").Run(); err != nil {
			b.Fatal(err)
		}
	}
}
