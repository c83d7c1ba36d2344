package boot

import (
	"encoding/binary"
	"fmt"
)

// A minimal ACPI Machine Language (AML) encoder: just enough of ACPI 6.3
// §20 "ACPI Machine Language (AML) Specification" to write the DSDT's
// named objects (Name, Scope, Device, Package, Buffer, integers) and the
// resource descriptors of §6.4 that a PCI host bridge's _CRS needs.
//
// The encoder works on byte slices: every function returns the complete
// encoding of one term, which the caller nests into the next. Errors
// (a malformed name, an object too long for a PkgLength) are recorded in
// the amlEncoder and reported once by the caller, so that building a
// table reads like the ASL it encodes.

// AML opcodes and prefixes, ACPI 6.3 §20.3 "AML Byte Stream Byte Values".
const (
	amlZeroOp          = 0x00
	amlOneOp           = 0x01
	amlNameOp          = 0x08
	amlBytePrefix      = 0x0a
	amlWordPrefix      = 0x0b
	amlDWordPrefix     = 0x0c
	amlQWordPrefix     = 0x0e
	amlScopeOp         = 0x10
	amlBufferOp        = 0x11
	amlPackageOp       = 0x12
	amlDualNamePrefix  = 0x2e
	amlMultiNamePrefix = 0x2f
	amlExtOpPrefix     = 0x5b
	amlDeviceOp        = 0x82 // after amlExtOpPrefix
	amlRootChar        = '\\'
	amlParentPrefix    = '^'
)

// amlMaxPkgLength is the largest value a PkgLength can encode: 4 bits in
// the lead byte plus 8 in each of up to three following bytes (§20.2.4).
const amlMaxPkgLength = 1<<28 - 1

// amlEncoder accumulates the first error met while encoding.
type amlEncoder struct {
	err error
}

func (a *amlEncoder) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// pkgLength returns the PkgLength encoding (§20.2.4) for a package whose
// contents after the PkgLength are n bytes long. The encoded length counts
// the PkgLength bytes themselves. One byte holds lengths up to 63 in bits
// 0-5; otherwise bits 6-7 of the lead byte give the number (1-3) of
// following bytes, bits 0-3 hold the least significant nibble and each
// following byte the next 8 bits.
func (a *amlEncoder) pkgLength(n int) []byte {
	if n < 0 || n > amlMaxPkgLength {
		a.fail(fmt.Errorf("aml: package of %d bytes exceeds the PkgLength limit", n))
		return nil
	}
	if n+1 <= 0x3f {
		return []byte{byte(n + 1)}
	}
	for extra := 1; extra <= 3; extra++ {
		total := n + 1 + extra
		if total >= 1<<(4+8*extra) {
			continue
		}
		b := make([]byte, 1+extra)
		b[0] = byte(extra<<6) | byte(total&0x0f)
		for i := 1; i <= extra; i++ {
			b[i] = byte(total >> (4 + 8*(i-1)))
		}
		return b
	}
	a.fail(fmt.Errorf("aml: package of %d bytes exceeds the PkgLength limit", n))
	return nil
}

// nameSeg encodes one NameSeg (§20.2.2): exactly four characters from
// [A-Z0-9_], the first not a digit. Shorter segments are padded with '_'
// as ASL compilers do ("_S5" is "_S5_").
func (a *amlEncoder) nameSeg(seg string) []byte {
	if len(seg) == 0 || len(seg) > 4 {
		a.fail(fmt.Errorf("aml: name segment %q is not 1 to 4 characters", seg))
		return nil
	}
	b := []byte("____")
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9' && i > 0:
		default:
			a.fail(fmt.Errorf("aml: invalid character %q in name segment %q", c, seg))
			return nil
		}
		b[i] = c
	}
	return b
}

