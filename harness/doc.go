// Package harness runs commands that need KVM: on /dev/kvm directly where
// this host has a usable one, and otherwise inside an "outer guest": a stock
// Debian kernel under QEMU's software CPU emulating an AMD CPU with SVM,
// whose own KVM (kvm-amd, nested paging) gives a working /dev/kvm. The
// host's root file system is shared into the outer guest read-only over 9p,
// so host binaries (test binaries included) run there unchanged, with an
// in-memory overlay for writes that never reach the host.
//
// Test packages that need KVM call TestMain from their own TestMain; tests
// then run exactly the same way in both places. GOVMM_HARNESS=direct|nested
// forces a mode; GOVMM_HARNESS=skip skips them, loudly.
//
// Timings inside the outer guest are slow and distorted: compare ratios
// against a peer run in the same outer guest, never absolute numbers.
package harness
