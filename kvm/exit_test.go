package kvm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testRunSize is a typical KVM_GET_VCPU_MMAP_SIZE: struct kvm_run in the
// first page, port I/O data in the second, the coalesced MMIO ring in the
// third.
const testRunSize = 3 * 4096

// runPage is a synthetic kvm_run mapping for decoder tests.
type runPage []byte

func newRunPage(reason ExitReason) runPage {
	p := make(runPage, testRunSize)
	nativeEndian.PutUint32(p[runOffExitReason:], uint32(reason))
	return p
}

func (p runPage) u8(off int, v uint8) runPage   { p[off] = v; return p }
func (p runPage) u16(off int, v uint16) runPage { nativeEndian.PutUint16(p[off:], v); return p }
func (p runPage) u32(off int, v uint32) runPage { nativeEndian.PutUint32(p[off:], v); return p }
func (p runPage) u64(off int, v uint64) runPage { nativeEndian.PutUint64(p[off:], v); return p }

// ioPage builds a KVM_EXIT_IO page the way the kernel does, with the data
// one page into the mapping.
func ioPage(dir IODirection, size uint8, port uint16, count uint32, dataOffset uint64) runPage {
	return newRunPage(ExitIO).
		u8(runOffIODirection, uint8(dir)).
		u8(runOffIOSize, size).
		u16(runOffIOPort, port).
		u32(runOffIOCount, count).
		u64(runOffIODataOffset, dataOffset)
}

func mmioPage(addr uint64, length uint32, isWrite bool) runPage {
	p := newRunPage(ExitMMIO).u64(runOffMMIOPhysAddr, addr).u32(runOffMMIOLen, length)
	if isWrite {
		p.u8(runOffMMIOIsWrite, 1)
	}
	return p
}

func TestDecodeExit(t *testing.T) {
	outPage := ioPage(IOOut, 1, 0x3f8, 1, 4096)
	outPage[4096] = 'g'
	repPage := ioPage(IOIn, 2, 0x1f0, 3, 4096)
	mmioWrite := mmioPage(0xfee0_0000, 4, true)
	copy(mmioWrite[runOffMMIOData:], []byte{1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff})

	tests := []struct {
		name string
		page runPage
		want Exit
	}{
		{
			name: "io out",
			page: outPage,
			want: &IOExit{Direction: IOOut, Size: 1, Port: 0x3f8, Count: 1, Data: []byte{'g'}},
		},
		{
			name: "rep io in",
			page: repPage,
			want: &IOExit{Direction: IOIn, Size: 2, Port: 0x1f0, Count: 3, Data: make([]byte, 6)},
		},
		{
			name: "io data ending exactly at the end of the mapping",
			page: ioPage(IOOut, 4, 0xcf8, 2, testRunSize-8),
			want: &IOExit{Direction: IOOut, Size: 4, Port: 0xcf8, Count: 2, Data: make([]byte, 8)},
		},
		{
			name: "mmio write",
			page: mmioWrite,
			want: &MMIOExit{Addr: 0xfee0_0000, Data: []byte{1, 2, 3, 4}, IsWrite: true},
		},
		{
			name: "mmio read of 8 bytes",
			page: mmioPage(0xd000_0000, 8, false),
			want: &MMIOExit{Addr: 0xd000_0000, Data: make([]byte, 8)},
		},
		{name: "hlt", page: newRunPage(ExitHLT), want: HLTExit{}},
		{name: "shutdown", page: newRunPage(ExitShutdown), want: ShutdownExit{}},
		{name: "intr", page: newRunPage(ExitIntr), want: IntrExit{}},
		{
			name: "fail entry",
			page: newRunPage(ExitFailEntry).u64(runOffFailEntryReason, 0x80000021).u32(runOffFailEntryCPU, 3),
			want: &FailEntryExit{HardwareEntryFailureReason: 0x80000021, CPU: 3},
		},
		{
			name: "internal error",
			page: newRunPage(ExitInternalError).
				u32(runOffInternalSuberror, uint32(InternalErrorEmulation)).
				u32(runOffInternalNData, 2).
				u64(runOffInternalData, 0x11).
				u64(runOffInternalData+8, 0x22),
			want: &InternalErrorExit{Suberror: InternalErrorEmulation, Data: []uint64{0x11, 0x22}},
		},
		{
			name: "system event with full data",
			page: func() runPage {
				p := newRunPage(ExitSystemEvent).u32(runOffSystemEventType, uint32(SystemEventReset)).u32(runOffSystemEventNData, 16)
				for i := range 16 {
					p.u64(runOffSystemEventData+8*i, uint64(i))
				}
				return p
			}(),
			want: &SystemEventExit{Type: SystemEventReset, Data: []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
		},
		{
			name: "system event without data",
			page: newRunPage(ExitSystemEvent).u32(runOffSystemEventType, uint32(SystemEventShutdown)),
			want: &SystemEventExit{Type: SystemEventShutdown, Data: []uint64{}},
		},
		{
			name: "kvm_exit_unknown carries the hardware reason",
			page: newRunPage(ExitUnknown).u64(runOffHWHardwareExitReason, 0x7b),
			want: &UnknownExit{Reason: ExitUnknown, HardwareExitReason: 0x7b},
		},
		{
			name: "a reason this package does not decode",
			page: newRunPage(ExitIRQWindowOpen),
			want: &UnknownExit{Reason: ExitIRQWindowOpen},
		},
		{
			name: "a reason from the future",
			page: newRunPage(ExitReason(0xdead)),
			want: &UnknownExit{Reason: ExitReason(0xdead)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeExit(tc.page)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.want.ExitReason(), got.ExitReason())
		})
	}
}

