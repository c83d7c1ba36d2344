package kvm

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// abiStruct lists the fixed-size, pointer-free types that may be passed to
// the kernel by address. Restricting ioctlPtr to this set means no caller
// can hand the kernel a Go value containing pointers, or a type whose
// layout is not pinned by sizes_unsafe.go.
type abiStruct interface {
	uint64 | Regs | Sregs | FPU | LAPICState | UserspaceMemoryRegion |
		PITConfig | IRQLevel | IOEventFD | IRQFD
}

// ioctl issues an ioctl whose argument is a plain integer (or absent), such
// as KVM_CHECK_EXTENSION or KVM_RUN. It returns the ioctl's non-negative
// result; a failure is returned as the bare unix.Errno for callers to wrap
// with context.
//
// A signal (Go's runtime preempts goroutines with SIGURG) can interrupt
// any ioctl; every one but KVM_RUN is simply issued again (seen on CI:
// KVM_CREATE_VM failing with EINTR). KVM_RUN returns EINTR to its caller:
// there it means "kicked".
func ioctl(fd int, req uint, arg uintptr) (int, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), arg)
		if errno == unix.EINTR && req != kvmRun {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), nil
	}
}

// ioctlPtr issues an ioctl whose argument is the address of *v.
func ioctlPtr[T abiStruct](fd int, req uint, v *T) (int, error) {
	// SAFETY: v points to a live, pointer-free value of a type whose size
	// matches the size encoded in req (see sizes_unsafe.go and ioctl.go), so
	// the kernel reads or writes only within it. The pointer is converted
	// to uintptr inside the unix.Syscall argument list, which keeps the
	// referenced object alive and unmoved until the call returns
	// (unsafe.Pointer rule 4). The kernel does not retain the address.
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(v)))
		if errno == unix.EINTR {
			continue // as in ioctl; KVM_RUN never comes here
		}
		if errno != 0 {
			return 0, errno
		}
		return int(r), nil
	}
}

// ioctlBuf issues an ioctl whose argument is a marshalled structure with a
// flexible array member (kvm_cpuid2, kvm_msrs, kvm_msr_list,
// kvm_irq_routing). The caller sizes buf from the header's element count,
// which is what bounds the kernel's access.
func ioctlBuf(fd int, req uint, buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, unix.EINVAL
	}
	// SAFETY: buf is non-empty, so unsafe.SliceData returns the address of
	// its first element. The marshalled header inside buf tells the kernel
	// how many elements follow, and callers size buf to hold exactly that
	// many, so the kernel stays within buf. The conversion to uintptr happens
	// inside the unix.Syscall argument list (unsafe.Pointer rule 4). The
	// kernel does not retain the address.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
	for errno == unix.EINTR { // as in ioctl
		r, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
	}
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// setUserMemoryRegion issues KVM_SET_USER_MEMORY_REGION mapping the guest
// physical range [gpa, gpa+len(host)) onto host. A nil host deletes the
// slot (memory_size 0).
func setUserMemoryRegion(fd int, slot, flags uint32, gpa uint64, host []byte) error {
	// SAFETY: this is the one place where KVM keeps a host address after the
	// ioctl returns: the slot maps guest-physical memory onto host. The
	// address is taken inside the unix.Syscall argument list, so no uintptr
	// outlives the expression on the Go side. The caller contract of
	// VM.SetUserMemoryRegion requires host to be an mmap'd mapping (never
	// Go-heap memory, which the garbage collector could free) that stays
	// mapped until the slot is deleted or the VM is closed.
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(kvmSetUserMemoryRegion),
		uintptr(unsafe.Pointer(&UserspaceMemoryRegion{
			Slot:          slot,
			Flags:         flags,
			GuestPhysAddr: gpa,
			MemorySize:    uint64(len(host)),
			UserspaceAddr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(host)))),
		})))
	if errno != 0 {
		return errno
	}
	return nil
}
