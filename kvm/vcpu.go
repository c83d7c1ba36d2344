package kvm

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sys/unix"
)

// VCPU is a virtual CPU: the handle for vCPU ioctls plus the kvm_run area
// the kernel shares with it. Drive it from one goroutine (preferably
// locked to its OS thread); only SetImmediateExit may be called from
// another.
type VCPU struct {
	fd  int
	id  int
	run []byte
}

// ID returns the id the vCPU was created with.
func (v *VCPU) ID() int { return v.id }

// Close unmaps the kvm_run area and closes the vCPU descriptor. No Exit
// returned by Run may be used afterwards, since their Data aliases the
// unmapped area. Closing twice is a no-op.
func (v *VCPU) Close() error {
	var result *multierror.Error
	if v.run != nil {
		if err := unix.Munmap(v.run); err != nil {
			result = multierror.Append(result, fmt.Errorf("unmap kvm_run of vcpu %d: %w", v.id, err))
		}
		v.run = nil
	}
	if v.fd >= 0 {
		if err := unix.Close(v.fd); err != nil {
			result = multierror.Append(result, fmt.Errorf("close vcpu %d: %w", v.id, err))
		}
		v.fd = -1
	}
	return result.ErrorOrNil()
}

// Run enters the guest until the next exit KVM does not handle itself, and
// returns that exit decoded (api.rst, section "KVM_RUN"). If the call was
// interrupted (a signal, or immediate_exit), or an application processor
// was just started, it returns IntrExit with a nil error rather than
// retrying, so the caller can react to whatever kicked it.
//
// Data slices in the returned Exit alias the kvm_run area: for reads, fill
// them before the next Run.
func (v *VCPU) Run() (Exit, error) {
	if _, err := ioctl(v.fd, kvmRun, 0); err != nil {
		// EAGAIN: an application processor that was waiting for
		// INIT/SIPI has just received them; KVM wants KVM_RUN again
		// (arch/x86/kvm/x86.c, vcpu_run's KVM_MP_STATE_UNINITIALIZED
		// path). Both are "nothing happened, run again" for the caller.
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			return IntrExit{}, nil
		}
		return nil, fmt.Errorf("run vcpu %d (KVM_RUN): %w", v.id, err)
	}
	exit, err := decodeExit(v.run)
	if err != nil {
		return nil, fmt.Errorf("run vcpu %d: %w", v.id, err)
	}
	return exit, nil
}

// SetImmediateExit sets or clears kvm_run.immediate_exit. While it is set,
// every Run returns IntrExit at once without entering the guest (api.rst,
// section 5, "immediate_exit"). To kick a vCPU from another goroutine: set
// it, then signal the vCPU's thread in case it is already inside the guest;
// the vCPU goroutine clears it once it has handled the kick.
//
// The store is a single byte written to memory shared with the kernel, so
// it needs no lock; it must not race with Close.
func (v *VCPU) SetImmediateExit(on bool) {
	var b byte
	if on {
		b = 1
	}
	v.run[runOffImmediateExit] = b
}

// GetRegs reads the general-purpose registers (KVM_GET_REGS).
func (v *VCPU) GetRegs() (Regs, error) {
	var r Regs
	if _, err := ioctlPtr(v.fd, kvmGetRegs, &r); err != nil {
		return Regs{}, fmt.Errorf("get registers of vcpu %d (KVM_GET_REGS): %w", v.id, err)
	}
	return r, nil
}

// SetRegs writes the general-purpose registers (KVM_SET_REGS). Bit 1 of
// RFLAGS is reserved and must be set.
func (v *VCPU) SetRegs(r Regs) error {
	if _, err := ioctlPtr(v.fd, kvmSetRegs, &r); err != nil {
		return fmt.Errorf("set registers of vcpu %d (KVM_SET_REGS): %w", v.id, err)
	}
	return nil
}

// GetSregs reads the special registers (KVM_GET_SREGS).
func (v *VCPU) GetSregs() (Sregs, error) {
	var s Sregs
	if _, err := ioctlPtr(v.fd, kvmGetSregs, &s); err != nil {
		return Sregs{}, fmt.Errorf("get special registers of vcpu %d (KVM_GET_SREGS): %w", v.id, err)
	}
	return s, nil
}

// SetSregs writes the special registers (KVM_SET_SREGS).
func (v *VCPU) SetSregs(s Sregs) error {
	if _, err := ioctlPtr(v.fd, kvmSetSregs, &s); err != nil {
		return fmt.Errorf("set special registers of vcpu %d (KVM_SET_SREGS): %w", v.id, err)
	}
	return nil
}

