package isolation

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// checkPrivileged tries the privileged operations. hostPID is the process
// to ptrace-read; 0 reads PID 1 instead.
func checkPrivileged(hostPID int) Privileged {
	p := Privileged{
		LoadModule: checkLoadModule(),
		Kexec:      checkKexec(),
		PtracePID:  hostPID,
		IOPorts:    checkIOPorts(),
	}
	if p.PtracePID == 0 {
		p.PtracePID = 1
	}
	p.PtraceRead = checkPtraceRead(p.PtracePID)
	p.MknodBlock, p.Mount = checkScratchOps(scratchParents()...)
	return p
}

// checkLoadModule calls finit_module on fd -1: the kernel checks
// CAP_SYS_MODULE (and modules_disabled) before it looks at the fd, so EBADF
// means a module would have loaded and EPERM that it would not. A kernel
// built without modules answers ENOSYS.
//
// The parameter string is NULL: the kernel copies it only once the module
// file is read, which a bad fd never gets to, and a NULL pointer keeps
// unsafe out of this package (rule 3 of STYLE.md).
func checkLoadModule() Check {
	fd := -1
	_, _, errno := unix.Syscall(unix.SYS_FINIT_MODULE, uintptr(fd), 0, 0)
	return outcome(errnoErr(errno), unix.EBADF)
}

// checkKexec calls kexec_file_load on fds -1: the kernel checks
// CAP_SYS_BOOT (and kexec_load_disabled) before it reads the kernel's fd,
// so EBADF means a kernel would have loaded and EPERM that it would not.
// Flags stay 0: KEXEC_FILE_UNLOAD would drop a kernel loaded for kexec.
func checkKexec() Check {
	return outcome(kexecFileLoad(-1, -1), unix.EBADF)
}

// checkPtraceRead reads one byte at address 0 of process pid: the kernel
// checks ptrace access (ESRCH when it does not see the process, EPERM when
// it may not trace it) before it touches memory, so EFAULT (nothing mapped
// at 0) means the read was allowed.
func checkPtraceRead(pid int) Check {
	var buf [1]byte
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: 0, Len: len(buf)}}
	_, err := unix.ProcessVMReadv(pid, local, remote, 0)
	return outcome(err, unix.EFAULT)
}

// checkIOPorts asks for port 0x80 (the POST diagnostic port, where a stray
// write would do no harm anyway) and drops it again at once; it never
// touches the port. ioperm is per thread, so both calls run on one locked
// thread. Should the drop fail, the goroutine ends still locked, and the
// runtime ends the thread, and the permission with it.
func checkIOPorts() Check {
	done := make(chan Check, 1)
	go func() {
		runtime.LockOSThread()
		if err := ioperm(0x80, 1, true); err != nil {
			runtime.UnlockOSThread()
			done <- outcome(err)
			return
		}
		if err := ioperm(0x80, 1, false); err != nil {
			done <- Check{Allowed: true, Result: "ok, but dropping it failed: " + describe(err)}
			return
		}
		runtime.UnlockOSThread()
		done <- Check{Allowed: true, Result: "ok"}
	}()
	return <-done
}

// checkScratchOps tries a block device node and a tmpfs mount in a fresh
// directory in the first of parents that takes one, undoing each at once;
// both are skipped where no directory can be made (a read-only root).
func checkScratchOps(parents ...string) (mknod, mount Check) {
	dir, err := scratchDir(parents)
	if err != nil {
		why := "no writable directory (" + describe(err) + ")"
		return skipped(why), skipped(why)
	}
	defer os.RemoveAll(dir)
	return checkMknod(dir), checkMount(dir)
}

// scratchParents are where the probe may make its scratch directory:
// $TMPDIR or /tmp, else the tmpfs directories a container usually has
// writable even over a read-only root.
func scratchParents() []string {
	return []string{os.TempDir(), "/dev/shm", "/run"}
}

// scratchDir makes a private directory in the first of parents that allows.
func scratchDir(parents []string) (string, error) {
	var errs []error
	for _, parent := range parents {
		dir, err := os.MkdirTemp(parent, "govmm-probe-")
		if err == nil {
			return dir, nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// checkMknod makes a block device node for major 1, minor 0 (RAM disk 0)
// and removes it. Nothing opens it: making it is what CAP_MKNOD and the
// devices cgroup allow or not.
func checkMknod(dir string) Check {
	path := filepath.Join(dir, "blk")
	err := unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(1, 0)))
	if err != nil {
		return outcome(err)
	}
	if err := os.Remove(path); err != nil {
		return Check{Allowed: true, Result: "ok, but removing it failed: " + describe(err)}
	}
	return Check{Allowed: true, Result: "ok"}
}

// checkMount mounts a tiny tmpfs and unmounts it at once. If the directory
// sits on a shared mount, peers see the mount come and go: the only trace,
// and a fleeting one.
func checkMount(dir string) Check {
	target := filepath.Join(dir, "mnt")
	if err := os.Mkdir(target, 0o700); err != nil {
		return skipped(fmt.Sprintf("mount point: %s", describe(err)))
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := unix.Mount("none", target, "tmpfs", flags, "size=4k,mode=700"); err != nil {
		return outcome(err)
	}
	if err := unix.Unmount(target, 0); err != nil {
		// Nothing uses it, but should it be busy, detach it all the same.
		if err2 := unix.Unmount(target, unix.MNT_DETACH); err2 != nil {
			return Check{Allowed: true, Result: "ok, but unmounting it failed: " + describe(err2)}
		}
	}
	return Check{Allowed: true, Result: "ok"}
}

// errnoErr turns a raw syscall's errno into an error, nil for 0.
func errnoErr(errno unix.Errno) error {
	if errno == 0 {
		return nil
	}
	return errno
}
