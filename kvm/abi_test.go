package kvm

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestStructSizes restates at run time what sizes_unsafe.go asserts at
// compile time, and adds one thing the compiler cannot see: binary.Size
// sums the fields with no implicit padding, so it equals the kernel size
// only if every padding byte is an explicit field. That is what lets
// marshal.go encode these types with encoding/binary.
func TestStructSizes(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want int
	}{
		{"kvm_regs", Regs{}, 144},
		{"kvm_segment", Segment{}, 24},
		{"kvm_dtable", DTable{}, 16},
		{"kvm_sregs", Sregs{}, 312},
		{"kvm_fpu", FPU{}, 416},
		{"kvm_lapic_state", LAPICState{}, 1024},
		{"kvm_userspace_memory_region", UserspaceMemoryRegion{}, 32},
		{"kvm_cpuid_entry2", CPUIDEntry2{}, 40},
		{"kvm_cpuid2 header", cpuid2Header{}, 8},
		{"kvm_msr_entry", MSREntry{}, 16},
		{"kvm_msrs header", msrsHeader{}, 8},
		{"kvm_msr_list header", msrListHeader{}, 4},
		{"kvm_pit_config", PITConfig{}, 64},
		{"kvm_irq_level", IRQLevel{}, 8},
		{"kvm_ioeventfd", IOEventFD{}, 64},
		{"kvm_irqfd", IRQFD{}, 32},
		{"kvm_irq_routing_entry", IRQRoutingEntry{}, 48},
		{"kvm_irq_routing header", irqRoutingHeader{}, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, binary.Size(tc.v))
		})
	}
}

func TestMarshalCPUID2RoundTrip(t *testing.T) {
	entries := []CPUIDEntry2{
		{Function: 0, EAX: 0xd, EBX: 0x68747541},
		{Function: 7, Index: 1, Flags: 1, ECX: 0xdeadbeef},
	}
	buf, err := marshalCPUID2(entries)
	assert.NoError(t, err)
	assert.Len(t, buf, 8+2*40)
	assert.Equal(t, uint32(2), nativeEndian.Uint32(buf))
	// Offsets from offsetof(struct kvm_cpuid_entry2, ...): index @4,
	// flags @8, ecx @20.
	second := buf[8+40:]
	assert.Equal(t, uint32(1), nativeEndian.Uint32(second[4:]))
	assert.Equal(t, uint32(1), nativeEndian.Uint32(second[8:]))
	assert.Equal(t, uint32(0xdeadbeef), nativeEndian.Uint32(second[20:]))

	got, err := unmarshalCPUID2(buf)
	assert.NoError(t, err)
	assert.Equal(t, entries, got)
}

func TestUnmarshalRejectsOversizedCount(t *testing.T) {
	tests := []struct {
		name  string
		count uint32
	}{
		{"one too many", 3},
		{"huge", 0xffffffff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf, err := marshalCPUID2(make([]CPUIDEntry2, 2))
			assert.NoError(t, err)
			nativeEndian.PutUint32(buf, tc.count)
			_, err = unmarshalCPUID2(buf)
			assert.ErrorContains(t, err, "at most 2")
		})
	}
}

func TestIRQRoutingEntries(t *testing.T) {
	tests := []struct {
		name  string
		entry IRQRoutingEntry
		want  []uint32 // first words of the union
		typ   uint32
	}{
		{"ioapic pin", IRQRoutingIRQChipEntry(5, IRQChipIOAPIC, 5), []uint32{2, 5}, IRQRoutingIRQChip},
		{"msi", IRQRoutingMSIEntry(24, 0x1_fee0_1000, 0x4041), []uint32{0xfee01000, 1, 0x4041}, IRQRoutingMSI},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.typ, tc.entry.Type)
			for i, w := range tc.want {
				assert.Equal(t, w, nativeEndian.Uint32(tc.entry.U[4*i:]), "union word %d", i)
			}
		})
	}
}
