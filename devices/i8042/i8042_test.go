package i8042

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/internal/devtest"
)

// fixture is a controller with counting IRQ fakes and a reset counter, and
// helpers that access its ports like Linux's i8042 driver does.
type fixture struct {
	t      *testing.T
	c      *Controller
	data   devices.Device
	cmd    devices.Device
	kbd    *devtest.IRQ
	aux    *devtest.IRQ
	resets atomic.Int32
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, kbd: &devtest.IRQ{}, aux: &devtest.IRQ{}}
	logger, _ := devtest.Logger()
	f.c = New(Config{KbdIRQ: f.kbd, AUXIRQ: f.aux, OnReset: func() { f.resets.Add(1) }, Logger: logger})
	f.data, f.cmd = f.c.DataPort(), f.c.CommandPort()
	return f
}

func (f *fixture) status() byte {
	b := []byte{0}
	f.cmd.Read(0, b)
	return b[0]
}

func (f *fixture) readData() byte {
	b := []byte{0}
	f.data.Read(0, b)
	return b[0]
}

func (f *fixture) writeCmd(v byte) {
	require.Zero(f.t, f.status()&stIBF, "IBF set before command %#x", v)
	f.cmd.Write(0, []byte{v})
}

func (f *fixture) writeData(v byte) {
	require.Zero(f.t, f.status()&stIBF, "IBF set before data %#x", v)
	f.data.Write(0, []byte{v})
}

// command is Linux's __i8042_command: a command, its parameters, then
// nresp bytes read back, each of which must be waiting (OBF) at once.
func (f *fixture) command(cmd byte, params []byte, nresp int) []byte {
	f.writeCmd(cmd)
	for _, p := range params {
		f.writeData(p)
	}
	var resp []byte
	for range nresp {
		require.NotZero(f.t, f.status()&stOBF, "command %#x: no response byte %d", cmd, len(resp))
		resp = append(resp, f.readData())
	}
	return resp
}

// flush is Linux's i8042_flush: it fails if more than 16 bytes come out.
func (f *fixture) flush() int {
	n := 0
	for f.status()&stOBF != 0 {
		require.Less(f.t, n, 16, "controller still has data after 16 reads")
		f.readData()
		n++
	}
	return n
}

// ps2 sends a byte to the keyboard and collects the answer bytes.
func (f *fixture) ps2(v byte) []byte {
	f.writeData(v)
	var got []byte
	for f.status()&stOBF != 0 {
		require.Zero(f.t, f.status()&stAUXB, "keyboard answer marked as AUX")
		got = append(got, f.readData())
	}
	return got
}

