package vmm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"
)

// Config describes one VM.
type Config struct {
	Kernel string // bzImage path
	Initrd string // initramfs path, optional
	// Vmlinux, optional, is Kernel's payload already decompressed (an ELF
	// vmlinux): booted directly, it skips the guest's decompressor.
	Vmlinux     string
	MemoryBytes uint64 // guest RAM
	CPUs        int
	Cmdline     string // kernel command line
	Disks       []DiskConfig
	Nets        []NetConfig

	// Console and Log are this process's; they do not travel to the VMM
	// process with the rest (see package vmmproc).
	Console io.Writer    `json:"-"` // guest serial output; nil discards it
	Log     *slog.Logger `json:"-"` // govmm's own messages; nil means slog.Default()
	// Launch is when the user asked for the VM (for boot timing); zero
	// means when New is called. Passed across exec (vmmproc), it loses
	// its monotonic reading: the boot time is then wall-clock time.
	Launch time.Time
}

// DefaultCmdline boots Debian's stock kernel quickly and cleanly on govmm's
// machine: console on the first UART; reboot through the keyboard
// controller (which govmm answers, so reboot and panic end the VM at once);
// panic reboots instead of hanging; no probing for hardware that is not
// there (the i8042's AUX port and mux, PnP for it, more UARTs); the TSC is
// trusted because KVM's kvmclock provides its frequency.
const DefaultCmdline = "console=ttyS0 quiet reboot=k panic=-1 i8042.noaux i8042.nomux i8042.nopnp 8250.nr_uarts=1 tsc=reliable no_timer_check"

// validate checks what can be checked before touching KVM.
func (c *Config) validate(maxVCPUs int) error {
	if c.Kernel == "" {
		return errors.New("no kernel: pass --kernel PATH (a bzImage)")
	}
	if c.MemoryBytes < 64<<20 {
		return fmt.Errorf("guest memory %d MiB is too small: Linux needs at least 64 MiB", c.MemoryBytes>>20)
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		total := uint64(si.Totalram) * uint64(si.Unit)
		if c.MemoryBytes > total {
			return fmt.Errorf("guest memory %d MiB is more than this host's %d MiB of RAM", c.MemoryBytes>>20, total>>20)
		}
	}
	if c.CPUs < 1 {
		return fmt.Errorf("%d vCPUs: need at least 1", c.CPUs)
	}
	if c.CPUs > maxVCPUs {
		return fmt.Errorf("%d vCPUs: this host's KVM allows at most %d", c.CPUs, maxVCPUs)
	}
	return nil
}
