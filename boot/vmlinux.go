package boot

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"

	"github.com/govmm/govmm/memory"
)

// Vmlinux is a kernel's uncompressed ELF image, as the bzImage's payload
// holds it compressed (boot protocol §"Details of header fields",
// payload_offset/payload_length). Booting it directly, with the bzImage's
// setup header for boot_params, skips the in-guest decompressor: Debian's
// generic kernel spends a large share of its boot decompressing XZ there.
// The 64-bit entry is the ELF entry point, a physical address (the linker
// script's ENTRY(phys_startup_64)), entered exactly as the decompressor
// enters it: long mode, identity-mapped, RSI = boot_params.
type Vmlinux struct {
	Entry    uint64
	segments []vmlinuxSegment
}

type vmlinuxSegment struct {
	paddr  uint64
	data   []byte // file contents; the rest up to memsz is zero (.bss)
	memsz  uint64
	offset uint64
}

// ParseVmlinux validates an x86-64 vmlinux ELF and lists what to load.
func ParseVmlinux(data []byte) (*Vmlinux, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("vmlinux: %w", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("vmlinux: not an x86-64 executable ELF (class %v, machine %v, type %v)", f.Class, f.Machine, f.Type)
	}
	v := &Vmlinux{Entry: f.Entry}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		if p.Filesz > p.Memsz || p.Off+p.Filesz < p.Off || p.Off+p.Filesz > uint64(len(data)) {
			return nil, fmt.Errorf("vmlinux: segment at %#x runs past the file", p.Paddr)
		}
		if p.Paddr+p.Memsz < p.Paddr || p.Paddr+p.Memsz > memory4G {
			return nil, fmt.Errorf("vmlinux: segment at %#x (%d bytes) is not below 4 GiB", p.Paddr, p.Memsz)
		}
		v.segments = append(v.segments, vmlinuxSegment{paddr: p.Paddr, data: data[p.Off : p.Off+p.Filesz], memsz: p.Memsz})
	}
	if len(v.segments) == 0 {
		return nil, errors.New("vmlinux: no loadable segments")
	}
	if !v.contains(v.Entry) {
		return nil, fmt.Errorf("vmlinux: entry point %#x is in no loadable segment", v.Entry)
	}
	return v, nil
}

func (v *Vmlinux) contains(addr uint64) bool {
	for _, s := range v.segments {
		if addr >= s.paddr && addr < s.paddr+s.memsz {
			return true
		}
	}
	return false
}

// end is the first byte past the highest segment.
func (v *Vmlinux) end() uint64 {
	var end uint64
	for _, s := range v.segments {
		end = max(end, s.paddr+s.memsz)
	}
	return end
}

// load copies the segments into guest memory and zeroes their .bss tails.
func (v *Vmlinux) load(mem *memory.Guest) error {
	for _, s := range v.segments {
		dst, err := mem.Slice(s.paddr, s.memsz)
		if err != nil {
			return fmt.Errorf("vmlinux segment at %#x: %w", s.paddr, err)
		}
		n := copy(dst, s.data)
		clear(dst[n:])
	}
	return nil
}
