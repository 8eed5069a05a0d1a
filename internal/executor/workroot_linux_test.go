package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memBase returns a fresh directory on /dev/shm, which must be a tmpfs
// (it is on Linux hosts and in CI).
func memBase(t *testing.T) string {
	t.Helper()
	if _, err := memoryFree(SharedMemoryDir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs %s as a tmpfs: %v", SharedMemoryDir, err)
		}
		t.Skipf("%s: %v", SharedMemoryDir, err)
	}
	base, err := os.MkdirTemp(SharedMemoryDir, "workroot-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return base
}

func TestWorkRootUnder(t *testing.T) {
	fallback := filepath.Join(t.TempDir(), "work")
	own := fmt.Sprintf("autogate-%d", os.Getuid())
	tests := []struct {
		name    string
		setup   func(t *testing.T, base string) // what is at base before
		minFree uint64
		memory  bool   // want the directory under base
		reason  string // part of the reason
	}{
		{"fresh tmpfs", func(*testing.T, string) {}, 1 << 20, true, "memory file system"},
		{"own private directory already there", func(t *testing.T, base string) {
			if err := os.Mkdir(filepath.Join(base, own), 0o700); err != nil {
				t.Fatal(err)
			}
		}, 1 << 20, true, "memory file system"},
		{"too little free", func(*testing.T, string) {}, 1 << 62, false, "MiB free, under"},
		{"a symlink planted there", func(t *testing.T, base string) {
			if err := os.Symlink(t.TempDir(), filepath.Join(base, own)); err != nil {
				t.Fatal(err)
			}
		}, 1 << 20, false, "not a directory"},
		{"a directory others may enter", func(t *testing.T, base string) {
			p := filepath.Join(base, own)
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}, 1 << 20, false, "want 0700"},
		{"a file planted there", func(t *testing.T, base string) {
			if err := os.WriteFile(filepath.Join(base, own), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, 1 << 20, false, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := memBase(t)
			tt.setup(t, base)
			dir, reason := workRootUnder(base, tt.minFree, fallback)
			want := fallback
			if tt.memory {
				want = filepath.Join(base, own)
			}
			if dir != want || !strings.Contains(reason, tt.reason) {
				t.Fatalf("workRootUnder = %q (%s), want %q (…%s…)", dir, reason, want, tt.reason)
			}
			if tt.memory {
				if err := ownPrivateDir(dir); err != nil {
					t.Errorf("chosen directory: %v", err)
				}
			}
		})
	}
	t.Run("not a tmpfs", func(t *testing.T) {
		disk, _ := os.Getwd() // the source tree
		if _, err := memoryFree(disk); err == nil {
			t.Skipf("%s is a tmpfs here", disk)
		}
		if dir, reason := workRootUnder(disk, 1, fallback); dir != fallback || !strings.Contains(reason, "not a memory file system") {
			t.Errorf("workRootUnder(%s) = %q (%s), want the fallback", disk, dir, reason)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if dir, _ := workRootUnder(filepath.Join(t.TempDir(), "none"), 1, fallback); dir != fallback {
			t.Errorf("workRootUnder(missing) = %q, want the fallback", dir)
		}
	})
}
