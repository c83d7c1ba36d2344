package vcpu

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/kvm"
)

// scriptedCPU returns the exits of its script in order, then blocks like a
// vCPU in guest mode until immediate_exit is set.
type scriptedCPU struct {
	mu        sync.Mutex // guards script and immediate
	script    []kvm.Exit
	immediate bool
	runErr    error
	reset     bool // the registers read back as the reset state
}

func (c *scriptedCPU) ID() int { return 0 }
func (c *scriptedCPU) Run() (kvm.Exit, error) {
	for {
		c.mu.Lock()
		if c.runErr != nil {
			c.mu.Unlock()
			return nil, c.runErr
		}
		if len(c.script) > 0 {
			e := c.script[0]
			c.script = c.script[1:]
			c.mu.Unlock()
			return e, nil
		}
		if c.immediate {
			c.mu.Unlock()
			return kvm.IntrExit{}, nil
		}
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}
func (c *scriptedCPU) SetImmediateExit(on bool) { c.mu.Lock(); c.immediate = on; c.mu.Unlock() }
func (c *scriptedCPU) GetRegs() (kvm.Regs, error) {
	if c.reset {
		return kvm.Regs{RIP: 0xfff0, RFLAGS: 2}, nil
	}
	return kvm.Regs{RIP: 0x1000200, RSP: 0x8000}, nil
}

func (c *scriptedCPU) GetSregs() (kvm.Sregs, error) {
	if c.reset {
		var s kvm.Sregs
		s.CR0 = 0x10
		s.CS.Selector, s.CS.Base = 0xf000, 0xffff0000
		return s, nil
	}
	return kvm.Sregs{CR0: 0x80000011}, nil
}

// recorder logs every access the loop dispatches, and answers reads with
// a fixed byte.
type recorder struct{ log []string }

func (r *recorder) ReadPIO(port uint16, data []byte) {
	for i := range data {
		data[i] = 0x5a
	}
	r.log = append(r.log, fmt.Sprintf("in %#x/%d", port, len(data)))
}
func (r *recorder) WritePIO(port uint16, data []byte) {
	r.log = append(r.log, fmt.Sprintf("out %#x %x", port, data))
}
func (r *recorder) ReadMMIO(addr uint64, data []byte) {
	r.log = append(r.log, fmt.Sprintf("mmio read %#x/%d", addr, len(data)))
}
func (r *recorder) WriteMMIO(addr uint64, data []byte) {
	r.log = append(r.log, fmt.Sprintf("mmio write %#x %x", addr, data))
}

func TestRunDispatchesAndStops(t *testing.T) {
	inData := make([]byte, 4)
	for _, tc := range []struct {
		name      string
		script    []kvm.Exit
		wantLog   []string
		wantStop  Stop
		wantExits ExitCounts
		wantErr   string
	}{
		{
			name: "rep outsb goes out byte by byte, then HLT",
			script: []kvm.Exit{
				&kvm.IOExit{Direction: kvm.IOOut, Size: 1, Port: 0x3f8, Count: 3, Data: []byte("abc")},
				kvm.HLTExit{},
			},
			wantLog:   []string{"out 0x3f8 61", "out 0x3f8 62", "out 0x3f8 63"},
			wantStop:  StopHalted,
			wantExits: ExitCounts{IO: 1, Other: 1},
		},
		{
			name: "rep insw fills each item",
			script: []kvm.Exit{
				&kvm.IOExit{Direction: kvm.IOIn, Size: 2, Port: 0x1f0, Count: 2, Data: inData},
				kvm.ShutdownExit{},
			},
			wantLog:  []string{"in 0x1f0/2", "in 0x1f0/2"},
			wantStop: StopTripleFault,
		},
		{
			name: "mmio both ways; interrupts are not stops",
			script: []kvm.Exit{
				&kvm.MMIOExit{Addr: 0xd0000000, Data: []byte{1, 2, 3, 4}, IsWrite: true},
				kvm.IntrExit{},
				&kvm.MMIOExit{Addr: 0xd0000004, Data: make([]byte, 8)},
				&kvm.SystemEventExit{Type: kvm.SystemEventShutdown},
			},
			wantLog:   []string{"mmio write 0xd0000000 01020304", "mmio read 0xd0000004/8"},
			wantStop:  StopPowerOff,
			wantExits: ExitCounts{MMIO: 2, Interrupted: 1, Other: 1},
		},
		{name: "reset event", script: []kvm.Exit{&kvm.SystemEventExit{Type: kvm.SystemEventReset}}, wantStop: StopReset},
		{name: "crash event", script: []kvm.Exit{&kvm.SystemEventExit{Type: kvm.SystemEventCrash}}, wantStop: StopCrash},
		{
			name:    "failed entry dumps registers",
			script:  []kvm.Exit{&kvm.FailEntryExit{HardwareEntryFailureReason: 0x21}},
			wantErr: "could not enter the guest (hardware entry failure reason 0x21)\nrip=0x0000000001000200",
		},
		{
			name:    "internal error",
			script:  []kvm.Exit{&kvm.InternalErrorExit{Suberror: 1}},
			wantErr: "KVM internal error",
		},
		{
			name:    "unknown exit",
			script:  []kvm.Exit{&kvm.UnknownExit{Reason: 99}},
			wantErr: "unhandled exit",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			r := NewRunner(&scriptedCPU{script: tc.script}, rec, rec)
			stop, err := r.Run()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Contains(t, err.Error(), "cr0=0x80000011")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantStop, stop)
			assert.Equal(t, tc.wantLog, rec.log)
			if tc.wantExits != (ExitCounts{}) {
				assert.Equal(t, tc.wantExits, r.Exits())
			}
		})
	}
	assert.Equal(t, []byte{0x5a, 0x5a, 0x5a, 0x5a}, inData, "IN data lands in the exit's buffer")
}

func TestRunReturnsKVMRunErrors(t *testing.T) {
	r := NewRunner(&scriptedCPU{runErr: errors.New("bad file descriptor")}, &recorder{}, &recorder{})
	_, err := r.Run()
	require.ErrorContains(t, err, "vcpu 0: bad file descriptor")
}

func TestKickStopsABlockedVCPU(t *testing.T) {
	r := NewRunner(&scriptedCPU{}, &recorder{}, &recorder{})
	done := make(chan Stop)
	go func() {
		stop, err := r.Run()
		assert.NoError(t, err)
		done <- stop
	}()
	time.Sleep(10 * time.Millisecond)
	r.Kick()
	r.Kick() // idempotent
	select {
	case stop := <-done:
		assert.Equal(t, StopKicked, stop)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Kick")
	}
	// A runner kicked before it starts never enters the guest.
	r2 := NewRunner(&scriptedCPU{script: []kvm.Exit{kvm.HLTExit{}}}, &recorder{}, &recorder{})
	r2.Kick()
	stop, err := r2.Run()
	require.NoError(t, err)
	assert.Equal(t, StopKicked, stop)
}

// TestRegistersAfterATripleFault: the state a triple fault left is shown,
// unless KVM already reset the vCPU (AMD), which is said plainly.
func TestRegistersAfterATripleFault(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reset bool
		want  string
	}{
		{"state kept", false, "rip=0x0000000001000200"},
		{"state reset by KVM", true, "unavailable: KVM has already reset the vCPU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRunner(&scriptedCPU{script: []kvm.Exit{kvm.ShutdownExit{}}, reset: tc.reset}, &recorder{}, &recorder{})
			stop, err := r.Run()
			require.NoError(t, err)
			require.Equal(t, StopTripleFault, stop)
			assert.Contains(t, r.Registers(), tc.want)
		})
	}
}
