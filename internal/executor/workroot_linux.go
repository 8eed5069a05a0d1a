package executor

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

const tmpfsMagic = 0x01021994 // TMPFS_MAGIC, statfs(2)

// memoryFree returns the bytes free on dir's file system, which must be a
// tmpfs.
func memoryFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	if st.Type != tmpfsMagic {
		return 0, errors.New("not a memory file system (tmpfs)")
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// ownPrivateDir checks that dir is a directory (not a symlink) owned by
// this process's user with mode 0700.
func ownPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case !ok || int(st.Uid) != os.Getuid():
		return fmt.Errorf("%s belongs to another user", dir)
	case fi.Mode().Perm() != 0o700:
		return fmt.Errorf("%s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
	return nil
}
