package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/resource"
)

// The built binary supervises a service as the full binary's shim does: the
// service's output and exit code come through, and run by hand it refuses.
func TestShimBinaryRunsService(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, executor.ShimBinary)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e, err := executor.New(executor.Config{WorkRoot: filepath.Join(dir, "work"), CacheDir: filepath.Join(dir, "cache"), ShimPath: bin})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\necho \"hello $1\"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	svc := resource.Service{Meta: resource.Meta{Name: "svc"}, Type: resource.Executable, Filename: "run.sh", TimeoutSeconds: 60, Args: []string{"shim"}}
	res, err := e.Run(context.Background(), executor.Job{ExecutionID: "exec-1", Service: svc, SourceDir: src})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != execution.Failed || res.ExitCode != 3 || strings.TrimSpace(res.Stdout.Data) != "hello shim" {
		t.Errorf("run under the shim binary: %s exit %d stdout %q; want failed, exit 3, \"hello shim\"", res.Status, res.ExitCode, res.Stdout.Data)
	}
	var exit *exec.ExitError
	if out, err := exec.Command(bin).CombinedOutput(); !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "not run by hand") {
		t.Errorf("run by hand: %v %q; want exit 2 saying so", err, out)
	}
}
