package boot

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// realVmlinux is the generic kernel's payload as `make images` extracts it.
func realVmlinux(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(filepath.Dir(filepath.Dir(realKernelPath(t))), "vmlinux-6.1.0-56-amd64")
	data, err := os.ReadFile(path)
	require.NoError(t, err, "the extracted vmlinux is missing: run `make images`")
	return data
}

func TestPayloadOfRealKernel(t *testing.T) {
	k, err := ParseBzImage(realKernel(t))
	require.NoError(t, err)
	p, size, err := k.Payload()
	require.NoError(t, err)
	assert.Equal(t, []byte{0xfd, '7', 'z', 'X', 'Z', 0}, p[:6], "Debian's generic kernel is XZ-compressed")
	assert.Equal(t, uint32(len(realVmlinux(t))), size, "the size trailer matches the extracted vmlinux")
}

func TestParseVmlinux(t *testing.T) {
	data := realVmlinux(t)
	v, err := ParseVmlinux(data)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x1000000), v.Entry, "phys_startup_64")
	assert.Greater(t, v.end(), uint64(0x1000000))

	// mutate returns a copy of the real vmlinux with change applied.
	mutate := func(change func(b []byte)) []byte {
		b := bytes.Clone(data)
		change(b)
		return b
	}
	le := binary.LittleEndian
	phoff := le.Uint64(data[32:])
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "not an ELF file"},
		{"not ELF", []byte("MZ not an elf file at all........................................."), "not an ELF file"},
		{"header only", data[:64], "program header table"},
		{"truncated", data[:1<<20], "runs past the file"},
		{"32-bit", mutate(func(b []byte) { b[4] = 1 }), "not an x86-64 executable"},
		{"big-endian", mutate(func(b []byte) { b[5] = 2 }), "not an x86-64 executable"},
		{"not x86-64", mutate(func(b []byte) { le.PutUint16(b[18:], 183) }), "not an x86-64 executable"},
		{"shared object", mutate(func(b []byte) { le.PutUint16(b[16:], 3) }), "not an x86-64 executable"},
		{"table past the end", mutate(func(b []byte) { le.PutUint64(b[32:], ^uint64(0)-8) }), "program header table"},
		{"short entries", mutate(func(b []byte) { le.PutUint16(b[54:], 8) }), "program header table"},
		{"PN_XNUM", mutate(func(b []byte) { le.PutUint16(b[56:], 0xffff) }), "program header table"},
		{"segment offset wraps", mutate(func(b []byte) { le.PutUint64(b[phoff+8:], ^uint64(0)-4) }), "runs past the file"},
		{"file size past memory size", mutate(func(b []byte) { le.PutUint64(b[phoff+40:], 1) }), "runs past the file"},
		{"above 4 GiB", mutate(func(b []byte) { le.PutUint64(b[phoff+24:], 1<<40) }), "not below 4 GiB"},
		{"entry outside", mutate(func(b []byte) { le.PutUint64(b[24:], 0x10) }), "in no loadable segment"},
		{"no loads", mutate(func(b []byte) { le.PutUint16(b[56:], 0) }), "no loadable segments"},
	} {
		_, err := ParseVmlinux(tc.data)
		assert.ErrorContains(t, err, tc.wantErr, tc.name)
	}
}

// The hand-written reader agrees with the standard library's on the real
// kernel: the same entry point and the same loadable segments.
func TestParseVmlinuxAgreesWithDebugELF(t *testing.T) {
	data := realVmlinux(t)
	v, err := ParseVmlinux(data)
	require.NoError(t, err)
	f, err := elf.NewFile(bytes.NewReader(data))
	require.NoError(t, err)
	assert.Equal(t, f.Entry, v.Entry)
	var want []vmlinuxSegment
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			want = append(want, vmlinuxSegment{paddr: p.Paddr, data: data[p.Off : p.Off+p.Filesz], memsz: p.Memsz})
		}
	}
	require.Len(t, v.segments, len(want))
	for i := range want {
		assert.Equal(t, want[i].paddr, v.segments[i].paddr, "segment %d", i)
		assert.Equal(t, want[i].memsz, v.segments[i].memsz, "segment %d", i)
		assert.Equal(t, len(want[i].data), len(v.segments[i].data), "segment %d", i)
	}
}

func TestLoadVmlinux(t *testing.T) {
	k, err := ParseBzImage(realKernel(t))
	require.NoError(t, err)
	v, err := ParseVmlinux(realVmlinux(t))
	require.NoError(t, err)
	mem := newGuest(t, 512<<20)
	st, err := Load(mem, k, Config{Cmdline: "console=ttyS0", CPUs: 1, Vmlinux: v, Initrd: []byte("initrd")})
	require.NoError(t, err)
	assert.Equal(t, v.Entry, st.RIP, "entered at the vmlinux entry, not the decompressor's")
	got, err := mem.Slice(v.segments[0].paddr, 16)
	require.NoError(t, err)
	assert.Equal(t, v.segments[0].data[:16], got)
}

func FuzzParseVmlinux(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParseVmlinux(data)
		if err == nil {
			assert.True(t, v.contains(v.Entry), "accepted an entry point outside every segment")
		}
	})
}
