package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/govmm/govmm/memory"
)

// Zero-page (struct boot_params) offsets outside the setup header
// (Documentation/arch/x86/zero-page.rst; arch/x86/include/uapi/asm/
// bootparam.h).
const (
	bpExtRamdiskImage = 0x0c0 // u32: ramdisk_image high 32 bits
	bpExtRamdiskSize  = 0x0c4 // u32: ramdisk_size high 32 bits
	bpExtCmdLinePtr   = 0x0c8 // u32: cmd_line_ptr high 32 bits
	bpE820Entries     = 0x1e8 // u8: number of entries in e820_table
	bpE820Table       = 0x2d0 // struct boot_e820_entry[E820_MAX_ENTRIES_ZEROPAGE]

	// E820MaxEntries is E820_MAX_ENTRIES_ZEROPAGE, the capacity of the
	// zero page's e820 table.
	E820MaxEntries = 128
	e820EntrySize  = 20 // packed {u64 addr; u64 size; u32 type}

	// loaderTypeUndefined is type_of_loader 0xff: "no assigned ID" (boot
	// protocol §"Details of header fields", type_of_loader).
	loaderTypeUndefined = 0xff
	// heapEndPtr is the conventional heap_end_ptr (0xfe00: the heap ends
	// 0x200 below the 64 KiB real-mode segment). The 64-bit entry skips
	// the real-mode setup code that uses it; it is set, with CAN_USE_HEAP,
	// as boot protocol §"Sample Boot Configuration" recommends.
	heapEndPtr = 0xfe00
)

// e820 address range types (ACPI 6.5 §15 "System Address Map
// Interfaces", table 15.1).
const (
	E820RAM      = 1
	E820Reserved = 2
)

// E820Entry is one entry of the e820 memory map in boot_params.
type E820Entry struct {
	Addr uint64
	Size uint64
	Type uint32
}

// Page table entry bits (Intel SDM vol. 3A §4.5 "4-Level Paging").
const (
	ptePresent  = 1 << 0
	pteWritable = 1 << 1
	ptePageSize = 1 << 7 // in a PD entry: maps a 2 MiB page
	pageSize2M  = 2 << 20
	ptEntries   = 512
)

// Config is what Load needs besides the kernel.
type Config struct {
	// Cmdline is the kernel command line, without a terminating NUL.
	Cmdline string
	// Initrd is the initial ramdisk image; empty for none.
	Initrd []byte
	// CPUs is the number of processors the MP table advertises, 1 to
	// MaxCPUs.
	CPUs int
	// Vmlinux, when set, is the bzImage's payload already decompressed:
	// it is loaded and entered instead of the bzImage's own decompressor.
	Vmlinux *Vmlinux
}

const mib = 1 << 20

