package kvm

import (
	"encoding/binary"
	"fmt"
)

// The kernel structures with a flexible array member (kvm_cpuid2, kvm_msrs,
// kvm_msr_list, kvm_irq_routing) cannot be mirrored by one fixed-size Go
// type, so they are marshalled into byte buffers: the header struct
// followed by the entries, in native byte order with no gaps. Because every
// mirror has explicit padding fields, encoding/binary's packed layout is
// exactly the C layout (abi_test.go checks binary.Size against the kernel
// sizes).

func marshalFlex[H, E any](header H, entries []E) ([]byte, error) {
	buf, err := binary.Append(nil, nativeEndian, header)
	if err != nil {
		return nil, fmt.Errorf("marshal %T header: %w", header, err)
	}
	if len(entries) == 0 {
		return buf, nil
	}
	buf, err = binary.Append(buf, nativeEndian, entries)
	if err != nil {
		return nil, fmt.Errorf("marshal %T entries: %w", entries, err)
	}
	return buf, nil
}

// unmarshalEntries decodes n entries that follow a header of hdrSize bytes
// in buf, refusing counts that would run past the end of buf.
func unmarshalEntries[E any](buf []byte, hdrSize, entrySize int, n uint32) ([]E, error) {
	if uint64(n) > uint64(len(buf)-hdrSize)/uint64(entrySize) {
		return nil, fmt.Errorf("kernel reports %d entries but the buffer holds at most %d", n, (len(buf)-hdrSize)/entrySize)
	}
	entries := make([]E, n)
	if n == 0 {
		return entries, nil
	}
	if _, err := binary.Decode(buf[hdrSize:], nativeEndian, entries); err != nil {
		return nil, fmt.Errorf("unmarshal %T: %w", entries, err)
	}
	return entries, nil
}

func marshalCPUID2(entries []CPUIDEntry2) ([]byte, error) {
	return marshalFlex(cpuid2Header{Nent: uint32(len(entries))}, entries)
}

func unmarshalCPUID2(buf []byte) ([]CPUIDEntry2, error) {
	return unmarshalEntries[CPUIDEntry2](buf, sizeofCPUID2, sizeofCPUIDEntry2, nativeEndian.Uint32(buf))
}

func marshalMSRs(entries []MSREntry) ([]byte, error) {
	return marshalFlex(msrsHeader{NMSRs: uint32(len(entries))}, entries)
}

func unmarshalMSRs(buf []byte, n uint32) ([]MSREntry, error) {
	return unmarshalEntries[MSREntry](buf, sizeofMSRs, sizeofMSREntry, n)
}

func marshalMSRList(n uint32) ([]byte, error) {
	return marshalFlex(msrListHeader{NMSRs: n}, make([]uint32, n))
}

func unmarshalMSRList(buf []byte) ([]uint32, error) {
	return unmarshalEntries[uint32](buf, sizeofMSRList, 4, nativeEndian.Uint32(buf))
}

func marshalIRQRouting(entries []IRQRoutingEntry) ([]byte, error) {
	return marshalFlex(irqRoutingHeader{Nr: uint32(len(entries))}, entries)
}
