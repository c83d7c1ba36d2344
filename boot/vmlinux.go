package boot

import (
	"encoding/binary"
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

// ELF64 layout (System V gABI, "ELF Header" and "Program Header"; the
// x86-64 psABI for EM_X86_64). Read by hand rather than with debug/elf:
// the VMM process needs these few fields, and debug/elf brings DWARF and
// three decompressors into every VM's address space.
const (
	elfHeaderSize   = 64
	elfPhdrSize     = 56
	elfClass64      = 2
	elfDataLSB      = 1
	elfTypeExec     = 2
	elfMachineX8664 = 62
	elfPTLoad       = 1
	elfPNXnum       = 0xffff // e_phnum escape: the count lives elsewhere
)

// ParseVmlinux validates an x86-64 vmlinux ELF and lists what to load.
func ParseVmlinux(data []byte) (*Vmlinux, error) {
	if len(data) < elfHeaderSize || string(data[:4]) != "\x7fELF" {
		return nil, errors.New("vmlinux: not an ELF file (bad magic)")
	}
	le := binary.LittleEndian
	class, order := data[4], data[5]
	typ, machine := le.Uint16(data[16:]), le.Uint16(data[18:])
	if class != elfClass64 || order != elfDataLSB || typ != elfTypeExec || machine != elfMachineX8664 {
		return nil, fmt.Errorf("vmlinux: not an x86-64 executable ELF (class %d, data %d, type %d, machine %d)", class, order, typ, machine)
	}
	entry, phoff := le.Uint64(data[24:]), le.Uint64(data[32:])
	phentsize, phnum := le.Uint16(data[54:]), le.Uint16(data[56:])
	if phnum == elfPNXnum || (phnum > 0 && phentsize < elfPhdrSize) {
		return nil, fmt.Errorf("vmlinux: unsupported program header table (%d entries of %d bytes)", phnum, phentsize)
	}
	// phnum and phentsize are 16-bit: their product cannot overflow, and
	// the comparison is written so that phoff + table cannot either.
	table := uint64(phnum) * uint64(phentsize)
	if phoff > uint64(len(data)) || table > uint64(len(data))-phoff {
		return nil, fmt.Errorf("vmlinux: program header table at %#x runs past the file", phoff)
	}
	v := &Vmlinux{Entry: entry}
	for i := range uint64(phnum) {
		ph := data[phoff+i*uint64(phentsize):]
		if le.Uint32(ph[0:]) != elfPTLoad {
			continue
		}
		off, paddr := le.Uint64(ph[8:]), le.Uint64(ph[24:])
		filesz, memsz := le.Uint64(ph[32:]), le.Uint64(ph[40:])
		if filesz > memsz || off > uint64(len(data)) || filesz > uint64(len(data))-off {
			return nil, fmt.Errorf("vmlinux: segment at %#x runs past the file", paddr)
		}
		if paddr+memsz < paddr || paddr+memsz > memory4G {
			return nil, fmt.Errorf("vmlinux: segment at %#x (%d bytes) is not below 4 GiB", paddr, memsz)
		}
		v.segments = append(v.segments, vmlinuxSegment{paddr: paddr, data: data[off : off+filesz], memsz: memsz})
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