// TestDecodeExitDataAliasesPage checks the property device models rely on:
// filling IOExit.Data or MMIOExit.Data writes the kvm_run mapping where
// KVM_RUN will pick it up, and cannot reach past the access.
func TestDecodeExitDataAliasesPage(t *testing.T) {
	t.Run("io in", func(t *testing.T) {
		page := ioPage(IOIn, 2, 0x71, 1, 4096)
		exit, err := decodeExit(page)
		require.NoError(t, err)
		pio := exit.(*IOExit)
		copy(pio.Data, []byte{0x34, 0x12})
		assert.Equal(t, []byte{0x34, 0x12}, []byte(page[4096:4098]))
		assert.Equal(t, 2, cap(pio.Data), "data must not be appendable into the rest of the page")
	})
	t.Run("mmio read", func(t *testing.T) {
		page := mmioPage(0x1000, 2, false)
		exit, err := decodeExit(page)
		require.NoError(t, err)
		mmio := exit.(*MMIOExit)
		copy(mmio.Data, []byte{0xaa, 0xbb})
		assert.Equal(t, []byte{0xaa, 0xbb}, []byte(page[runOffMMIOData:runOffMMIOData+2]))
		assert.Equal(t, 2, cap(mmio.Data))
	})
}

// TestDecodeExitMalformed feeds values the kernel never produces. Each must
// come back as an error wrapping ErrMalformedExit, never a panic or a slice
// outside the mapping.
func TestDecodeExitMalformed(t *testing.T) {
	tests := []struct {
		name    string
		page    []byte
		wantErr string
	}{
		{name: "empty mapping", page: nil, wantErr: "smaller than struct kvm_run"},
		{name: "mapping shorter than kvm_run", page: newRunPage(ExitHLT)[:sizeofRun-1], wantErr: "smaller than struct kvm_run"},
		{name: "io data offset past the end", page: ioPage(IOOut, 1, 0x3f8, 1, testRunSize), wantErr: "outside"},
		{name: "io data offset far past the end", page: ioPage(IOOut, 1, 0x3f8, 1, 1<<40), wantErr: "outside"},
		{name: "io data offset that would overflow", page: ioPage(IOOut, 4, 0x3f8, 2, ^uint64(0)-3), wantErr: "outside"},
		{name: "io data running one byte past the end", page: ioPage(IOOut, 4, 0x3f8, 2, testRunSize-7), wantErr: "outside"},
		{name: "io count too large for the mapping", page: ioPage(IOIn, 4, 0x3f8, 0xffffffff, 4096), wantErr: "outside"},
		{name: "io data overlapping kvm_run", page: ioPage(IOIn, 1, 0x3f8, 1, runOffImmediateExit), wantErr: "outside"},
		{name: "io data at offset zero", page: ioPage(IOIn, 1, 0x3f8, 1, 0), wantErr: "outside"},
		{name: "io size zero", page: ioPage(IOOut, 0, 0x3f8, 1, 4096), wantErr: "access size 0"},
		{name: "io size three", page: ioPage(IOOut, 3, 0x3f8, 1, 4096), wantErr: "access size 3"},
		{name: "io size 255", page: ioPage(IOOut, 255, 0x3f8, 1, 4096), wantErr: "access size 255"},
		{name: "io count zero", page: ioPage(IOOut, 1, 0x3f8, 0, 4096), wantErr: "count is zero"},
		{name: "io direction two", page: ioPage(IODirection(2), 1, 0x3f8, 1, 4096), wantErr: "neither in nor out"},
		{name: "mmio length zero", page: mmioPage(0x1000, 0, true), wantErr: "length 0"},
		{name: "mmio length nine", page: mmioPage(0x1000, 9, true), wantErr: "length 9"},
		{name: "mmio length huge", page: mmioPage(0x1000, 0xffffffff, false), wantErr: "length 4294967295"},
		{name: "internal error ndata 17", page: newRunPage(ExitInternalError).u32(runOffInternalNData, 17), wantErr: "ndata 17"},
		{name: "system event ndata huge", page: newRunPage(ExitSystemEvent).u32(runOffSystemEventNData, 0xffffffff), wantErr: "ndata 4294967295"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var exit Exit
			var err error
			require.NotPanics(t, func() { exit, err = decodeExit(tc.page) })
			require.ErrorIs(t, err, ErrMalformedExit)
			assert.ErrorContains(t, err, tc.wantErr)
			assert.Nil(t, exit)
		})
	}
}

