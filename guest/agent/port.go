package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// outb executes the x86 OUT instruction (port_amd64.s).
func outb(port uint16, value byte)

// portAttempts bounds the retries of a port write that faulted.
const portAttempts = 3

// writePort writes one byte to an x86 I/O port: through the kernel's
// /dev/port when there is one, or else (Debian's cloud kernel lacks
// CONFIG_DEVPORT) with the agent's own OUT after asking for the port with
// ioperm. I/O permission belongs to a thread, hence the lock.
//
// The OUT can still fault (#GP, SIGSEGV): seen now and then in the nested
// harness, where QEMU's software CPU emulates the CPU that checks the I/O
// permission bitmap, and every time under QEMU's q35 machine. A fault is
// turned into an error and the write retried, so that the agent, the
// guest's init, never dies of it.
func writePort(port uint16, value byte) error {
	// The kernel's own OUT, where it offers one: no I/O permission bitmap
	// is involved (see below).
	if f, err := os.OpenFile("/dev/port", os.O_WRONLY, 0); err == nil {
		_, werr := f.WriteAt([]byte{value}, int64(port))
		f.Close()
		if werr == nil {
			return nil
		}
	}
	var err error
	for range portAttempts {
		if err = tryWritePort(port, value); err == nil {
			return nil
		}
	}
	return err
}

func tryWritePort(port uint16, value byte) (err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write port %#x: the OUT instruction faulted: %v", port, r)
		}
	}()
	if err := unix.Ioperm(int(port), 1, 1); err != nil {
		return fmt.Errorf("write port %#x: ioperm: %w", port, err)
	}
	outb(port, value)
	if err := unix.Ioperm(int(port), 1, 0); err != nil {
		return fmt.Errorf("write port %#x: drop ioperm: %w", port, err)
	}
	return nil
}
