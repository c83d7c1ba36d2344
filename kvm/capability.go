package kvm

import "fmt"

// Capability is a KVM_CAP_* code from <linux/kvm.h>, queried with
// KVM_CHECK_EXTENSION (api.rst, section "KVM_CHECK_EXTENSION", and section
// 8, "Other capabilities").
type Capability int

// Capabilities govmm uses. Values are the kernel's KVM_CAP_* numbers.
const (
	CapIRQChip            Capability = 0   // KVM_CAP_IRQCHIP
	CapHLT                Capability = 1   // KVM_CAP_HLT
	CapUserMemory         Capability = 3   // KVM_CAP_USER_MEMORY
	CapSetTSSAddr         Capability = 4   // KVM_CAP_SET_TSS_ADDR
	CapExtCPUID           Capability = 7   // KVM_CAP_EXT_CPUID
	CapNrVCPUs            Capability = 9   // KVM_CAP_NR_VCPUS
	CapNrMemslots         Capability = 10  // KVM_CAP_NR_MEMSLOTS
	CapMPState            Capability = 14  // KVM_CAP_MP_STATE
	CapSyncMMU            Capability = 16  // KVM_CAP_SYNC_MMU
	CapUserNMI            Capability = 22  // KVM_CAP_USER_NMI
	CapIRQRouting         Capability = 25  // KVM_CAP_IRQ_ROUTING
	CapIRQFD              Capability = 32  // KVM_CAP_IRQFD
	CapPIT2               Capability = 33  // KVM_CAP_PIT2
	CapPITState2          Capability = 35  // KVM_CAP_PIT_STATE2
	CapIOEventFD          Capability = 36  // KVM_CAP_IOEVENTFD
	CapSetIdentityMapAddr Capability = 37  // KVM_CAP_SET_IDENTITY_MAP_ADDR
	CapAdjustClock        Capability = 39  // KVM_CAP_ADJUST_CLOCK
	CapMaxVCPUs           Capability = 66  // KVM_CAP_MAX_VCPUS
	CapTSCDeadlineTimer   Capability = 72  // KVM_CAP_TSC_DEADLINE_TIMER
	CapCheckExtensionVM   Capability = 105 // KVM_CAP_CHECK_EXTENSION_VM
	CapMaxVCPUID          Capability = 128 // KVM_CAP_MAX_VCPU_ID
	CapX2APICAPI          Capability = 129 // KVM_CAP_X2APIC_API
	CapImmediateExit      Capability = 136 // KVM_CAP_IMMEDIATE_EXIT
	CapGetMSRFeatures     Capability = 153 // KVM_CAP_GET_MSR_FEATURES
	CapSystemEventData    Capability = 215 // KVM_CAP_SYSTEM_EVENT_DATA
)

var capabilityNames = map[Capability]string{
	CapIRQChip:            "KVM_CAP_IRQCHIP",
	CapHLT:                "KVM_CAP_HLT",
	CapUserMemory:         "KVM_CAP_USER_MEMORY",
	CapSetTSSAddr:         "KVM_CAP_SET_TSS_ADDR",
	CapExtCPUID:           "KVM_CAP_EXT_CPUID",
	CapNrVCPUs:            "KVM_CAP_NR_VCPUS",
	CapNrMemslots:         "KVM_CAP_NR_MEMSLOTS",
	CapMPState:            "KVM_CAP_MP_STATE",
	CapSyncMMU:            "KVM_CAP_SYNC_MMU",
	CapUserNMI:            "KVM_CAP_USER_NMI",
	CapIRQRouting:         "KVM_CAP_IRQ_ROUTING",
	CapIRQFD:              "KVM_CAP_IRQFD",
	CapPIT2:               "KVM_CAP_PIT2",
	CapPITState2:          "KVM_CAP_PIT_STATE2",
	CapIOEventFD:          "KVM_CAP_IOEVENTFD",
	CapSetIdentityMapAddr: "KVM_CAP_SET_IDENTITY_MAP_ADDR",
	CapAdjustClock:        "KVM_CAP_ADJUST_CLOCK",
	CapMaxVCPUs:           "KVM_CAP_MAX_VCPUS",
	CapTSCDeadlineTimer:   "KVM_CAP_TSC_DEADLINE_TIMER",
	CapCheckExtensionVM:   "KVM_CAP_CHECK_EXTENSION_VM",
	CapMaxVCPUID:          "KVM_CAP_MAX_VCPU_ID",
	CapX2APICAPI:          "KVM_CAP_X2APIC_API",
	CapImmediateExit:      "KVM_CAP_IMMEDIATE_EXIT",
	CapGetMSRFeatures:     "KVM_CAP_GET_MSR_FEATURES",
	CapSystemEventData:    "KVM_CAP_SYSTEM_EVENT_DATA",
}

// String returns the kernel's name for c, e.g. "KVM_CAP_IRQCHIP", or
// "KVM_CAP(n)" for a code this package has no name for.
func (c Capability) String() string {
	if name, ok := capabilityNames[c]; ok {
		return name
	}
	return fmt.Sprintf("KVM_CAP(%d)", int(c))
}
