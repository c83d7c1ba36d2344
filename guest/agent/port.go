package main

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// outb executes the x86 OUT instruction (port_amd64.s).
func outb(port uint16, value byte)

// writePort writes one byte to an x86 I/O port. The kernel's /dev/port
// would do, but not every kernel has it (Debian's cloud kernel lacks
// CONFIG_DEVPORT), so the agent asks for the port itself and writes it
// directly. I/O permission belongs to a thread, hence the lock.
func writePort(port uint16, value byte) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Ioperm(int(port), 1, 1); err != nil {
		return fmt.Errorf("write port %#x: ioperm: %w", port, err)
	}
	outb(port, value)
	if err := unix.Ioperm(int(port), 1, 0); err != nil {
		return fmt.Errorf("write port %#x: drop ioperm: %w", port, err)
	}
	return nil
}
