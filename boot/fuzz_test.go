package boot

import (
	"encoding/binary"
	"testing"

	"github.com/govmm/govmm/memory"
)

// FuzzParseBzImage checks that ParseBzImage never panics, that what it
// accepts satisfies the invariants Load relies on, and that Load never
// panics on an accepted image either.
func FuzzParseBzImage(f *testing.F) {
	f.Add(syntheticBzImage(4096))
	f.Add(syntheticBzImage(1))
	f.Add(realKernel(f)[:40*512+4096])
	f.Add([]byte{})
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	for _, corrupt := range []func(b []byte){
		func(b []byte) { b[hdrSetupSects] = 0xff },
		func(b []byte) { b[hdrJump+1] = 0xff },
		func(b []byte) { binary.LittleEndian.PutUint16(b[hdrKernelVersion:], 0xfffe) },
		func(b []byte) { binary.LittleEndian.PutUint32(b[hdrInitSize:], 0xffffffff) },
		func(b []byte) { binary.LittleEndian.PutUint32(b[hdrCmdlineSize:], 0) },
		func(b []byte) {
			b[hdrRelocatable] = 0
			binary.LittleEndian.PutUint64(b[hdrPrefAddress:], 0xffffffff)
		},
	} {
		b := syntheticBzImage(4096)
		corrupt(b)
		f.Add(b)
	}

	// One small guest, reused: each fuzz worker runs targets one at a
	// time.
	mem, err := memory.FromBytes(memory.Region{GPA: 0, Host: make([]byte, 24<<20)})
	if err != nil {
		f.Fatal(err)
	}
	initrd := make([]byte, 64<<10)

	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseBzImage(data)
		if err != nil {
			if k != nil {
				t.Fatalf("got kernel %+v with error %v, want nil", k, err)
			}
			return
		}
		if n := len(k.SetupHeader()); n < minHeaderEnd-setupHeaderStart || setupHeaderStart+n > maxHeaderEnd {
			t.Fatalf("got setup header of %d bytes, want it to end in [%#x, %#x]", n, minHeaderEnd, maxHeaderEnd)
		}
		if len(k.ProtectedMode()) == 0 {
			t.Fatal("got empty protected-mode kernel")
		}
		if a := k.LoadAddress(); a < HighMemoryStart {
			t.Fatalf("got load address %#x, want at least %#x", a, HighMemoryStart)
		}
		if k.KernelAlignment&(k.KernelAlignment-1) != 0 || k.KernelAlignment == 0 {
			t.Fatalf("got kernel_alignment %#x, want a power of two", k.KernelAlignment)
		}
		_, _ = Load(mem, k, Config{Cmdline: "console=ttyS0", Initrd: initrd, CPUs: 2})
	})
}
