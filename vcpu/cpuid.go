package vcpu

import (
	"github.com/govmm/govmm/kvm"
)

// CPUID leaves and bits the guest's view depends on (Intel SDM vol. 2A,
// "CPUID"; AMD APM vol. 3, appendix E; Linux Documentation/virt/kvm/x86/cpuid.rst).
const (
	leafFeatures       = 0x1
	leafExtTopology    = 0xb
	leafV2ExtTopology  = 0x1f
	leafKVMSignature   = 0x40000000
	leafKVMFeatures    = 0x40000001
	leafAMDExtAPICID   = 0x8000001e
	ecxHypervisor      = 1 << 31 // leaf 1 ECX: running under a hypervisor
	ecxTSCDeadline     = 1 << 24 // leaf 1 ECX: TSC-deadline LAPIC timer mode
	ebxAPICIDShift     = 24      // leaf 1 EBX[31:24]: initial APIC ID
	ebxLogicalCPUShift = 16      // leaf 1 EBX[23:16]: logical processors per package
	edxHTT             = 1 << 28 // leaf 1 EDX: EBX[23:16] is valid
)

// GuestCPUID returns the CPUID table for vCPU id of a guest with count vCPUs,
// derived from what KVM supports on this host (KVM_GET_SUPPORTED_CPUID).
// tscDeadline offers the LAPIC timer's TSC-deadline mode: KVM emulates it
// wherever KVM_CAP_TSC_DEADLINE_TIMER is present but never reports it in
// the supported table, leaving the bit to the VMM (api.rst,
// KVM_GET_SUPPORTED_CPUID). Without it the guest kernel programs its timer
// in one-shot count-down mode, as on hardware from before 2011; QEMU and
// the other VMMs offer it.
//
// KVM's table already carries its paravirtual leaves (0x40000000 signature,
// 0x40000001 features: kvmclock among them). With kvmclock the guest reads
// the TSC frequency from the hypervisor instead of calibrating it against
// the PIT, which is slow and unreliable in a VM. What KVM leaves to the VMM
// is the per-vCPU topology: each vCPU's APIC ID (which matches the MP table
// the boot loader writes) and the package's logical CPU count.
func GuestCPUID(supported []kvm.CPUIDEntry2, id, count int, tscDeadline bool) []kvm.CPUIDEntry2 {
	out := make([]kvm.CPUIDEntry2, len(supported))
	copy(out, supported)
	for i := range out {
		e := &out[i]
		switch e.Function {
		case leafFeatures:
			e.EBX = e.EBX&0x0000ffff | uint32(id)<<ebxAPICIDShift | uint32(min(count, 255))<<ebxLogicalCPUShift
			e.ECX |= ecxHypervisor
			if tscDeadline {
				e.ECX |= ecxTSCDeadline
			}
			e.EDX |= edxHTT
		case leafExtTopology, leafV2ExtTopology:
			e.EDX = uint32(id) // x2APIC ID, on every sub-leaf
		case leafAMDExtAPICID:
			e.EAX = uint32(id)
		}
	}
	return out
}
