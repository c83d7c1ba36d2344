// Package isolation is the probe's side of govmm's isolation comparison:
// what a process sees and may do directly on the host, in a runc container
// on the host, in a runc container inside a govmm VM, and directly inside
// the VM. The probe program (./probe) calls Collect where it runs and prints
// the Report as one marked line on stdout; the caller fishes it out of the
// output (a guest console full of other text) with ParseReport and lines up
// the places with WriteTable.
//
// The boot ID is the fact that tells kernels apart: the host and the guest
// may boot the very same kernel build, so release and version can match
// while the boot ID cannot.
//
// The privileged checks ask the kernel for something it refuses either at
// its permission check (EPERM) or just after it, on a deliberately invalid
// argument (EBADF, EFAULT): the second error proves the permission was
// granted without the operation happening. Where no such argument exists
// (I/O ports, mknod, mount) the operation is undone at once. Nothing the
// probe does outlives it, which matters because it also runs as root on a
// real host.
package isolation