// GetFPU reads the x87/SSE state (KVM_GET_FPU).
func (v *VCPU) GetFPU() (FPU, error) {
	var f FPU
	if _, err := ioctlPtr(v.fd, kvmGetFPU, &f); err != nil {
		return FPU{}, fmt.Errorf("get fpu state of vcpu %d (KVM_GET_FPU): %w", v.id, err)
	}
	return f, nil
}

// SetFPU writes the x87/SSE state (KVM_SET_FPU).
func (v *VCPU) SetFPU(f FPU) error {
	if _, err := ioctlPtr(v.fd, kvmSetFPU, &f); err != nil {
		return fmt.Errorf("set fpu state of vcpu %d (KVM_SET_FPU): %w", v.id, err)
	}
	return nil
}

// GetLAPIC reads the in-kernel local APIC's registers (KVM_GET_LAPIC).
// Requires an in-kernel irqchip.
func (v *VCPU) GetLAPIC() (LAPICState, error) {
	var l LAPICState
	if _, err := ioctlPtr(v.fd, kvmGetLAPIC, &l); err != nil {
		return LAPICState{}, fmt.Errorf("get local apic of vcpu %d (KVM_GET_LAPIC): %w", v.id, err)
	}
	return l, nil
}

// SetLAPIC writes the in-kernel local APIC's registers (KVM_SET_LAPIC).
func (v *VCPU) SetLAPIC(l LAPICState) error {
	if _, err := ioctlPtr(v.fd, kvmSetLAPIC, &l); err != nil {
		return fmt.Errorf("set local apic of vcpu %d (KVM_SET_LAPIC): %w", v.id, err)
	}
	return nil
}

// SetCPUID2 sets the CPUID leaves the guest sees (api.rst, section
// "KVM_SET_CPUID2"). Start from System.SupportedCPUID. Call before the
// first Run; later changes are refused by recent kernels.
func (v *VCPU) SetCPUID2(entries []CPUIDEntry2) error {
	buf, err := marshalCPUID2(entries)
	if err != nil {
		return fmt.Errorf("set cpuid of vcpu %d: %w", v.id, err)
	}
	if _, err := ioctlBuf(v.fd, kvmSetCPUID2, buf); err != nil {
		return fmt.Errorf("set cpuid of vcpu %d with %d entries (KVM_SET_CPUID2): %w", v.id, len(entries), err)
	}
	return nil
}

// GetMSRs reads the MSRs named by entries[i].Index into entries[i].Data
// (KVM_GET_MSRS). It fails, naming the MSR, if KVM cannot read one of them.
func (v *VCPU) GetMSRs(entries []MSREntry) error {
	if len(entries) == 0 {
		return nil
	}
	buf, err := marshalMSRs(entries)
	if err != nil {
		return fmt.Errorf("get msrs of vcpu %d: %w", v.id, err)
	}
	n, err := ioctlBuf(v.fd, kvmGetMSRs, buf)
	if err != nil {
		return fmt.Errorf("get %d msrs of vcpu %d (KVM_GET_MSRS): %w", len(entries), v.id, err)
	}
	if n < len(entries) {
		return fmt.Errorf("get msrs of vcpu %d (KVM_GET_MSRS): msr %#x could not be read (%d of %d read)",
			v.id, entries[n].Index, n, len(entries))
	}
	got, err := unmarshalMSRs(buf, uint32(len(entries)))
	if err != nil {
		return fmt.Errorf("get msrs of vcpu %d (KVM_GET_MSRS): %w", v.id, err)
	}
	copy(entries, got)
	return nil
}

// SetMSRs writes the MSRs in entries (KVM_SET_MSRS). The kernel stops at
// the first MSR it refuses; the error names it.
func (v *VCPU) SetMSRs(entries []MSREntry) error {
	if len(entries) == 0 {
		return nil
	}
	buf, err := marshalMSRs(entries)
	if err != nil {
		return fmt.Errorf("set msrs of vcpu %d: %w", v.id, err)
	}
	n, err := ioctlBuf(v.fd, kvmSetMSRs, buf)
	if err != nil {
		return fmt.Errorf("set %d msrs of vcpu %d (KVM_SET_MSRS): %w", len(entries), v.id, err)
	}
	if n < len(entries) {
		return fmt.Errorf("set msrs of vcpu %d (KVM_SET_MSRS): msr %#x = %#x was refused (%d of %d set)",
			v.id, entries[n].Index, entries[n].Data, n, len(entries))
	}
	return nil
}
