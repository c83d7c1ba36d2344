package isolation

import "golang.org/x/sys/unix"

// kexecFileLoad calls kexec_file_load with no command line (length 0, NULL:
// the kernel reads it only after the kernel fd) and no flags.
func kexecFileLoad(kernelFD, initrdFD int) error {
	_, _, errno := unix.Syscall6(unix.SYS_KEXEC_FILE_LOAD, uintptr(kernelFD), uintptr(initrdFD), 0, 0, 0, 0)
	return errnoErr(errno)
}

// ioperm turns access to num I/O ports from from on or off, for the calling
// thread only.
func ioperm(from, num int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return unix.Ioperm(from, num, v)
}
