package kvm

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestIoctlNumbers pins every request number to the value a C compiler
// computes from <linux/kvm.h> (printf("%#x", KVM_...) on linux-libc-dev
// 6.1, x86-64).
func TestIoctlNumbers(t *testing.T) {
	tests := []struct {
		name string
		got  uint
		want uint
	}{
		{"KVM_GET_API_VERSION", kvmGetAPIVersion, 0xAE00},
		{"KVM_CREATE_VM", kvmCreateVM, 0xAE01},
		{"KVM_GET_MSR_INDEX_LIST", kvmGetMSRIndexList, 0xC004AE02},
		{"KVM_CHECK_EXTENSION", kvmCheckExtension, 0xAE03},
		{"KVM_GET_VCPU_MMAP_SIZE", kvmGetVCPUMmapSize, 0xAE04},
		{"KVM_GET_SUPPORTED_CPUID", kvmGetSupportedCPUID, 0xC008AE05},
		{"KVM_CREATE_VCPU", kvmCreateVCPU, 0xAE41},
		{"KVM_SET_USER_MEMORY_REGION", kvmSetUserMemoryRegion, 0x4020AE46},
		{"KVM_SET_TSS_ADDR", kvmSetTSSAddr, 0xAE47},
		{"KVM_SET_IDENTITY_MAP_ADDR", kvmSetIdentityMapAddr, 0x4008AE48},
		{"KVM_CREATE_IRQCHIP", kvmCreateIRQChip, 0xAE60},
		{"KVM_IRQ_LINE", kvmIRQLine, 0x4008AE61},
		{"KVM_SET_GSI_ROUTING", kvmSetGSIRouting, 0x4008AE6A},
		{"KVM_IRQFD", kvmIRQFD, 0x4020AE76},
		{"KVM_CREATE_PIT2", kvmCreatePIT2, 0x4040AE77},
		{"KVM_IOEVENTFD", kvmIOEventFD, 0x4040AE79},
		{"KVM_RUN", kvmRun, 0xAE80},
		{"KVM_GET_REGS", kvmGetRegs, 0x8090AE81},
		{"KVM_SET_REGS", kvmSetRegs, 0x4090AE82},
		{"KVM_GET_SREGS", kvmGetSregs, 0x8138AE83},
		{"KVM_SET_SREGS", kvmSetSregs, 0x4138AE84},
		{"KVM_GET_MSRS", kvmGetMSRs, 0xC008AE88},
		{"KVM_SET_MSRS", kvmSetMSRs, 0x4008AE89},
		{"KVM_GET_FPU", kvmGetFPU, 0x81A0AE8C},
		{"KVM_SET_FPU", kvmSetFPU, 0x41A0AE8D},
		{"KVM_GET_LAPIC", kvmGetLAPIC, 0x8400AE8E},
		{"KVM_SET_LAPIC", kvmSetLAPIC, 0x4400AE8F},
		{"KVM_SET_CPUID2", kvmSetCPUID2, 0x4008AE90},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, fmt.Sprintf("%#x", tc.want), fmt.Sprintf("%#x", tc.got))
		})
	}
}

func TestIocRejectsOversizedFields(t *testing.T) {
	tests := []struct {
		name string
		call func()
	}{
		{"size of 16 KiB", func() { ior(0x01, 1<<14) }},
		{"command number 0x100", func() { io(0x100) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Panics(t, tc.call)
		})
	}
}