func TestExitReasonString(t *testing.T) {
	tests := []struct {
		reason ExitReason
		want   string
	}{
		{ExitUnknown, "KVM_EXIT_UNKNOWN"},
		{ExitIO, "KVM_EXIT_IO"},
		{ExitHLT, "KVM_EXIT_HLT"},
		{ExitMMIO, "KVM_EXIT_MMIO"},
		{ExitShutdown, "KVM_EXIT_SHUTDOWN"},
		{ExitFailEntry, "KVM_EXIT_FAIL_ENTRY"},
		{ExitIntr, "KVM_EXIT_INTR"},
		{ExitInternalError, "KVM_EXIT_INTERNAL_ERROR"},
		{ExitSystemEvent, "KVM_EXIT_SYSTEM_EVENT"},
		{ExitNotify, "KVM_EXIT_NOTIFY"},
		{ExitReason(13), "KVM_EXIT(13)"},
		{ExitReason(1000), "KVM_EXIT(1000)"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.reason.String())
		})
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{CapIRQChip.String(), "KVM_CAP_IRQCHIP"},
		{CapImmediateExit.String(), "KVM_CAP_IMMEDIATE_EXIT"},
		{CapSetIdentityMapAddr.String(), "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
		{Capability(9999).String(), "KVM_CAP(9999)"},
		{IOIn.String(), "in"},
		{IOOut.String(), "out"},
		{IODirection(7).String(), "IODirection(7)"},
		{SystemEventReset.String(), "KVM_SYSTEM_EVENT_RESET"},
		{SystemEventType(99).String(), "KVM_SYSTEM_EVENT(99)"},
		{InternalErrorEmulation.String(), "KVM_INTERNAL_ERROR_EMULATION"},
		{InternalErrorSuberror(42).String(), "KVM_INTERNAL_ERROR(42)"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.got)
		})
	}
}