// nameString encodes a NameString (§20.2.2): an optional root ('\') or
// parent ('^') prefix, then dot-separated segments as a single NameSeg, a
// DualNamePath or a MultiNamePath.
func (a *amlEncoder) nameString(path string) []byte {
	var b []byte
	rest := path
	switch {
	case len(rest) > 0 && rest[0] == amlRootChar:
		b = append(b, amlRootChar)
		rest = rest[1:]
	default:
		for len(rest) > 0 && rest[0] == amlParentPrefix {
			b = append(b, amlParentPrefix)
			rest = rest[1:]
		}
	}
	if rest == "" {
		a.fail(fmt.Errorf("aml: name %q has no segments", path))
		return nil
	}
	var segs [][]byte
	for start := 0; start <= len(rest); {
		end := start
		for end < len(rest) && rest[end] != '.' {
			end++
		}
		s := a.nameSeg(rest[start:end])
		if s == nil {
			return nil
		}
		segs = append(segs, s)
		start = end + 1
	}
	switch n := len(segs); {
	case n == 1:
	case n == 2:
		b = append(b, amlDualNamePrefix)
	case n <= 255:
		b = append(b, amlMultiNamePrefix, byte(n))
	default:
		a.fail(fmt.Errorf("aml: name %q has more than 255 segments", path))
		return nil
	}
	for _, s := range segs {
		b = append(b, s...)
	}
	return b
}

// integer encodes v as the shortest ComputationalData (§20.2.3): ZeroOp,
// OneOp, or a Byte/Word/DWord/QWord constant.
func (a *amlEncoder) integer(v uint64) []byte {
	switch {
	case v == 0:
		return []byte{amlZeroOp}
	case v == 1:
		return []byte{amlOneOp}
	case v <= 0xff:
		return []byte{amlBytePrefix, byte(v)}
	case v <= 0xffff:
		return binary.LittleEndian.AppendUint16([]byte{amlWordPrefix}, uint16(v))
	case v <= 0xffffffff:
		return binary.LittleEndian.AppendUint32([]byte{amlDWordPrefix}, uint32(v))
	default:
		return binary.LittleEndian.AppendUint64([]byte{amlQWordPrefix}, v)
	}
}

// eisaID encodes ASL's EisaId("PNPxxxx") (§19.6, "EISAID"): three upper-case
// letters compressed to 5 bits each (A = 1) in the first two bytes, big
// endian, then four hex digits as two bytes, stored as a DWord constant.
func (a *amlEncoder) eisaID(id string) []byte {
	if len(id) != 7 {
		a.fail(fmt.Errorf("aml: EISA id %q is not 7 characters", id))
		return nil
	}
	var v [4]byte
	var mfg uint16
	for i := range 3 {
		c := id[i]
		if c < 'A' || c > 'Z' {
			a.fail(fmt.Errorf("aml: EISA id %q: manufacturer must be 3 upper-case letters", id))
			return nil
		}
		mfg = mfg<<5 | uint16(c-'@')
	}
	binary.BigEndian.PutUint16(v[0:], mfg)
	for i := range 4 {
		c := id[3+i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			a.fail(fmt.Errorf("aml: EISA id %q: product must be 4 upper-case hex digits", id))
			return nil
		}
		v[2+i/2] |= d << (4 * (1 - i%2))
	}
	return append([]byte{amlDWordPrefix}, v[:]...)
}

// name encodes DefName (§20.2.5.1): Name (path, object).
func (a *amlEncoder) name(path string, object []byte) []byte {
	b := append([]byte{amlNameOp}, a.nameString(path)...)
	return append(b, object...)
}

// pkg encodes DefPackage (§20.2.5.4) with the given data elements.
func (a *amlEncoder) pkg(elems ...[]byte) []byte {
	if len(elems) > 255 {
		a.fail(fmt.Errorf("aml: package of %d elements exceeds 255", len(elems)))
		return nil
	}
	body := []byte{byte(len(elems))} // NumElements
	for _, e := range elems {
		body = append(body, e...)
	}
	return a.pkgOp([]byte{amlPackageOp}, nil, body)
}

// buffer encodes DefBuffer (§20.2.5.4): the BufferSize term, then data.
func (a *amlEncoder) buffer(data []byte) []byte {
	body := append(a.integer(uint64(len(data))), data...)
	return a.pkgOp([]byte{amlBufferOp}, nil, body)
}

// scope encodes DefScope (§20.2.5.1): Scope (path) { terms }.
func (a *amlEncoder) scope(path string, terms ...[]byte) []byte {
	return a.pkgOp([]byte{amlScopeOp}, a.nameString(path), concat(terms))
}

