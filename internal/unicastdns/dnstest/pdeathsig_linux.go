package dnstest

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel kill named if the test process dies first.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
