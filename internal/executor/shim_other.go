//go:build !linux

package executor

import "syscall"

const shimParentDeath = syscall.Signal(0)

// setParentDeath is a no-op: only Linux has a parent-death signal.
func setParentDeath(*syscall.SysProcAttr, syscall.Signal) {}

// runShim is never reached off Linux: New refuses ShimPath there.
func runShim([]string) int { return 127 }
