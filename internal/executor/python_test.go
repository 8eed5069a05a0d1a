package executor

import (
	"archive/zip"
	"errors"
	"github.com/autogate/autogate/internal/logtest"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
)

// writeWheel writes a tiny pure-Python wheel of package autogate_testpkg
// into dir, the way TESTING.md describes (there is no package index here and
// no `wheel` package to build one).
func writeWheel(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "autogate_testpkg-0.1.0-py3-none-any.whl"))
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, content := range map[string]string{
		"autogate_testpkg/__init__.py":                   "VALUE = 'wheel-ok'\n",
		"autogate_testpkg-0.1.0.dist-info/METADATA":      "Metadata-Version: 2.1\nName: autogate-testpkg\nVersion: 0.1.0\n",
		"autogate_testpkg-0.1.0.dist-info/WHEEL":         "Wheel-Version: 1.0\nGenerator: autogate-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		"autogate_testpkg-0.1.0.dist-info/RECORD":        "",
		"autogate_testpkg-0.1.0.dist-info/top_level.txt": "autogate_testpkg\n",
	} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

const pyMain = `import json, os, sys
try:
    import autogate_testpkg
    print("pkg", autogate_testpkg.VALUE)
except ImportError:
    print("pkg missing")
print("argv", json.dumps(sys.argv[1:]))
print("inputs", open(os.environ["AUTOGATE_INPUTS_FILE"]).read())
print("prefix", sys.prefix)
`

func TestRunPythonScript(t *testing.T) {
	t.Parallel()
	if _, err := lookPath("python3", os.Getenv("PATH")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 not found: install python3 and python3-venv")
		}
		t.Skip("SKIPPING: python3 not found; install python3 and python3-venv to run this test")
	}
	wheels := t.TempDir()
	writeWheel(t, wheels)
	pip := PipConfig{NoIndex: true, FindLinks: []string{wheels}}

	t.Run("venv built once for concurrent and later runs", func(t *testing.T) {
		t.Parallel()
		logs := &logtest.Counter{}
		e := newExecutor(t, func(c *Config) { c.Pip = pip; c.Logger = slog.New(logs) })
		src := writeTree(t, map[string]string{"app/main.py": pyMain, "app/requirements.txt": "autogate-testpkg==0.1.0\n"})
		job := Job{
			Service:   resource.Service{Type: resource.PythonScript, WorkingDir: "app", Filename: "main.py", Requirements: "requirements.txt", Args: []string{"-v"}, TimeoutSeconds: 60},
			Inputs:    map[string]any{"name": "x y", "n": 2},
			SourceDir: src,
		}
		results := make([]Result, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { results[i], errs[i] = e.Run(t.Context(), job) })
		}
		wg.Wait()
		results[2], errs[2] = e.Run(t.Context(), job)
		for i, res := range results {
			if errs[i] != nil {
				t.Fatalf("run %d: %v", i, errs[i])
			}
			if res.Status != execution.Succeeded {
				t.Fatalf("run %d: %s (%s)\n%s", i, res.Status, res.Reason, res.Stderr.Data)
			}
			for _, want := range []string{"pkg wheel-ok\n", `argv ["-v", "--n", "2", "--name", "x y"]`, `inputs {"n":2,"name":"x y"}`, "prefix " + filepath.Join(e.cfg.CacheDir, "venvs")} {
				if !strings.Contains(res.Stdout.Data, want) {
					t.Errorf("run %d stdout:\n%s\nwant it to contain %q", i, res.Stdout.Data, want)
				}
			}
		}
		if n := logs.Count("python venv built"); n != 1 {
			t.Errorf("venv builds: got %d want 1", n)
		}
		dirs, err := filepath.Glob(filepath.Join(e.cfg.CacheDir, "venvs", "*.*"))
		if err != nil {
			t.Fatal(err)
		}
		var venvDirs []string
		for _, d := range dirs {
			if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
				venvDirs = append(venvDirs, d)
			}
		}
		if len(venvDirs) != 1 {
			t.Errorf("venv directories: got %v want one", venvDirs)
		}
	})

	t.Run("no requirements uses the plain interpreter", func(t *testing.T) {
		t.Parallel()
		e := newExecutor(t, func(c *Config) { c.Pip = pip })
		res, err := e.Run(t.Context(), Job{
			Service:   resource.Service{Type: resource.PythonScript, Filename: "main.py"},
			SourceDir: writeTree(t, map[string]string{"main.py": pyMain}),
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != execution.Succeeded || !strings.Contains(res.Stdout.Data, "pkg missing\n") || !strings.Contains(res.Stdout.Data, "argv []") {
			t.Errorf("got %s (%s) stdout %q stderr %q", res.Status, res.Reason, res.Stdout.Data, res.Stderr.Data)
		}
		if _, err := os.Stat(filepath.Join(e.cfg.CacheDir, "venvs")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("venvs dir: got %v want none built", err)
		}
	})

	t.Run("pip failure is a setup error quoting pip", func(t *testing.T) {
		t.Parallel()
		e := newExecutor(t, func(c *Config) { c.Pip = pip })
		_, err := e.Run(t.Context(), Job{
			Service:   resource.Service{Type: resource.PythonScript, Filename: "main.py", Requirements: "requirements.txt"},
			SourceDir: writeTree(t, map[string]string{"main.py": pyMain, "requirements.txt": "autogate-no-such-package==9.9\n"}),
		})
		if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "No matching distribution found for autogate-no-such-package") {
			t.Errorf("got %v want ErrSetup quoting pip's error", err)
		}
		if links, _ := filepath.Glob(filepath.Join(e.cfg.CacheDir, "venvs", "*")); len(links) > 1 {
			t.Errorf("venvs after a failed build: got %v want only the lock file", links)
		}
	})
}
