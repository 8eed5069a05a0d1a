//go:build !linux

package executor

import "errors"

func memoryFree(string) (uint64, error) {
	return 0, errors.New("memory run directories are used on Linux only")
}

func ownPrivateDir(string) error { return errors.New("not on Linux") }
