package emulator

import "syscall"

// sysProcAttr puts the emulator in its own process group (so Stop can kill
// the group) and has the kernel SIGKILL it if the test binary dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) {
	// The group ID is the PID (Setpgid). An error means it is already gone.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}
