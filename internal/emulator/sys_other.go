//go:build !linux

package emulator

import (
	"os"
	"syscall"
)

// sysProcAttr puts the emulator in its own process group. Outside Linux
// there is no Pdeathsig: a test binary killed with -9 can leak the
// emulator, which then dies with the shell session or by hand.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func killGroup(pid int) {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		if p, err := os.FindProcess(pid); err == nil {
			_ = p.Kill() // best effort: it may be gone already
		}
	}
}
