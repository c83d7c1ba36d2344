package pci

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVirtioCapabilityLayout(t *testing.T) {
	tests := []struct {
		name     string
		c        VirtioCap
		want     []byte // the whole capability, next pointer 0
		wantMask []byte // nil: read-only
	}{
		{
			name: "common",
			c:    VirtioCap{Type: VirtioCommonCfg, BAR: 4, Offset: 0x1000, Length: 0x38},
			want: []byte{0x09, 0, 16, 1, 4, 0, 0, 0, 0x00, 0x10, 0, 0, 0x38, 0, 0, 0},
		},
		{
			name: "notify",
			c:    VirtioCap{Type: VirtioNotifyCfg, BAR: 0, Offset: 0x3002, Length: 0x1000, NotifyOffMultiplier: 0x1000},
			want: []byte{0x09, 0, 20, 2, 0, 0, 0, 0, 0x02, 0x30, 0, 0, 0x00, 0x10, 0, 0, 0x00, 0x10, 0, 0},
		},
		{
			name: "ISR at an odd offset",
			c:    VirtioCap{Type: VirtioISRCfg, BAR: 5, Offset: 0x2001, Length: 1},
			want: []byte{0x09, 0, 16, 3, 5, 0, 0, 0, 0x01, 0x20, 0, 0, 1, 0, 0, 0},
		},
		{
			name: "device",
			c:    VirtioCap{Type: VirtioDeviceCfg, BAR: 2, Offset: 0x2000, Length: 0x3c},
			want: []byte{0x09, 0, 16, 4, 2, 0, 0, 0, 0x00, 0x20, 0, 0, 0x3c, 0, 0, 0},
		},
		{
			name:     "PCI configuration access",
			c:        VirtioCap{Type: VirtioPCICfg},
			want:     []byte{0x09, 0, 20, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			wantMask: []byte{0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		},
		{
			name: "shared memory, 64-bit",
			c:    VirtioCap{Type: VirtioSharedMemoryCfg, BAR: 4, ID: 7, Offset: 0x1_2345_6000, Length: 0x2_0000_0000},
			want: []byte{0x09, 0, 24, 8, 4, 7, 0, 0, 0x00, 0x60, 0x45, 0x23, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, err := VirtioCapability(tt.c)
			require.NoError(t, err)
			assert.Equal(t, uint8(CapIDVendor), cp.ID)
			got := append([]byte{cp.ID, 0}, cp.Body...)
			assert.Equal(t, tt.want, got, "got % x, want % x", got, tt.want)
			assert.Equal(t, tt.wantMask, cp.WriteMask)
			assert.Equal(t, int(tt.want[virtioCapLen]), len(got), "cap_len covers the capability")
		})
	}
}

func TestVirtioCapabilityValidation(t *testing.T) {
	tests := []struct {
		name string
		c    VirtioCap
	}{
		{name: "unknown type", c: VirtioCap{Type: 6, Length: 4}},
		{name: "vendor data type", c: VirtioCap{Type: 9, Length: 4}},
		{name: "BAR 6", c: VirtioCap{Type: VirtioISRCfg, BAR: 6, Length: 1}},
		{name: "negative BAR", c: VirtioCap{Type: VirtioISRCfg, BAR: -1, Length: 1}},
		{name: "common misaligned", c: VirtioCap{Type: VirtioCommonCfg, Offset: 2, Length: 0x38}},
		{name: "device misaligned", c: VirtioCap{Type: VirtioDeviceCfg, Offset: 0x2002, Length: 4}},
		{name: "notify misaligned", c: VirtioCap{Type: VirtioNotifyCfg, Offset: 1, Length: 4}},
		{name: "multiplier 1", c: VirtioCap{Type: VirtioNotifyCfg, Length: 4, NotifyOffMultiplier: 1}},
		{name: "multiplier 6", c: VirtioCap{Type: VirtioNotifyCfg, Length: 4, NotifyOffMultiplier: 6}},
		{name: "multiplier on ISR", c: VirtioCap{Type: VirtioISRCfg, Length: 1, NotifyOffMultiplier: 4}},
		{name: "64-bit offset on common", c: VirtioCap{Type: VirtioCommonCfg, Offset: 1 << 32, Length: 0x38}},
		{name: "64-bit length on device", c: VirtioCap{Type: VirtioDeviceCfg, Length: 1 << 32}},
		{name: "zero length", c: VirtioCap{Type: VirtioCommonCfg}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VirtioCapability(tt.c)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
	for _, m := range []uint32{0, 2, 4, 0x1000, 1 << 31} {
		_, err := VirtioCapability(VirtioCap{Type: VirtioNotifyCfg, Length: 4, NotifyOffMultiplier: m})
		assert.NoError(t, err, "multiplier %d", m)
	}
}
