// Package bus routes a vCPU's port I/O and MMIO exits to the emulated
// device that owns the address.
//
// There are two address spaces with distinct address types: [PIO] (16-bit
// [Port] numbers, the x86 I/O space) and [MMIO] (64-bit guest-physical
// [Addr]esses). Each maps non-overlapping ranges [base, base+size) to a
// devices.Device.
//
// # Dispatch
//
// An access [addr, addr+len(data)) goes to the device whose range contains
// all of it; the device sees offset addr-base. An access that nobody owns,
// that straddles two devices or runs past the end of a range, or that has
// no bytes, is unhandled: Read fills data with 0xFF (what an ISA bus with
// nothing driving it returns), Write drops it, both return false. Unhandled
// accesses are counted per address and logged (slog.LevelDebug) the first
// time each address is seen; they are never fatal. Counts are kept for at
// most MaxTrackedAddrs distinct addresses so that a guest sweeping the
// address space cannot grow the table without bound; further addresses are
// only counted in total ([PIO.Untracked], [MMIO.Untracked]).
//
// # Concurrency
//
// Register the devices before the vCPUs run. Dispatch reads an immutable
// snapshot of the range table through an atomic pointer, so any number of
// vCPUs may dispatch at once without locking; Register is nonetheless safe
// to call concurrently with dispatch (it publishes a new snapshot), but an
// access racing with the registration of its device may still miss it.
// The unhandled-access counters are guarded by a mutex, taken only on the
// unhandled path. Devices guard their own state.
package bus
