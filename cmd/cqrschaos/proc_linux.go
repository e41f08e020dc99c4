package main

import "syscall"

// sysProcAttr puts a child in its own process group, so a Ctrl-C reaches
// only the suite (which stops the children in order), and has the kernel
// kill it should the suite die without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
