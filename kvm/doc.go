// Package kvm is govmm's only window onto the Linux KVM ABI.
//
// Everything that mirrors <linux/kvm.h> (structures, ioctl numbers,
// capability and exit-reason codes) lives here, so that the rest of govmm
// talks in typed Go values and never in raw file descriptors, pointers or
// byte offsets. The layouts and semantics follow the kernel's
// Documentation/virt/kvm/api.rst; each mirrored structure says which kernel
// structure and which section of that document it comes from.
//
// The package targets linux/amd64: the register and segment structures are
// the x86 ones from arch/x86/include/uapi/asm/kvm.h.
//
// # Objects
//
// The KVM API is a hierarchy of file descriptors (api.rst section 1,
// "General description"):
//
//   - [System] wraps the /dev/kvm descriptor (system ioctls): capability
//     queries, the supported CPUID table, VM creation. Obtain it with [Open].
//   - [VM] wraps a VM descriptor (VM ioctls): guest memory slots, the
//     in-kernel interrupt controllers and PIT, interrupt lines, eventfds,
//     vCPU creation.
//   - [VCPU] wraps a vCPU descriptor (vCPU ioctls) and its shared kvm_run
//     page: register state, CPUID, MSRs, and [VCPU.Run], which decodes every
//     exit exactly once into a typed [Exit].
//
// # Unsafe code
//
// Only files named *_unsafe.go import package unsafe. They contain the raw
// ioctl system calls and the compile-time assertions that every mirrored
// structure has exactly the kernel's size. Pointers are converted to
// uintptr only inside the unix.Syscall call expression, as required by
// rule (4) of the unsafe.Pointer documentation. The kvm_run page is an
// ordinary []byte from mmap and is decoded with encoding/binary at the
// offsets documented in api.rst section 5, "The kvm_run structure".
//
// # Concurrency and lifetime
//
// A [System] and a [VM] may be used from several goroutines. A [VCPU] must
// be driven by one goroutine at a time (ideally one locked to its OS thread
// with runtime.LockOSThread, so that signals can be aimed at it); only
// [VCPU.SetImmediateExit] may be called from elsewhere. Objects do not own
// their children: close every VCPU, then the VM, then the System, each
// after the goroutines that use it have stopped.
package kvm
