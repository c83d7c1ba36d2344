// Package net is a virtio network device (virtio 1.2 section 5.1) whose
// host side is a Linux tap, and the tap itself.
//
// Frames cross as they are: the tap is opened with IFF_VNET_HDR and a
// 12-byte header, the layout of struct virtio_net_hdr_v1, so a transmitted
// chain is written to the tap in one writev and a received packet lands in
// the guest's buffers with the kernel's own checksum and segmentation
// metadata. The offloads the guest accepts (checksum, TSO) are mirrored onto
// the tap with TUNSETOFFLOAD, so the host kernel hands the guest only what it
// can take.
//
// One worker goroutine serves both queues. It polls the tap only while the
// guest has receive buffers: when they run out it stops reading (the tap's
// own queue then fills and drops, as a NIC with a full ring does) and
// resumes when the guest refills and notifies. Nothing is buffered beyond
// one packet. Transmit chains that are too large or that the tap refuses
// are dropped and counted.
package net
