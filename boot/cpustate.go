package boot

// Control register and EFER bits of the initial 64-bit state (Intel SDM
// vol. 3A §2.5 "Control Registers", §2.2.1 "Extended Feature Enable
// Register").
const (
	CR0PE = 1 << 0  // protection enable
	CR0ET = 1 << 4  // extension type: hardwired to 1 on every CPU since the i486
	CR0PG = 1 << 31 // paging

	CR4PAE = 1 << 5 // physical address extension, required for long mode

	EFERLME = 1 << 8  // long mode enable
	EFERLMA = 1 << 10 // long mode active

	// RFLAGSReserved is RFLAGS bit 1, which always reads as 1. Interrupts
	// (IF) are off, as the boot protocol requires.
	RFLAGSReserved = 1 << 1
)

// Selectors the 64-bit boot protocol requires (boot protocol §"64-bit Boot
// Protocol": "a GDT must be loaded with the descriptors for selectors
// __BOOT_CS(0x10) and __BOOT_DS(0x18)").
const (
	BootCS = 0x10
	BootDS = 0x18
)

// Segment describes a segment register as the CPU caches it after loading
// a descriptor, in the shape KVM's struct kvm_segment uses.
type Segment struct {
	Selector uint16
	Base     uint64
	// Limit is the effective byte-granular limit: with G set, the
	// descriptor's 20-bit limit scaled to 4 KiB units (0xfffff becomes
	// 0xffffffff), as KVM expects it.
	Limit uint32
	// Type is the 4-bit descriptor type (code: 0xb execute/read,
	// accessed; data: 0x3 read/write, accessed).
	Type    uint8
	Present bool
	DPL     uint8
	DB      bool // default operation size (32-bit); must be clear for 64-bit code
	S       bool // code or data segment (not a system segment)
	L       bool // 64-bit code segment
	G       bool // limit granularity is 4 KiB
}

// descriptor encodes s as an 8-byte GDT descriptor (Intel SDM vol. 3A
// §3.4.5 "Segment Descriptors"). Limit is stored in descriptor units.
func (s Segment) descriptor() uint64 {
	limit := uint64(s.Limit)
	if s.G {
		limit >>= 12
	}
	access := uint64(s.Type & 0xf)
	if s.S {
		access |= 1 << 4
	}
	access |= uint64(s.DPL&3) << 5
	if s.Present {
		access |= 1 << 7
	}
	var flags uint64
	if s.L {
		flags |= 1 << 1
	}
	if s.DB {
		flags |= 1 << 2
	}
	if s.G {
		flags |= 1 << 3
	}
	return limit&0xffff |
		(s.Base&0xffffff)<<16 |
		access<<40 |
		(limit>>16&0xf)<<48 |
		flags<<52 |
		(s.Base>>24&0xff)<<56
}

// CPUState is the bootstrap processor's initial register state for the
// 64-bit boot protocol: long mode with paging on, the loader's identity
// page tables and GDT, RIP at the 64-bit entry point and RSI pointing at
// boot_params. Registers not listed are zero; the segment registers other
// than CS (DS, ES, FS, GS, SS) are loaded with Data; IDT, LDT and TR are
// left at their reset state (interrupts are off and the kernel installs
// its own before enabling them).
type CPUState struct {
	RIP    uint64
	RSI    uint64
	RFLAGS uint64

	// CR0 is PE|ET|PG. ET is included because it is read-only 1 on
	// every CPU KVM runs on; the rest (WP, NE, caches) the kernel sets
	// itself.
	CR0  uint64
	CR3  uint64
	CR4  uint64
	EFER uint64

	GDTBase  uint64
	GDTLimit uint16

	// Code is CS (__BOOT_CS); Data is DS, ES, FS, GS and SS (__BOOT_DS).
	Code Segment
	Data Segment
}

// bootCode and bootData are the flat 4 GiB segments the 64-bit boot
// protocol requires ("both descriptors must be 4G flat segment; __BOOT_CS
// must have execute/read permission, and __BOOT_DS must have read/write
// permission"). Their descriptors are 0x00af9b000000ffff and
// 0x00cf93000000ffff.
var (
	bootCode = Segment{Selector: BootCS, Limit: 0xffffffff, Type: 0xb, Present: true, S: true, L: true, G: true}
	bootData = Segment{Selector: BootDS, Limit: 0xffffffff, Type: 0x3, Present: true, S: true, DB: true, G: true}
)
