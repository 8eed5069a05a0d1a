package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/autogate/autogate/internal/executor"
)

var (
	benchShimOnce sync.Once
	benchShimPath string
	benchShimErr  error
)

// benchShim builds cmd/autogate-shim once per test binary, so in-process
// benchmarks start services under the shim an installation has next to
// the autogate binary (executor.SelfShim), not under this test binary.
func benchShim(tb testing.TB) string {
	tb.Helper()
	benchShimOnce.Do(func() {
		dir, err := os.MkdirTemp("", "autogate-bench-shim")
		if err != nil {
			benchShimErr = err
			return
		}
		benchShimPath = filepath.Join(dir, executor.ShimBinary)
		if out, err := exec.Command("go", "build", "-o", benchShimPath, "../autogate-shim").CombinedOutput(); err != nil {
			benchShimErr = err
			tb.Logf("go build autogate-shim: %s", out)
		}
	})
	if benchShimErr != nil {
		tb.Fatalf("build the shim: %v", benchShimErr)
	}
	return benchShimPath
}
