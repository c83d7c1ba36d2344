package boot

import (
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

	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "vmlinux"},
		{"not ELF", []byte("MZ not an elf file at all........................................."), "vmlinux"},
		{"truncated", data[:1<<20], "vmlinux"},
	} {
		_, err := ParseVmlinux(tc.data)
		assert.ErrorContains(t, err, tc.wantErr, tc.name)
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
