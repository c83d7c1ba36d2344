// Package virtio implements the device side of virtio 1.2: split virtqueues
// (section 2.7) and the virtio-over-PCI transport (section 4.1), for the
// device models in its subpackages (blk, net).
//
// # Split virtqueues
//
// A Queue reads the driver's descriptor table and available ring and writes
// the used ring, all in guest RAM reached through Memory. The guest is
// hostile, so the queue is where every number the driver puts in the rings is
// checked, once (../shared/STYLE.md, rule 7):
//
//   - at activation: the size is a power of two from 1 to 32768; the rings
//     are aligned (descriptors 16, available 2, used 4 bytes) and lie in RAM;
//   - per chain: the available index advances by at most the queue size; a
//     head or next index is below the size; a chain visits at most as many
//     descriptors as its table has (so a loop ends); an indirect table is
//     negotiated, a whole number of descriptors, not empty, not nested and not
//     chained on; device-writable buffers come after all device-readable
//     ones; the buffers add up to less than 4 GiB; every buffer lies in RAM.
//
// A chain that breaks a rule is a *GuestError. The queue is then broken: it
// hands out nothing more until it is reset, and the transport sets
// DEVICE_NEEDS_RESET. Devices only ever see a validated Chain, whose buffers
// alias guest RAM: the driver can still change their bytes under the device,
// so a device copies what it validates (a request header) before trusting it.
//
// A Queue is not safe for concurrent use: one device worker owns it.
package virtio
