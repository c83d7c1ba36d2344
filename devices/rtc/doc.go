// Package rtc models the PC's CMOS real-time clock, a Motorola MC146818A
// (as integrated in every PC chipset), at ports 0x70 (index) and 0x71
// (data).
//
// Register layouts follow the MC146818A datasheet (Motorola), "Address Map"
// (Figure 2: the 14 clock and control bytes followed by 50 bytes of RAM),
// "Time, Calendar and Alarm Locations" (Table 3: binary and BCD data modes,
// 12- and 24-hour formats) and "Registers A-D". The PC extends the RAM to
// 128 bytes and keeps the century in byte 0x32 (the IBM AT convention, which
// ACPI's FADT names as the default century location).
//
// # Time
//
// The clock registers are not stored: every read converts the host clock
// (UTC; injectable for tests) into the guest-visible format that register B
// selects, BCD or binary, 24- or 12-hour. Writes to them are ignored and
// counted ([Stats].TimeWrites): the guest cannot move the host's clock, and
// this model does not keep a per-guest offset. UIP (register A bit 7) is set
// during the last 244 µs before each second boundary, the window in which a
// real MC146818 warns that an update is imminent, so a guest that follows
// the datasheet's "read while UIP is clear" protocol reads a consistent
// time.
//
// # Not modelled
//
// The periodic, alarm and update-ended interrupts (IRQ 8): register C never
// reports a flag and the model has no IRQ line. The alarm bytes are plain
// RAM. Linux's rtc_cmos driver works without them (it reads the time and
// falls back to polling for update events).
package rtc
