package boot

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBzImageDebian(t *testing.T) {
	data := realKernel(t)
	k, err := ParseBzImage(data)
	require.NoError(t, err)

	tests := []struct {
		name      string
		got, want any
	}{
		{"ProtocolVersion", k.ProtocolVersion, uint16(0x020f)},
		{"SetupSects", k.SetupSects, 39},
		{"LoadFlags", k.LoadFlags, uint8(LoadedHigh)},
		{"XLoadFlags", k.XLoadFlags, uint16(0x7f)},
		{"InitSize", k.InitSize, uint32(0x3f98000)},
		{"PrefAddress", k.PrefAddress, uint64(0x1000000)},
		{"KernelAlignment", k.KernelAlignment, uint32(0x200000)},
		{"CmdlineSize", k.CmdlineSize, uint32(2047)},
		{"InitrdAddrMax", k.InitrdAddrMax, uint32(0x7fffffff)},
		{"Relocatable", k.Relocatable, true},
		{"LoadAddress", k.LoadAddress(), uint64(0x1000000)},
		{"len(SetupHeader)", len(k.SetupHeader()), 0x26c - 0x1f1},
		{"len(ProtectedMode)", len(k.ProtectedMode()), len(data) - 40*512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.got, "got %#v, want %#v", tt.got, tt.want)
		})
	}
	assert.True(t, bytes.HasPrefix([]byte(k.KernelVersion), []byte("6.1.0-56-amd64 ")), "got kernel version %q, want prefix 6.1.0-56-amd64", k.KernelVersion)
	assert.Equal(t, data[0x1f1:0x26c], k.SetupHeader())
	assert.Equal(t, data[40*512:40*512+64], k.ProtectedMode()[:64])
}

func TestParseBzImageErrors(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name    string
		corrupt func(b []byte) []byte
		wantErr string
	}{
		{"empty file", func([]byte) []byte { return nil }, "kernel image is empty"},
		{"ELF vmlinux", func(b []byte) []byte {
			return append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 4096)...)
		}, "ELF vmlinux: PVH boot is not supported yet, pass the bzImage"},
		{"truncated inside header", func(b []byte) []byte { return b[:0x100] }, "too short for a setup header"},
		{"truncated inside setup", func(b []byte) []byte { return b[:0x1000] }, "setup_sects 39 past the end of the file"},
		{"truncated after setup", func(b []byte) []byte { return b[:40*512] }, "no protected-mode kernel after the 39 setup sectors"},
		{"bad magic", func(b []byte) []byte { copy(b[0x202:], "HdrX"); return b }, `not a bzImage: no "HdrS" magic at 0x202 (is it a vmlinux ELF or compressed kernel?)`},
		{"gzip data", func(b []byte) []byte {
			return append([]byte{0x1f, 0x8b, 0x08, 0x00}, make([]byte, 4096)...)
		}, "not a bzImage"},
		{"bad boot flag", func(b []byte) []byte { le.PutUint16(b[0x1fe:], 0x1234); return b }, "bad boot flag 0x1234 at 0x1fe, want 0xaa55"},
		{"old protocol", func(b []byte) []byte { le.PutUint16(b[0x206:], 0x0206); return b }, "boot protocol 2.06 is too old: need 2.12 or later"},
		{"no 64-bit entry", func(b []byte) []byte { b[0x236] &^= XLFKernel64; return b }, "no 64-bit entry point: XLF_KERNEL_64 is clear in xloadflags 0x7e"},
		{"setup_sects past the end", func(b []byte) []byte { b[0x1f1] = 0xff; return b[:0x10000] }, "setup_sects 255 past the end of the file"},
		{"no short jump", func(b []byte) []byte { b[0x200] = 0xe9; return b }, "does not start with a short jump"},
		{"header too short", func(b []byte) []byte { b[0x201] = 0x20; return b }, "setup header ends at 0x222, before the end of init_size"},
		{"header too long", func(b []byte) []byte { b[0x201] = 0xff; return b }, "setup header ends at 0x301, past the end of the boot_params header area at 0x290"},
		{"kernel_alignment not a power of two", func(b []byte) []byte { le.PutUint32(b[0x230:], 0x300000); return b }, "kernel_alignment 0x300000 is not a power of two"},
		{"kernel_alignment zero", func(b []byte) []byte { le.PutUint32(b[0x230:], 0); return b }, "kernel_alignment 0x0 is not a power of two"},
		{"init_size zero", func(b []byte) []byte { le.PutUint32(b[0x260:], 0); return b }, "init_size is zero"},
		{"not relocatable, pref_address low", func(b []byte) []byte {
			b[0x234] = 0
			le.PutUint64(b[0x258:], 0x8000)
			return b
		}, "kernel is not relocatable and its pref_address 0x8000 is not in [0x100000, 0x100000000)"},
		{"not relocatable, pref_address above 4 GiB", func(b []byte) []byte {
			b[0x234] = 0
			le.PutUint64(b[0x258:], 1<<40)
			return b
		}, "pref_address 0x10000000000 is not in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.corrupt(realKernelCopy(t))
			var k *BzImage
			var err error
			require.NotPanics(t, func() { k, err = ParseBzImage(data) })
			require.Error(t, err, "got kernel %+v, want error %q", k, tt.wantErr)
			assert.Nil(t, k)
			assert.Contains(t, err.Error(), tt.wantErr, "got %q, want it to contain %q", err, tt.wantErr)
		})
	}
}