func TestLinuxProbe(t *testing.T) {
	f := newFixture(t)

	// i8042_controller_check and i8042_controller_selftest.
	assert.Zero(t, f.flush(), "bytes pending at power-on")
	got := f.command(cmdSelfTest, nil, 1)
	assert.Equal(t, []byte{0x55}, got, "self-test: got %#v, want 0x55", got)

	// i8042_controller_init: two identical CTR reads, then a CTR write with
	// the keyboard disabled and its interrupt off.
	ctr := f.command(cmdReadRAM, nil, 1)[0]
	assert.Equal(t, ctr, f.command(cmdReadRAM, nil, 1)[0], "CTR reads differ")
	assert.NotZero(t, ctr&cbXlate, "CTR %#x: want translation on", ctr)
	assert.NotZero(t, f.status()&stInhibit, "status: keylock active")
	ctr = (ctr | cbKbdDis | cbAUXDis) &^ (cbKbdInt | cbAUXInt)
	f.command(cmdWriteRAM, []byte{ctr}, 0)
	assert.Equal(t, ctr, f.command(cmdReadRAM, nil, 1)[0], "CTR readback")
	f.flush()

	// i8042_check_aux: the loop test echoes the byte as AUX data.
	f.flush()
	f.writeCmd(cmdWriteAUXOBuf)
	f.writeData(0x5a)
	require.NotZero(t, f.status()&stOBF, "AUX loop: no byte")
	assert.NotZero(t, f.status()&stAUXB, "AUX loop: byte not marked AUX")
	assert.Equal(t, byte(0x5a), f.readData(), "AUX loop byte")

	// i8042_toggle_aux: the AUX-disable bit follows 0xa7/0xa8.
	f.command(cmdAUXDisable, nil, 0)
	assert.NotZero(t, f.command(cmdReadRAM, nil, 1)[0]&cbAUXDis, "AUXDIS after 0xa7")
	f.command(cmdAUXEnable, nil, 0)
	assert.Zero(t, f.command(cmdReadRAM, nil, 1)[0]&cbAUXDis, "AUXDIS after 0xa8")

	// AUX IRQ delivery test: enable AUX interrupts, loop 0xa5, expect IRQ 12.
	ctr = (ctr | cbAUXInt) &^ cbAUXDis
	f.command(cmdWriteRAM, []byte{ctr}, 0)
	f.command(cmdWriteAUXOBuf, []byte{0xa5}, 0)
	assert.True(t, f.aux.Level(), "IRQ 12 after AUX loop: got low, want high")
	assert.False(t, f.kbd.Level(), "IRQ 1 after AUX loop: got high, want low")
	assert.NotZero(t, f.status()&stAUXB)
	assert.Equal(t, byte(0xa5), f.readData())
	assert.False(t, f.aux.Level(), "IRQ 12 after read: got high, want low")
	ctr = (ctr | cbAUXDis) &^ cbAUXInt
	f.command(cmdWriteRAM, []byte{ctr}, 0)

	// i8042_set_mux_mode: the third loop byte comes back unchanged, so
	// this is not an active multiplexing controller.
	f.flush()
	for _, v := range []byte{0xf0, 0x56, 0xa4} {
		got := f.command(cmdWriteAUXOBuf, []byte{v}, 1)
		assert.Equal(t, []byte{v}, got, "loop %#x", v)
	}

	// Keyboard port enabled with interrupts; atkbd's probe and activation.
	ctr = (ctr | cbKbdInt) &^ cbKbdDis
	f.command(cmdWriteRAM, []byte{ctr}, 0)
	kbdTests := []struct {
		send []byte
		want []byte
	}{
		{send: []byte{kbdDisable}, want: []byte{kbdACK}},
		{send: []byte{kbdReadID}, want: []byte{kbdACK, 0xab, 0x83}},
		{send: []byte{kbdSetLEDs, 0x00}, want: []byte{kbdACK, kbdACK}},
		{send: []byte{kbdTypematic, 0x00}, want: []byte{kbdACK, kbdACK}},
		{send: []byte{kbdEnable}, want: []byte{kbdACK}},
		{send: []byte{kbdReset}, want: []byte{kbdACK, kbdBATOK}},
		{send: []byte{kbdScanSet, 0x00}, want: []byte{kbdACK, kbdACK, 2}},
		{send: []byte{kbdEcho}, want: []byte{kbdEcho}},
		{send: []byte{0x42}, want: []byte{kbdNAK}},
		{send: []byte{kbdResend}, want: []byte{kbdNAK}},
	}
	for _, tt := range kbdTests {
		before := f.kbd.Raises()
		var got []byte
		for _, b := range tt.send {
			got = append(got, f.ps2(b)...)
		}
		assert.Equal(t, tt.want, got, "keyboard %#v: got %#v, want %#v", tt.send, got, tt.want)
		edges := f.kbd.Raises() - before
		assert.Equal(t, len(tt.want), edges, "keyboard %#v: got %d IRQ 1 edges, want one per byte", tt.send, edges)
	}

	// psmouse: a byte for the AUX device times out (no mouse).
	ctr = (ctr | cbAUXInt) &^ cbAUXDis
	f.command(cmdWriteRAM, []byte{ctr}, 0)
	f.command(cmdWriteAUX, []byte{0xf2}, 0)
	st := f.status()
	want := byte(stOBF | stAUXB | stTimeout)
	assert.Equal(t, want, st&want, "status after AUX send: got %#x, want %#x set", st, want)
	assert.True(t, f.aux.Level(), "IRQ 12 after AUX send")
	assert.Equal(t, byte(respNoDevice), f.readData())

	assert.Zero(t, f.resets.Load(), "resets during probe")
	assert.Equal(t, Stats{}, f.c.Stats())
}

