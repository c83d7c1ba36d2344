// Package blk is a virtio block device (virtio 1.2 section 5.2) backed by a
// raw disk image file.
//
// Images are raw, never probed for a format: a guest could otherwise write a
// header that makes the host open other files. Each image is locked while a
// VM uses it (flock: exclusive for read-write, shared for read-only), so two
// VMs never write one disk.
//
// Requests: IN, OUT, FLUSH (fdatasync), GET_ID, DISCARD and WRITE_ZEROES
// (hole punching and zero ranges where the host file system allows). A
// request completes only after its system call returned, so data the guest
// flushed is on the host's disk. Every request header is copied out of
// guest memory before it is checked, and sector arithmetic is checked for
// overflow; a request outside the disk, or any host I/O error, completes with
// IOERR and the device carries on. A malformed chain (no room for the status
// byte, a header cut short) is a driver error: the device needs a reset.
package blk