func TestParseBzImageSynthetic(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name            string
		modify          func(b []byte)
		wantSetupSects  int
		wantLoadAddress uint64
		wantVersion     string
	}{
		{"setup_sects 0 means 4", func([]byte) {}, 4, DefaultLoadAddr, "9.9.9-test"},
		{"explicit setup_sects", func(b []byte) { b[hdrSetupSects] = 2 }, 2, DefaultLoadAddr, "9.9.9-test"},
		{"relocatable, unaligned pref_address rounds up", func(b []byte) { le.PutUint64(b[hdrPrefAddress:], 0x1100000) }, 4, 0x1200000, "9.9.9-test"},
		{"relocatable, pref_address below 1 MiB", func(b []byte) { le.PutUint64(b[hdrPrefAddress:], 0x1000) }, 4, DefaultLoadAddr, "9.9.9-test"},
		{"relocatable, pref_address above 4 GiB", func(b []byte) { le.PutUint64(b[hdrPrefAddress:], 1<<33) }, 4, DefaultLoadAddr, "9.9.9-test"},
		{"not relocatable keeps pref_address", func(b []byte) {
			b[hdrRelocatable] = 0
			le.PutUint64(b[hdrPrefAddress:], 0x123000)
		}, 4, 0x123000, "9.9.9-test"},
		{"no version string", func(b []byte) { le.PutUint16(b[hdrKernelVersion:], 0) }, 4, DefaultLoadAddr, ""},
		{"version pointer past setup", func(b []byte) { le.PutUint16(b[hdrKernelVersion:], 0xff00) }, 4, DefaultLoadAddr, ""},
		{"unprintable version", func(b []byte) { b[0x500] = 0x01 }, 4, DefaultLoadAddr, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := syntheticBzImage(4096)
			tt.modify(data)
			k, err := ParseBzImage(data)
			require.NoError(t, err)
			assert.Equal(t, tt.wantSetupSects, k.SetupSects, "got setup_sects %d, want %d", k.SetupSects, tt.wantSetupSects)
			assert.Equal(t, tt.wantLoadAddress, k.LoadAddress(), "got load address %#x, want %#x", k.LoadAddress(), tt.wantLoadAddress)
			assert.Equal(t, tt.wantVersion, k.KernelVersion, "got version %q, want %q", k.KernelVersion, tt.wantVersion)
			assert.Len(t, k.ProtectedMode(), len(data)-(tt.wantSetupSects+1)*512)
			assert.Equal(t, uint64(1<<20), k.Footprint(), "init_size 1 MiB exceeds the 4 KiB payload")
		})
	}
}
