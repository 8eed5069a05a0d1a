package executor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestShimNextTo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sibling func(t *testing.T, path string) // creates dir/autogate-shim, or not
		want    string                          // "shim" or "exe"
	}{
		{"no sibling", func(*testing.T, string) {}, "exe"},
		{"executable sibling", func(t *testing.T, p string) { write(t, p, 0o755) }, "shim"},
		{"sibling not executable", func(t *testing.T, p string) { write(t, p, 0o644) }, "exe"},
		{"sibling is a directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "exe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exe := filepath.Join(dir, "autogate")
			write(t, exe, 0o755)
			shim := filepath.Join(dir, ShimBinary)
			tc.sibling(t, shim)
			want := map[string]string{"shim": shim, "exe": exe}[tc.want]
			if got := shimNextTo(exe); got != want {
				t.Errorf("shimNextTo = %s, want %s", got, want)
			}
		})
	}
}

func write(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
}
