// Package pci models PCI configuration access for a machine with no PCI
// devices: configuration mechanism #1 (PCI Local Bus Specification 3.0,
// section 3.2.2.3.2, "Software Generation of Configuration Transactions")
// with nothing behind it.
//
// [EmptyHost] covers the eight ports 0xcf8-0xcff. A 32-bit access to 0xcf8
// is CONFIG_ADDRESS, which reads back what was written; 0xcfc-0xcff are
// CONFIG_DATA, which reads all ones (no device answers, a master abort) and
// ignores writes. Linux's pci_check_type1() therefore sees mechanism #1,
// finds no host bridge in its sanity check, and boots without PCI.
//
// On PC chipsets only 32-bit accesses to 0xcf8 reach CONFIG_ADDRESS; byte
// and word accesses to 0xcf8-0xcfb go elsewhere, and a byte at 0xcf9 is the
// reset control register. Since a bus cannot register that register inside
// the CONFIG_ADDRESS range, EmptyHost forwards byte accesses to 0xcf9 to
// the device given as Config.ResetControl (at its offset 0). Other narrow
// accesses read all ones and are ignored (Linux's probe for mechanism #2
// makes some).
//
// The type is deliberately separate from anything else so that a real host
// bridge with devices can replace it.
package pci
