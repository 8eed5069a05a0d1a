//go:build !linux

package executor

import (
	"context"
	"syscall"
)

const shimParentDeath = syscall.Signal(0)

// setParentDeath is a no-op: only Linux has a parent-death signal.
func setParentDeath(*syscall.SysProcAttr, syscall.Signal) {}

// runShim is never reached off Linux: New refuses ShimPath there.
func runShim([]string) int { return 127 }

const reaperArg0 = "autogate-service-reaper"

// runReaper is never reached off Linux, as runShim.
func runReaper([]string) int { return 127 }

// reaperState is empty off Linux: there is no reaper.
type reaperState struct{}

// startAndWaitReaped is never used off Linux (New refuses ShimPath).
func (e *Executor) startAndWaitReaped(context.Context, processSpec) (processResult, bool, error) {
	return processResult{}, false, nil
}