func TestReset(t *testing.T) {
	tests := []struct {
		name      string
		cmd       byte
		data      []byte
		wantReset bool
	}{
		{name: "pulse reset line 0xfe", cmd: 0xfe, wantReset: true},
		{name: "pulse all lines 0xf0", cmd: 0xf0, wantReset: true},
		{name: "pulse nothing 0xff", cmd: 0xff},
		{name: "pulse A20 only 0xfd", cmd: 0xfd},
		{name: "output port bit 0 clear", cmd: cmdWriteOutput, data: []byte{0xce}, wantReset: true},
		{name: "output port bit 0 set", cmd: cmdWriteOutput, data: []byte{0xcf}},
		{name: "output port write abandoned", cmd: cmdWriteOutput},
		{name: "0xfe to the keyboard", cmd: cmdWriteRAM, data: []byte{resetCmdB, 0xfe}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.writeCmd(tt.cmd)
			for _, d := range tt.data {
				f.writeData(d)
			}
			want := int32(0)
			if tt.wantReset {
				want = 1
			}
			got := f.resets.Load()
			assert.Equal(t, want, got, "resets: got %d, want %d", got, want)
			assert.Equal(t, uint64(want), f.c.Stats().Resets)
		})
	}

	// No callback: counted only.
	c := New(Config{})
	c.CommandPort().Write(0, []byte{0xfe})
	assert.Equal(t, uint64(1), c.Stats().Resets)
}

func TestOutputPortAndMisc(t *testing.T) {
	f := newFixture(t)
	got := f.command(cmdReadOutput, nil, 1)[0]
	assert.Equal(t, byte(resetOutput), got, "output port: got %#x, want %#x", got, resetOutput)
	f.command(cmdA20Off, nil, 0)
	assert.Zero(t, f.command(cmdReadOutput, nil, 1)[0]&0x02, "A20 after 0xdd")
	f.command(cmdA20On, nil, 0)
	assert.NotZero(t, f.command(cmdReadOutput, nil, 1)[0]&0x02, "A20 after 0xdf")
	assert.Equal(t, []byte{0x00}, f.command(cmdAUXTest, nil, 1), "AUX interface test")
	assert.Equal(t, []byte{0x00}, f.command(cmdKbdTest, nil, 1), "keyboard interface test")
	assert.Equal(t, []byte{inputPort}, f.command(cmdReadInput, nil, 1))
	assert.Equal(t, []byte{0x00}, f.command(cmdReadTest, nil, 1))
	assert.Equal(t, []byte{0x77}, f.command(cmdWriteKbdOBuf, []byte{0x77}, 1))

	// Controller RAM beyond the command byte.
	f.command(cmdWriteRAM+5, []byte{0x99}, 0)
	assert.Equal(t, []byte{0x99}, f.command(cmdReadRAM+5, nil, 1))

	// 0xad/0xae toggle the keyboard-disable bit.
	f.command(cmdKbdDisable, nil, 0)
	assert.NotZero(t, f.command(cmdReadRAM, nil, 1)[0]&cbKbdDis)
	f.command(cmdKbdEnable, nil, 0)
	assert.Zero(t, f.command(cmdReadRAM, nil, 1)[0]&cbKbdDis)

	// Status A2 tracks which port was written last.
	f.writeCmd(cmdKbdEnable)
	assert.NotZero(t, f.status()&stCmd)
	f.writeData(kbdEcho)
	assert.Zero(t, f.status()&stCmd)
	f.flush()

	// Reading an empty output buffer repeats the last byte.
	assert.Equal(t, byte(kbdEcho), f.readData())

	// Unknown commands are counted and ignored.
	f.writeCmd(0x90)
	assert.Zero(t, f.status()&stOBF)
	assert.Equal(t, uint64(1), f.c.Stats().BadCommands)
}

func TestOutputQueueBounded(t *testing.T) {
	f := newFixture(t)
	for range OutputQueueSize + 4 {
		f.writeCmd(cmdReadRAM)
	}
	assert.Equal(t, uint64(4), f.c.Stats().Dropped, "dropped")
	assert.Equal(t, OutputQueueSize, f.flush(), "flushed")
}

func TestGarbageNeverPanics(t *testing.T) {
	f := newFixture(t)
	r := rand.New(rand.NewPCG(3, 4))
	ports := []devices.Device{f.data, f.cmd}
	sizes := []int{0, 1, 2, 4, 8}
	for range 20000 {
		p := ports[r.IntN(2)]
		data := make([]byte, sizes[r.IntN(len(sizes))])
		for i := range data {
			data[i] = byte(r.UintN(256))
		}
		off := uint64(0)
		if r.IntN(20) == 0 {
			off = r.Uint64()
		}
		if r.IntN(2) == 0 {
			p.Write(off, data)
		} else {
			p.Read(off, data)
		}
	}
	// Every value to both ports.
	for v := range 256 {
		f.cmd.Write(0, []byte{byte(v)})
		f.data.Write(0, []byte{byte(v)})
	}
	// Still answers the probe.
	f.flush()
	assert.Equal(t, []byte{0x55}, f.command(cmdSelfTest, nil, 1))
	assert.Positive(t, f.resets.Load(), "random commands include reset pulses")
}