// Load writes everything needed to start k through the 64-bit boot
// protocol into mem and returns the bootstrap processor's initial state:
// the protected-mode kernel at k.LoadAddress(), the initrd near the top of
// RAM below 4 GiB, boot_params with the command line and e820 map, identity
// page tables for [0, 4 GiB), the boot GDT and an MP table for cfg.CPUs
// processors. See the package documentation for the layout.
//
// All checks happen before the first write, so on error mem is unchanged.
func Load(mem *memory.Guest, k *BzImage, cfg Config) (*CPUState, error) {
	if mem == nil || k == nil {
		return nil, errors.New("load kernel: nil guest memory or kernel")
	}
	if cfg.CPUs < 1 || cfg.CPUs > MaxCPUs {
		return nil, fmt.Errorf("load kernel: %d cpus out of range: the MP table supports 1 to %d", cfg.CPUs, MaxCPUs)
	}

	lowEnd, err := lowRAMEnd(mem)
	if err != nil {
		return nil, fmt.Errorf("load kernel: %w", err)
	}

	if i := strings.IndexByte(cfg.Cmdline, 0); i >= 0 {
		return nil, fmt.Errorf("load kernel: command line contains a NUL byte at offset %d", i)
	}
	if n := uint64(len(cfg.Cmdline)); n > uint64(k.CmdlineSize) || n+1 > CmdlineMax {
		limit := min(uint64(k.CmdlineSize), CmdlineMax-1)
		return nil, fmt.Errorf("load kernel: command line is %d bytes; this kernel accepts at most %d", n, limit)
	}

	// The kernel needs init_size contiguous bytes from its load address
	// before it has parsed the memory map (boot protocol
	// §"Details of header fields", init_size).
	loadAddr := k.LoadAddress()
	kernelEnd := loadAddr + k.Footprint()
	entry := loadAddr + 0x200
	if v := cfg.Vmlinux; v != nil {
		// Its segments sit at their link addresses; keep the initrd clear
		// of them as well as of init_size.
		kernelEnd, entry = max(kernelEnd, v.end()), v.Entry
	}
	if kernelEnd < loadAddr || kernelEnd > lowEnd {
		return nil, fmt.Errorf("load kernel: kernel needs init_size %d MiB at %#x but guest RAM below 4 GiB ends at %#x: raise --mem",
			ceilDiv(k.Footprint(), mib), loadAddr, lowEnd)
	}

	var initrdAddr uint64
	if len(cfg.Initrd) > 0 {
		initrdAddr, err = placeInitrd(uint64(len(cfg.Initrd)), kernelEnd, lowEnd, k.InitrdAddrMax)
		if err != nil {
			return nil, fmt.Errorf("load kernel: %w", err)
		}
	}

	e820, err := e820Map(mem)
	if err != nil {
		return nil, fmt.Errorf("load kernel: %w", err)
	}

	// ACPI tables beside the MP table: kernels built without MP-table
	// parsing (Debian's cloud kernel) find their CPUs only in the MADT,
	// and ACPI gives the guest its power-off path (PM1a_CNT, see
	// acpi.go). The PCI host bridge is declared because with ACPI active
	// Linux takes its PCI root buses from the DSDT alone.
	acpiCfg := DefaultACPIConfig(cfg.CPUs)
	acpiCfg.PCI = true
	acpi, err := BuildACPI(acpiCfg)
	if err != nil {
		return nil, fmt.Errorf("load kernel: %w", err)
	}

	// Everything is known to fit; write it.
	kernelImage := k.ProtectedMode()
	if cfg.Vmlinux != nil {
		if err := cfg.Vmlinux.load(mem); err != nil {
			return nil, fmt.Errorf("load kernel: %w", err)
		}
		kernelImage = nil
	}
	writes := []struct {
		what string
		gpa  uint64
		data []byte
	}{
		{"kernel", loadAddr, kernelImage},
		{"initrd", initrdAddr, cfg.Initrd},
		{"boot_params", ZeroPageAddr, zeroPage(k, cfg, initrdAddr, e820)},
		{"command line", CmdlineAddr, cmdlineArea(cfg.Cmdline)},
		{"page tables", PML4Addr, pageTables()},
		{"gdt", GDTAddr, gdt()},
		{"ebda", EBDAAddr, ebda(cfg.CPUs)},
		{"bios data area", BDAEBDASegment, biosDataArea()},
		{"acpi tables", acpi.Base, acpi.Data},
	}
	for _, w := range writes {
		if len(w.data) == 0 {
			continue
		}
		dst, err := mem.Slice(w.gpa, uint64(len(w.data)))
		if err != nil {
			return nil, fmt.Errorf("load kernel: write %s at %#x: %w", w.what, w.gpa, err)
		}
		copy(dst, w.data)
	}

	// Boot protocol §"64-bit Boot Protocol": long mode with paging, the
	// kernel, zero page and command line identity mapped, CS = __BOOT_CS,
	// the data segments __BOOT_DS, interrupts off, RSI = &boot_params,
	// entry at the load address + 0x200.
	return &CPUState{
		RIP:      entry,
		RSI:      ZeroPageAddr,
		RFLAGS:   RFLAGSReserved,
		CR0:      CR0PE | CR0ET | CR0PG,
		CR3:      PML4Addr,
		CR4:      CR4PAE,
		EFER:     EFERLME | EFERLMA,
		GDTBase:  GDTAddr,
		GDTLimit: GDTEntries*8 - 1,
		Code:     bootCode,
		Data:     bootData,
	}, nil
}

