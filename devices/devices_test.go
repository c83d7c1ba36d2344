package devices_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/bus"
	"github.com/govmm/govmm/devices/i8042"
	"github.com/govmm/govmm/devices/legacy"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/rtc"
	"github.com/govmm/govmm/devices/serial"
	"github.com/govmm/govmm/internal/devtest"
)

// TestConventionalLayout wires every model at its conventional address the
// way the VMM does, and checks that the ranges do not collide and that each
// answers through the bus.
func TestConventionalLayout(t *testing.T) {
	var (
		resets int
		status []byte
		booted bool
	)
	out := &devtest.Buffer{}
	uart := serial.New(serial.Config{IRQ: &devtest.IRQ{}, Output: out})
	kbc := i8042.New(i8042.Config{KbdIRQ: &devtest.IRQ{}, AUXIRQ: &devtest.IRQ{}, OnReset: func() { resets++ }})
	rc := legacy.NewResetControl(func() { resets++ })
	sink := legacy.NewSink()

	pio := bus.NewPIO(nil)
	regs := []struct {
		base bus.Port
		size uint32
		dev  devices.Device
	}{
		{devices.COM1Port, devices.UARTPortCount, uart},
		{devices.I8042DataPort, 1, kbc.DataPort()},
		{devices.I8042CommandPort, 1, kbc.CommandPort()},
		{devices.RTCPort, devices.RTCPortCount, rtc.New(rtc.Config{})},
		{devices.PCIConfigPort, devices.PCIConfigPortCount, pci.NewEmptyHost(pci.Config{ResetControl: rc})},
		{devices.DebugExitPort, 1, legacy.NewDebugExit(func(s byte) { status = append(status, s) })},
		{devices.BootMarkerPort, 1, legacy.NewBootMarker(func(time.Time) { booted = true }, nil)},
		{devices.POSTPort, 1, sink},
		{devices.DMAPagePort, 1, sink},
		{devices.IODelayPort, 1, sink},
	}
	for _, r := range regs {
		require.NoError(t, pio.Register(r.base, r.size, r.dev), "register %#x", r.base)
	}

	b := []byte{0}
	for _, c := range []byte("ok\n") {
		assert.True(t, pio.Write(devices.COM1Port, []byte{c}))
	}
	assert.True(t, pio.Read(devices.COM1Port+5, b))
	assert.NotZero(t, b[0]&0x20, "LSR.THRE")
	assert.True(t, pio.Write(devices.BootMarkerPort, []byte{legacy.BootMarkerValue}))
	assert.True(t, pio.Write(devices.POSTPort, []byte{0x42}))
	assert.True(t, pio.Write(devices.DebugExitPort, []byte{7}))
	assert.True(t, pio.Write(devices.ResetControlPort, []byte{0x06}))
	assert.True(t, pio.Write(devices.I8042CommandPort, []byte{0xfe}))
	assert.False(t, pio.Read(0x61, b), "port 0x61 is KVM's")
	assert.True(t, pio.Write(devices.RTCPort, []byte{0x0d}))
	assert.True(t, pio.Read(devices.RTCPort+1, b))
	assert.Equal(t, byte(0x80), b[0], "RTC register D")

	require.NoError(t, uart.Close())
	assert.Equal(t, "ok\n", out.String())
	assert.True(t, booted, "boot marker")
	assert.Equal(t, []byte{7}, status, "exit status")
	assert.Equal(t, 2, resets, "resets: got %d, want 2 (0xcf9 and 0xfe)", resets)
	assert.Equal(t, map[bus.Port]uint64{0x61: 1}, pio.Unhandled())
	assert.Equal(t, uint64(1), sink.Accesses())
}

func TestIRQLineFunc(t *testing.T) {
	var got []bool
	var line devices.IRQLine = devices.IRQLineFunc(func(high bool) { got = append(got, high) })
	line.SetLevel(true)
	line.SetLevel(false)
	devices.NoIRQ{}.SetLevel(true)
	assert.Equal(t, []bool{true, false}, got)
}
