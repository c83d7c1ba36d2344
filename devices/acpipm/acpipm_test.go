package acpipm

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

func TestPowerOffSequence(t *testing.T) {
	offs := 0
	pm := New(Config{S5SleepType: 5, OnPowerOff: func() { offs++ }})
	ctl := pm.ControlBlock()
	got := make([]byte, 2)
	ctl.Read(0, got)
	assert.Equal(t, uint16(1), binary.LittleEndian.Uint16(got), "SCI_EN reads 1: ACPI mode without an SMI handshake")

	// What Linux writes to enter S5 (read-modify-write keeps SCI_EN).
	ctl.Write(0, le16(0x1401))
	assert.Zero(t, offs, "SLP_TYP alone is not a request")
	ctl.Write(0, le16(0x3401))
	assert.Equal(t, 1, offs)
	ctl.Read(0, got)
	assert.Equal(t, uint16(0x1401), binary.LittleEndian.Uint16(got), "SLP_EN reads 0")
}

func TestControlWritesThatAreNotS5(t *testing.T) {
	for _, v := range []uint16{0x2001 | 3<<10, 0x0001, 0x2000 | 1<<10} {
		offs := 0
		pm := New(Config{S5SleepType: 5, OnPowerOff: func() { offs++ }})
		pm.ControlBlock().Write(0, le16(v))
		assert.Zero(t, offs, "write %#x", v)
	}
	// Byte writes: the high byte alone with SLP_EN and SLP_TYP=5.
	offs := 0
	pm := New(Config{S5SleepType: 5, OnPowerOff: func() { offs++ }})
	pm.ControlBlock().Write(1, []byte{0x34})
	assert.Equal(t, 1, offs)
}

func TestEventBlock(t *testing.T) {
	pm := New(Config{})
	ev := pm.EventBlock()
	ev.Write(2, le16(0x0121)) // enable GBL_EN | RTC_EN | PWRBTN... as Linux does
	got := make([]byte, 2)
	ev.Read(2, got)
	assert.Equal(t, uint16(0x0121), binary.LittleEndian.Uint16(got), "enable reads back")
	ev.Read(0, got)
	assert.Zero(t, binary.LittleEndian.Uint16(got), "no events pending")
	ev.Write(0, le16(0xffff)) // write 1 to clear: harmless
	all := make([]byte, 4)
	ev.Read(0, all)
	assert.Equal(t, []byte{0, 0, 0x21, 0x01}, all)
}

func TestHostileAccesses(t *testing.T) {
	pm := New(Config{S5SleepType: 5, OnPowerOff: func() { t.Error("no power off") }})
	for _, off := range []uint64{0, 1, 2, 3, 4, 100, 1 << 62} {
		for _, n := range []int{1, 2, 4, 8} {
			data := make([]byte, n)
			pm.EventBlock().Read(off, data)
			pm.EventBlock().Write(off, data)
			pm.ControlBlock().Read(off, data)
			if off+uint64(n) > 2 || off >= 2 {
				pm.ControlBlock().Write(off, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}[:n])
			}
		}
	}
	got := make([]byte, 4)
	pm.ControlBlock().Read(1, got)
	assert.Equal(t, []byte{0, 0xff, 0xff, 0xff}, got, "bytes past the block read as 0xff")
}