// lowRAMEnd returns the end of the RAM region starting at address 0,
// capped at 4 GiB: the memory the 32-bit boot_params fields and the
// identity map can reach.
func lowRAMEnd(mem *memory.Guest) (uint64, error) {
	regions := mem.Regions()
	if len(regions) == 0 || regions[0].GPA != 0 {
		return 0, errors.New("guest memory has no RAM at address 0")
	}
	end := min(regions[0].End(), memory4G)
	if end < HighMemoryStart {
		return 0, fmt.Errorf("guest RAM at address 0 ends at %#x, below the %#x the loader's low-memory tables need: raise --mem", end, HighMemoryStart)
	}
	return end, nil
}

// placeInitrd returns the highest InitrdAlign-aligned address at which
// size bytes end at or below both the RAM below 4 GiB and initrd_addr_max,
// and start at or above the end of the kernel's init_size area, which it
// must not overlap (boot protocol §"Details of header fields",
// initrd_addr_max and init_size).
func placeInitrd(size, kernelEnd, lowEnd uint64, addrMax uint32) (uint64, error) {
	limit := min(uint64(addrMax)+1, lowEnd)
	floor := alignUp(kernelEnd, InitrdAlign)
	var free uint64
	if limit > floor {
		free = limit - floor
	}
	if size > free || alignDown(limit-size, InitrdAlign) < floor {
		return 0, fmt.Errorf("initrd of %d MiB does not fit in guest RAM (%d MiB free between the kernel at %#x and %#x): raise --mem",
			ceilDiv(size, mib), free/mib, floor, limit)
	}
	return alignDown(limit-size, InitrdAlign), nil
}

// e820Map describes mem for the kernel: the RAM at 0 split around the EBDA
// and the legacy VGA/BIOS area [EBDAAddr, 1 MiB), which is reserved, and
// every other region as RAM. The MMIO hole is left out rather than marked
// reserved, like QEMU does.
func e820Map(mem *memory.Guest) ([]E820Entry, error) {
	regions := mem.Regions()
	low := regions[0] // lowRAMEnd checked it starts at 0 and reaches 1 MiB
	entries := []E820Entry{
		{Addr: 0, Size: EBDAAddr, Type: E820RAM},
		{Addr: EBDAAddr, Size: HighMemoryStart - EBDAAddr, Type: E820Reserved},
	}
	if low.End() > HighMemoryStart {
		entries = append(entries, E820Entry{Addr: HighMemoryStart, Size: low.End() - HighMemoryStart, Type: E820RAM})
	}
	for _, r := range regions[1:] {
		entries = append(entries, E820Entry{Addr: r.GPA, Size: r.Size(), Type: E820RAM})
	}
	if len(entries) > E820MaxEntries {
		return nil, fmt.Errorf("guest memory needs %d e820 entries; boot_params holds at most %d", len(entries), E820MaxEntries)
	}
	return entries, nil
}