// device encodes DefDevice (§20.2.5.2): Device (path) { terms }.
func (a *amlEncoder) device(path string, terms ...[]byte) []byte {
	return a.pkgOp([]byte{amlExtOpPrefix, amlDeviceOp}, a.nameString(path), concat(terms))
}

// pkgOp returns op, the PkgLength of name+body, name and body.
func (a *amlEncoder) pkgOp(op, name, body []byte) []byte {
	n := len(name) + len(body)
	b := append(op, a.pkgLength(n)...)
	b = append(b, name...)
	return append(b, body...)
}

func concat(parts [][]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// Resource data types, ACPI 6.3 §6.4 "Resource Data Types for ACPI".
const (
	resSmallIO     = 0x47 // §6.4.2.5 I/O Port Descriptor: tag 0x08, length 7
	resSmallEndTag = 0x79 // §6.4.2.9 End Tag: tag 0x0f, length 1

	resLargeDWordAddress = 0x87 // §6.4.3.5.2 DWord Address Space Descriptor
	resLargeWordAddress  = 0x88 // §6.4.3.5.3 Word Address Space Descriptor

	resDWordAddressLen = 23 // bytes after the 3-byte large item header
	resWordAddressLen  = 13

	// Resource Type of address space descriptors (§6.4.3.5).
	resTypeMemory = 0
	resTypeIO     = 1
	resTypeBus    = 2

	// General Flags (§6.4.3.5.2 byte 4): _MAF (bit 3) and _MIF (bit 2) set,
	// _DEC (bit 1) clear for positive decoding, bit 0 clear: the device
	// produces (bridges) this range.
	resFlagsFixedWindow = 1<<3 | 1<<2

	// Type Specific Flags: for I/O ranges (§6.4.3.5.5) _RNG =
	// 3 decodes both ISA and non-ISA ranges; for memory bit 0
	// set is read-write, _MEM (bits 1-2) 0 is non-cacheable.
	resIOEntireRange     = 3
	resMemReadWriteNoCac = 1
)

// ioPort encodes an I/O Port Descriptor (§6.4.2.5) decoding 16 address
// bits: IO (Decode16, min, max, align, length).
func (a *amlEncoder) ioPort(min, max uint16, align, length uint8) []byte {
	b := []byte{resSmallIO, 1} // information: bit 0 = 16-bit decode
	b = binary.LittleEndian.AppendUint16(b, min)
	b = binary.LittleEndian.AppendUint16(b, max)
	return append(b, align, length)
}

// wordAddress encodes a Word Address Space Descriptor (§6.4.3.5.3) for a
// bridge window [min, max] with fixed bounds, granularity 0 and no
// translation: ASL's WordBusNumber and WordIO.
func (a *amlEncoder) wordAddress(resType, typeFlags uint8, min, max uint16) []byte {
	b := binary.LittleEndian.AppendUint16([]byte{resLargeWordAddress}, resWordAddressLen)
	b = append(b, resType, resFlagsFixedWindow, typeFlags)
	for _, v := range []uint16{0, min, max, 0, max - min + 1} {
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	return b
}

// dwordMemory encodes a DWord Address Space Descriptor (§6.4.3.5.2) for a
// non-cacheable, read-write memory window [min, max]: ASL's DWordMemory.
func (a *amlEncoder) dwordMemory(min, max uint32) []byte {
	b := binary.LittleEndian.AppendUint16([]byte{resLargeDWordAddress}, resDWordAddressLen)
	b = append(b, resTypeMemory, resFlagsFixedWindow, resMemReadWriteNoCac)
	for _, v := range []uint32{0, min, max, 0, max - min + 1} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

// resourceTemplate encodes ASL's ResourceTemplate () { descs }: a Buffer
// holding the descriptors and an End Tag whose checksum byte is 0, which
// §6.4.2.9 defines as "the checksum is correct".
func (a *amlEncoder) resourceTemplate(descs ...[]byte) []byte {
	return a.buffer(append(concat(descs), resSmallEndTag, 0))
}
