package vcpu

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/govmm/govmm/kvm"
)

func TestGuestCPUID(t *testing.T) {
	supported := []kvm.CPUIDEntry2{
		{Function: 0x0, EAX: 0xd, EBX: 0x68747541},
		{Function: 0x1, EAX: 0x830f10, EBX: 0x00ff0800, ECX: 0x1, EDX: 0x1},
		{Function: 0xb, Index: 0, EAX: 1, EBX: 1, EDX: 0x77},
		{Function: 0xb, Index: 1, EAX: 7, EBX: 4, EDX: 0x77},
		{Function: 0x40000000, EAX: 0x40000001, EBX: 0x4b4d564b},
		{Function: 0x40000001, EAX: 0x1fffff},
		{Function: 0x8000001e, EAX: 0x99},
	}
	for _, tc := range []struct {
		id, count   int
		tscDeadline bool
	}{{0, 1, true}, {3, 4, false}, {253, 254, true}} {
		got := GuestCPUID(supported, tc.id, tc.count, tc.tscDeadline)
		assert.Len(t, got, len(supported))
		leaf1 := got[1]
		assert.Equal(t, uint32(tc.id), leaf1.EBX>>24, "APIC ID of vCPU %d", tc.id)
		assert.Equal(t, uint32(tc.count), (leaf1.EBX>>16)&0xff, "logical CPU count")
		assert.Equal(t, uint32(0x0800), leaf1.EBX&0xffff, "CLFLUSH size and brand index kept")
		assert.NotZero(t, leaf1.ECX&ecxHypervisor, "hypervisor bit")
		assert.Equal(t, tc.tscDeadline, leaf1.ECX&ecxTSCDeadline != 0, "TSC-deadline timer bit")
		assert.Equal(t, uint32(0x1), leaf1.ECX&0xffff, "other feature bits kept")
		assert.Equal(t, uint32(tc.id), got[2].EDX, "x2APIC ID, sub-leaf 0")
		assert.Equal(t, uint32(tc.id), got[3].EDX, "x2APIC ID, sub-leaf 1")
		assert.Equal(t, uint32(tc.id), got[6].EAX, "AMD extended APIC ID")
		assert.Equal(t, supported[4], got[4], "KVM signature leaf passes through")
		assert.Equal(t, supported[5], got[5], "KVM features (kvmclock) pass through")
	}
	assert.Equal(t, uint32(0x00ff0800), supported[1].EBX, "the supported table must not be modified")
}
