package vcpu

import (
	"encoding/binary"
	"fmt"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/kvm"
)

// MSRs every vCPU starts with (Intel SDM vol. 4, "Model-Specific
// Registers"). The kernel programs the syscall MSRs itself; zeroing them
// makes the start state independent of KVM's defaults. Fast strings
// (MISC_ENABLE bit 0) matter: without it rep movs/stos run byte by byte.
var bootMSRs = []kvm.MSREntry{
	{Index: 0x174},               // IA32_SYSENTER_CS
	{Index: 0x175},               // IA32_SYSENTER_ESP
	{Index: 0x176},               // IA32_SYSENTER_EIP
	{Index: 0xc0000081},          // STAR
	{Index: 0xc0000082},          // LSTAR
	{Index: 0xc0000083},          // CSTAR
	{Index: 0xc0000084},          // SYSCALL_MASK (FMASK)
	{Index: 0xc0000102},          // KERNEL_GS_BASE
	{Index: 0x10},                // TSC
	{Index: 0x1a0, Data: 1 << 0}, // IA32_MISC_ENABLE: fast strings
}

// Local APIC registers and LVT delivery modes (Intel SDM vol. 3A §11.5.1
// "Local Vector Table").
const (
	lapicLVT0         = 0x350
	lapicLVT1         = 0x360
	lvtDeliveryMask   = 0x700
	lvtDeliveryExtINT = 0x700
	lvtDeliveryNMI    = 0x400
)

// Configure prepares vCPU id of count: CPUID from what KVM supports with
// this vCPU's topology (and the TSC-deadline timer if tscDeadline, see
// GuestCPUID), the boot MSRs, a reset FPU, and the local APIC's
// LINT0 as ExtINT (the legacy PIC's output) and LINT1 as NMI, the wiring
// the MP table describes.
func Configure(cpu *kvm.VCPU, supported []kvm.CPUIDEntry2, id, count int, tscDeadline bool) error {
	if err := cpu.SetCPUID2(GuestCPUID(supported, id, count, tscDeadline)); err != nil {
		return fmt.Errorf("configure vcpu %d: %w", id, err)
	}
	if err := cpu.SetMSRs(bootMSRs); err != nil {
		return fmt.Errorf("configure vcpu %d: %w", id, err)
	}
	// FCW 0x37f and MXCSR 0x1f80 are the values FNINIT and a processor
	// reset leave (Intel SDM vol. 1 §8.1.5, §10.2.3.1).
	if err := cpu.SetFPU(kvm.FPU{FCW: 0x37f, MXCSR: 0x1f80}); err != nil {
		return fmt.Errorf("configure vcpu %d: %w", id, err)
	}
	lapic, err := cpu.GetLAPIC()
	if err != nil {
		return fmt.Errorf("configure vcpu %d: %w", id, err)
	}
	setLVT(&lapic, lapicLVT0, lvtDeliveryExtINT)
	setLVT(&lapic, lapicLVT1, lvtDeliveryNMI)
	if err := cpu.SetLAPIC(lapic); err != nil {
		return fmt.Errorf("configure vcpu %d: %w", id, err)
	}
	return nil
}

func setLVT(l *kvm.LAPICState, reg int, mode uint32) {
	v := binary.LittleEndian.Uint32(l.Regs[reg:])
	binary.LittleEndian.PutUint32(l.Regs[reg:], v&^lvtDeliveryMask|mode)
}

// SetBootState loads the boot loader's initial register state into the
// bootstrap processor. The other vCPUs wait in the in-kernel LAPIC for the
// INIT/SIPI sequence the guest kernel sends them.
func SetBootState(cpu *kvm.VCPU, st *boot.CPUState) error {
	sregs, err := cpu.GetSregs()
	if err != nil {
		return fmt.Errorf("set boot state: %w", err)
	}
	sregs.CS = segment(st.Code)
	data := segment(st.Data)
	sregs.DS, sregs.ES, sregs.FS, sregs.GS, sregs.SS = data, data, data, data, data
	sregs.GDT = kvm.DTable{Base: st.GDTBase, Limit: st.GDTLimit}
	sregs.CR0, sregs.CR3, sregs.CR4, sregs.EFER = st.CR0, st.CR3, st.CR4, st.EFER
	if err := cpu.SetSregs(sregs); err != nil {
		return fmt.Errorf("set boot state: %w", err)
	}
	if err := cpu.SetRegs(kvm.Regs{RIP: st.RIP, RSI: st.RSI, RFLAGS: st.RFLAGS}); err != nil {
		return fmt.Errorf("set boot state: %w", err)
	}
	return nil
}

func segment(s boot.Segment) kvm.Segment {
	b := func(v bool) uint8 {
		if v {
			return 1
		}
		return 0
	}
	return kvm.Segment{
		Base: s.Base, Limit: s.Limit, Selector: s.Selector, Type: s.Type,
		Present: b(s.Present), DPL: s.DPL, DB: b(s.DB), S: b(s.S), L: b(s.L), G: b(s.G),
	}
}
