// Package hostnet sets up the host side of a VM's networks before the VM
// starts: it opens each tap and, for --net auto, creates one and gives its
// host end an address (netlink). It runs in govmm run's process; the VMM
// process (govmm-vmm) inherits the open taps, so it needs neither netlink
// nor the privilege to configure interfaces.
package hostnet
