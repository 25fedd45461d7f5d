//go:build unix && !linux

package dynamotest

import "syscall"

// sysProcAttr puts the server in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// listensOn cannot tell without /proc; readiness then rests on the probe and
// on the bind-failure message.
func listensOn(pid, port int) (owned, known bool) { return false, false }