// zeroPage builds struct boot_params: zeroed, the kernel's setup header
// copied to 0x1f1 and the fields a boot loader must fill (boot protocol
// §"64-bit Boot Protocol": "the setup header at offset 0x01f1 of kernel
// image on should be loaded into struct boot_params and examined").
func zeroPage(k *BzImage, cfg Config, initrdAddr uint64, e820 []E820Entry) []byte {
	le := binary.LittleEndian
	bp := make([]byte, ZeroPageSize)
	copy(bp[setupHeaderStart:], k.SetupHeader())

	bp[hdrTypeOfLoader] = loaderTypeUndefined
	bp[hdrLoadFlags] |= CanUseHeap
	le.PutUint16(bp[hdrHeapEndPtr:], heapEndPtr)

	le.PutUint32(bp[hdrCmdLinePtr:], uint32(CmdlineAddr))
	le.PutUint32(bp[bpExtCmdLinePtr:], uint32(uint64(CmdlineAddr)>>32))

	size := uint64(len(cfg.Initrd))
	le.PutUint32(bp[hdrRamdiskImage:], uint32(initrdAddr))
	le.PutUint32(bp[bpExtRamdiskImage:], uint32(initrdAddr>>32))
	le.PutUint32(bp[hdrRamdiskSize:], uint32(size))
	le.PutUint32(bp[bpExtRamdiskSize:], uint32(size>>32))

	bp[bpE820Entries] = uint8(len(e820))
	for i, e := range e820 {
		b := bp[bpE820Table+i*e820EntrySize:]
		le.PutUint64(b[0:], e.Addr)
		le.PutUint64(b[8:], e.Size)
		le.PutUint32(b[16:], e.Type)
	}
	return bp
}

// cmdlineArea returns the command line area: cmdline, NUL-terminated and
// zero-padded to CmdlineMax so that no earlier contents survive.
func cmdlineArea(cmdline string) []byte {
	b := make([]byte, CmdlineMax)
	copy(b, cmdline)
	return b
}

// pageTables returns the PML4, the PDPT and PDCount page directories,
// contiguous from PML4Addr, identity mapping [0, 4 GiB) with 2 MiB pages
// (Intel SDM vol. 3A §4.5, tables 4-15, 4-17). The 64-bit boot protocol
// needs the kernel's init_size area, the zero page and the command line
// identity mapped; the decompressor builds its own tables afterwards.
func pageTables() []byte {
	le := binary.LittleEndian
	b := make([]byte, PDAddr+PDCount*memory.PageSize-PML4Addr)
	pml4 := b[0:]
	pdpt := b[PDPTAddr-PML4Addr:]
	pds := b[PDAddr-PML4Addr:]

	le.PutUint64(pml4, PDPTAddr|ptePresent|pteWritable)
	for i := range PDCount {
		pd := uint64(PDAddr + i*memory.PageSize)
		le.PutUint64(pdpt[i*8:], pd|ptePresent|pteWritable)
	}
	for i := range PDCount * ptEntries {
		le.PutUint64(pds[i*8:], uint64(i)*pageSize2M|ptePresent|pteWritable|ptePageSize)
	}
	return b
}

// gdt returns the boot GDT: two null descriptors, then __BOOT_CS at 0x10
// and __BOOT_DS at 0x18.
func gdt() []byte {
	b := make([]byte, GDTEntries*8)
	binary.LittleEndian.PutUint64(b[BootCS:], bootCode.descriptor())
	binary.LittleEndian.PutUint64(b[BootDS:], bootData.descriptor())
	return b
}

// ebda returns the EBDA contents: the MP floating pointer and
// configuration table, zero-padded to EBDASize.
func ebda(cpus int) []byte {
	b := make([]byte, EBDASize)
	copy(b, buildMPTable(cpus))
	return b
}

// biosDataArea returns the BIOS data area words from 0x40e to 0x414: the
// EBDA segment at 0x40e and the base memory size in KiB at 0x413, which
// Linux uses to find the MP floating pointer and to reserve the EBDA
// (arch/x86/kernel/ebda.c).
func biosDataArea() []byte {
	b := make([]byte, BDABaseMemKiB+2-BDAEBDASegment)
	binary.LittleEndian.PutUint16(b[0:], EBDAAddr>>4)
	binary.LittleEndian.PutUint16(b[BDABaseMemKiB-BDAEBDASegment:], EBDAAddr>>10)
	return b
}

func alignUp(x, a uint64) uint64   { return (x + a - 1) &^ (a - 1) }
func alignDown(x, a uint64) uint64 { return x &^ (a - 1) }
func ceilDiv(x, d uint64) uint64   { return (x + d - 1) / d }
