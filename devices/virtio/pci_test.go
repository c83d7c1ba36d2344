package virtio

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/internal/devtest"
	"github.com/govmm/govmm/memory"
)

// fakeBackend records what the transport asks of it.
type fakeBackend struct {
	mu          sync.Mutex
	activations []*Activation
	resets      int
	config      [8]byte
	sizes       []uint16 // queue sizes; nil: 16 and 8
}

func (b *fakeBackend) Type() DeviceType { return TypeBlock }
func (b *fakeBackend) Features() uint64 { return 1 << 9 }
func (b *fakeBackend) QueueSizes() []uint16 {
	if b.sizes != nil {
		return b.sizes
	}
	return []uint16{16, 8}
}
func (b *fakeBackend) ConfigSize() int { return len(b.config) }
func (b *fakeBackend) ReadConfig(off uint64, data []byte) {
	clear(data)
	copy(data, b.config[off:])
}
func (b *fakeBackend) WriteConfig(off uint64, data []byte) {}
func (b *fakeBackend) Activate(a *Activation) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.activations = append(b.activations, a)
	return nil
}
func (b *fakeBackend) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.resets++
}

type pciRig struct {
	t    *testing.T
	dev  *PCIDevice
	be   *fakeBackend
	intx *devtest.IRQ
	ram  []byte
}

func newPCIRig(t *testing.T) *pciRig {
	t.Helper()
	ram := make([]byte, 1<<20)
	mem, err := memory.FromBytes(memory.Region{GPA: 0, Host: ram})
	require.NoError(t, err)
	be := &fakeBackend{config: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}
	intx := &devtest.IRQ{}
	dev, err := NewPCIDevice(PCIConfig{Backend: be, Memory: mem, ClassCode: 0x018000, INTx: intx})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, dev.Close()) })
	return &pciRig{t: t, dev: dev, be: be, intx: intx, ram: ram}
}

func (r *pciRig) w8(off uint64, v uint8) { r.dev.Write(off, []byte{v}) }
func (r *pciRig) w16(off uint64, v uint16) {
	r.dev.Write(off, binary.LittleEndian.AppendUint16(nil, v))
}
func (r *pciRig) w32(off uint64, v uint32) {
	r.dev.Write(off, binary.LittleEndian.AppendUint32(nil, v))
}
func (r *pciRig) w64(off uint64, v uint64) {
	r.dev.Write(off, binary.LittleEndian.AppendUint64(nil, v))
}
func (r *pciRig) r8(off uint64) uint8 {
	b := make([]byte, 1)
	r.dev.Read(off, b)
	return b[0]
}
func (r *pciRig) r16(off uint64) uint16 {
	b := make([]byte, 2)
	r.dev.Read(off, b)
	return binary.LittleEndian.Uint16(b)
}
func (r *pciRig) r32(off uint64) uint32 {
	b := make([]byte, 4)
	r.dev.Read(off, b)
	return binary.LittleEndian.Uint32(b)
}

func (r *pciRig) features() uint64 {
	r.w32(cfgDeviceFeatureSelect, 0)
	lo := r.r32(cfgDeviceFeature)
	r.w32(cfgDeviceFeatureSelect, 1)
	return uint64(r.r32(cfgDeviceFeature))<<32 | uint64(lo)
}

func (r *pciRig) negotiate(features uint64) uint8 {
	r.w8(cfgDeviceStatus, 0)
	r.w8(cfgDeviceStatus, StatusAcknowledge)
	r.w8(cfgDeviceStatus, StatusAcknowledge|StatusDriver)
	r.w32(cfgDriverFeatureSelect, 0)
	r.w32(cfgDriverFeature, uint32(features))
	r.w32(cfgDriverFeatureSelect, 1)
	r.w32(cfgDriverFeature, uint32(features>>32))
	r.w8(cfgDeviceStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK)
	return r.r8(cfgDeviceStatus)
}

// setupQueue programs queue i with rings at base (4 KiB apart).
func (r *pciRig) setupQueue(i uint16, size uint16, base uint64) {
	r.w16(cfgQueueSelect, i)
	r.w16(cfgQueueSize, size)
	r.w64(cfgQueueDesc, base)
	r.w32(cfgQueueDriver, uint32(base+0x1000)) // split into halves, as drivers may
	r.w32(cfgQueueDriver+4, 0)
	r.w64(cfgQueueDevice, base+0x2000)
	r.w16(cfgQueueMSIXVector, i)
	r.w16(cfgQueueEnable, 1)
}

func TestPCIIdentity(t *testing.T) {
	r := newPCIRig(t)
	fn := r.dev.PCIFunction()
	b := make([]byte, 4)
	fn.ReadConfig(0, b)
	assert.Equal(t, uint32(0x1042_1af4), binary.LittleEndian.Uint32(b), "vendor 0x1af4, device 0x1040+2 (block)")
	fn.ReadConfig(8, b)
	assert.Equal(t, uint32(0x018000_01), binary.LittleEndian.Uint32(b), "class and revision 1")
	assert.Equal(t, uint16(2), r.r16(cfgNumQueues))
}

func TestPCIFeatureNegotiation(t *testing.T) {
	r := newPCIRig(t)
	offered := r.features()
	assert.Equal(t, uint64(1<<9|FeatureVersion1|FeatureIndirectDesc|FeatureEventIdx), offered)
	r.w32(cfgDeviceFeatureSelect, 7)
	assert.Equal(t, uint32(0), r.r32(cfgDeviceFeature), "no features beyond bit 63")

	assert.Zero(t, r.negotiate(1<<9)&StatusFeaturesOK, "a legacy driver (no VERSION_1) is refused")
	assert.Zero(t, r.negotiate(FeatureVersion1|1<<3)&StatusFeaturesOK, "features not offered are refused")
	assert.NotZero(t, r.negotiate(FeatureVersion1|FeatureEventIdx)&StatusFeaturesOK)
	// After FEATURES_OK the features are fixed.
	r.w32(cfgDriverFeatureSelect, 0)
	r.w32(cfgDriverFeature, 0)
	assert.Equal(t, uint32(FeatureEventIdx), r.r32(cfgDriverFeature))
}

func TestPCIActivationAndReset(t *testing.T) {
	r := newPCIRig(t)
	require.NotZero(t, r.negotiate(FeatureVersion1|FeatureIndirectDesc)&StatusFeaturesOK)
	r.setupQueue(0, 16, 0x10000)
	r.w16(cfgQueueSelect, 1)
	assert.Equal(t, uint16(8), r.r16(cfgQueueSize))
	assert.Equal(t, uint16(1), r.r16(cfgQueueNotifyOff))
	r.w8(cfgDeviceStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK)

	require.Len(t, r.be.activations, 1)
	a := r.be.activations[0]
	assert.Equal(t, uint64(FeatureVersion1|FeatureIndirectDesc), a.Features)
	require.NotNil(t, a.Queues[0])
	assert.Equal(t, uint16(16), a.Queues[0].Size())
	assert.Nil(t, a.Queues[1], "queue 1 was not enabled")

	// Frozen after DRIVER_OK.
	r.w16(cfgQueueSelect, 0)
	r.w64(cfgQueueDesc, 0x50000)
	r.w16(cfgQueueSize, 4)
	assert.Equal(t, uint32(0x10000), r.r32(cfgQueueDesc))
	assert.Equal(t, uint16(16), r.r16(cfgQueueSize))

	// A notification reaches the queue's eventfd.
	r.w16(notifyOffset+notifyMult*0, 0)
	assert.True(t, a.Kicks[0].Drain())
	assert.False(t, a.Kicks[1].Drain())

	r.w8(cfgDeviceStatus, 0)
	assert.Equal(t, 1, r.be.resets)
	assert.Equal(t, uint8(0), r.r8(cfgDeviceStatus))
	r.w16(cfgQueueSelect, 0)
	assert.Equal(t, uint16(0), r.r16(cfgQueueEnable))
	assert.Equal(t, uint16(NoVector), r.r16(cfgQueueMSIXVector))
}

func TestPCIBadQueueNeedsReset(t *testing.T) {
	for _, tc := range []struct {
		name string
		size uint16
		base uint64
	}{
		{"size not a power of two", 12, 0x10000},
		{"size above the maximum", 32, 0x10000},
		{"rings outside RAM", 16, 0xfff000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newPCIRig(t)
			require.NotZero(t, r.negotiate(FeatureVersion1)&StatusFeaturesOK)
			r.setupQueue(0, tc.size, tc.base)
			r.w8(cfgDeviceStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK)
			assert.Empty(t, r.be.activations)
			assert.True(t, r.dev.NeedsReset())
			assert.Equal(t, 1, r.intx.Raises(), "a configuration change interrupt (INTx: MSI-X is off)")
			assert.Equal(t, uint8(2), r.r8(isrOffset), "ISR: configuration change")
			assert.False(t, r.intx.Level(), "reading the ISR deasserts INTx")

			// A reset recovers the device.
			require.NotZero(t, r.negotiate(FeatureVersion1)&StatusFeaturesOK)
			assert.False(t, r.dev.NeedsReset())
			r.setupQueue(0, 16, 0x10000)
			r.w8(cfgDeviceStatus, StatusAcknowledge|StatusDriver|StatusFeaturesOK|StatusDriverOK)
			assert.Len(t, r.be.activations, 1)
		})
	}
}

func TestPCIDriverOKWithoutFeaturesOK(t *testing.T) {
	r := newPCIRig(t)
	r.w8(cfgDeviceStatus, StatusAcknowledge|StatusDriver|StatusDriverOK)
	assert.Empty(t, r.be.activations)
	assert.True(t, r.dev.NeedsReset())
}

func TestPCIInterruptINTx(t *testing.T) {
	r := newPCIRig(t)
	r.dev.Interrupt(0)
	assert.True(t, r.intx.Level())
	assert.Equal(t, uint8(1), r.r8(isrOffset))
	assert.False(t, r.intx.Level())
	assert.Equal(t, uint8(0), r.r8(isrOffset), "reading cleared it")
}

func TestPCIVectorsOutOfRangeReadNoVector(t *testing.T) {
	r := newPCIRig(t)
	r.w16(cfgConfigMSIXVector, 2) // vectors 0-2 exist (2 queues + config)
	assert.Equal(t, uint16(2), r.r16(cfgConfigMSIXVector))
	r.w16(cfgConfigMSIXVector, 3)
	assert.Equal(t, uint16(NoVector), r.r16(cfgConfigMSIXVector))
	r.w16(cfgQueueSelect, 0)
	r.w16(cfgQueueMSIXVector, 500)
	assert.Equal(t, uint16(NoVector), r.r16(cfgQueueMSIXVector))
}

func TestPCIConfigWindow(t *testing.T) {
	r := newPCIRig(t)
	fn := r.dev.PCIFunction()
	cap := uint64(r.dev.pciCfg)
	fn.WriteConfig(cap+cfgCapBAR, []byte{0})
	fn.WriteConfig(cap+cfgCapOffset, binary.LittleEndian.AppendUint32(nil, deviceOffset+4))
	fn.WriteConfig(cap+cfgCapLength, binary.LittleEndian.AppendUint32(nil, 4))
	b := make([]byte, 4)
	fn.ReadConfig(cap+cfgCapData, b)
	assert.Equal(t, []byte{5, 6, 7, 8}, b, "device configuration bytes 4-7 through the window")

	// Writes go through too: select queue 1 via queue_select.
	fn.WriteConfig(cap+cfgCapOffset, binary.LittleEndian.AppendUint32(nil, cfgQueueSelect))
	fn.WriteConfig(cap+cfgCapLength, binary.LittleEndian.AppendUint32(nil, 2))
	fn.WriteConfig(cap+cfgCapData, []byte{1, 0})
	assert.Equal(t, uint16(1), r.r16(cfgQueueSelect))

	// A window outside the BAR reads nothing and does not panic.
	fn.WriteConfig(cap+cfgCapOffset, binary.LittleEndian.AppendUint32(nil, 0xffffffff))
	fn.ReadConfig(cap+cfgCapData, b)
	fn.WriteConfig(cap+cfgCapData, b)
}

// virtioCap is a vendor capability as a driver reads it.
type virtioCap struct {
	cfgType, bar   uint8
	offset, length uint32
	mult           uint32 // notify_off_multiplier (notification structures)
}

// virtioCaps walks the capability list from its head, as Linux's
// virtio_pci_find_capability does, and returns the virtio structures in
// list order.
func virtioCaps(t *testing.T, d *PCIDevice) []virtioCap {
	t.Helper()
	fn := d.PCIFunction()
	b := make([]byte, 4)
	fn.ReadConfig(0x34, b[:1])
	var caps []virtioCap
	for pos, n := uint64(b[0]), 0; pos != 0; n++ {
		require.Less(t, n, 48, "capability list loops")
		fn.ReadConfig(pos, b)
		id, next := b[0], uint64(b[1])
		if id == 0x09 {
			c := virtioCap{cfgType: b[3]}
			fn.ReadConfig(pos+4, b[:1])
			c.bar = b[0]
			fn.ReadConfig(pos+8, b)
			c.offset = binary.LittleEndian.Uint32(b)
			fn.ReadConfig(pos+12, b)
			c.length = binary.LittleEndian.Uint32(b)
			if c.cfgType == 2 { // VIRTIO_PCI_CAP_NOTIFY_CFG
				fn.ReadConfig(pos+16, b)
				c.mult = binary.LittleEndian.Uint32(b)
			}
			caps = append(caps, c)
		}
		pos = next
	}
	return caps
}

// TestPCINotifyPorts: the notification structure a driver finds first is
// in the I/O BAR, one 16-bit port per queue; writes there reach the
// queue's eventfd (also through the PCI configuration access window), and
// the memory one in BAR0 stays for drivers that cannot use ports.
func TestPCINotifyPorts(t *testing.T) {
	r := newPCIRig(t)
	var notify []virtioCap
	for _, c := range virtioCaps(t, r.dev) {
		if c.cfgType == 2 {
			notify = append(notify, c)
		}
	}
	require.Len(t, notify, 2)
	assert.Equal(t, virtioCap{cfgType: 2, bar: NotifyPortsBAR, offset: 0, length: 4, mult: 2}, notify[0], "ports first")
	assert.Equal(t, virtioCap{cfgType: 2, bar: 0, offset: notifyOffset, length: 8, mult: notifyMult}, notify[1])
	bar := r.dev.ConfigSpace().BAR(NotifyPortsBAR)
	assert.Equal(t, pci.BARIO, bar.Kind)
	assert.Equal(t, uint64(4), bar.Size)
	assert.Equal(t, uint64(4), r.dev.NotifyPortsSize())

	var kicks []Kick
	for _, k := range r.dev.Kicks() {
		k.EventFD = nil
		kicks = append(kicks, k)
	}
	assert.ElementsMatch(t, []Kick{
		{BAR: 0, Offset: notifyOffset, Len: 2}, {BAR: NotifyPortsBAR, Offset: 0, Len: 2},
		{BAR: 0, Offset: notifyOffset + notifyMult, Len: 2}, {BAR: NotifyPortsBAR, Offset: 2, Len: 2},
	}, kicks)

	ports := r.dev.NotifyPorts()
	require.NotNil(t, ports)
	for _, tc := range []struct {
		name   string
		offset uint64
		data   []byte
		want   []bool // queue 0, queue 1 notified
	}{
		{"queue 0", 0, []byte{0, 0}, []bool{true, false}},
		{"queue 1", 2, []byte{1, 0}, []bool{false, true}},
		{"a byte of queue 1's port", 3, []byte{1}, []bool{false, true}},
		{"past the last queue", 4, []byte{2, 0}, []bool{false, false}},
		{"across the end", 3, []byte{1, 0}, []bool{false, false}},
		{"far out", 1 << 40, []byte{0, 0}, []bool{false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.dev.NotifyExits()
			ports.Write(tc.offset, tc.data)
			for q, want := range tc.want {
				assert.Equal(t, want, r.dev.kicks[q].Drain(), "queue %d", q)
			}
			if tc.want[0] || tc.want[1] {
				assert.Equal(t, before+1, r.dev.NotifyExits(), "counted as a notification that exited")
			}
		})
	}
	b := []byte{0xff, 0xff}
	ports.Read(0, b)
	assert.Equal(t, []byte{0, 0}, b, "write-only: reads as zero")

	// The PCI configuration access window reaches the ports too.
	fn := r.dev.PCIFunction()
	cap := uint64(r.dev.pciCfg)
	fn.WriteConfig(cap+cfgCapBAR, []byte{NotifyPortsBAR})
	fn.WriteConfig(cap+cfgCapOffset, binary.LittleEndian.AppendUint32(nil, 2))
	fn.WriteConfig(cap+cfgCapLength, binary.LittleEndian.AppendUint32(nil, 2))
	fn.WriteConfig(cap+cfgCapData, []byte{1, 0})
	assert.True(t, r.dev.kicks[1].Drain(), "queue 1 through the window")
	fn.WriteConfig(cap+cfgCapOffset, binary.LittleEndian.AppendUint32(nil, 4))
	fn.WriteConfig(cap+cfgCapData, []byte{1, 0})
	assert.False(t, r.dev.kicks[0].Drain() || r.dev.kicks[1].Drain(), "a window past the I/O BAR reaches nothing")
}

// TestPCINotifyPortsSize: the I/O BAR is the smallest power of two of at
// least 4 ports that holds a port per queue; a device with more queues
// than 256 ports hold has none, and notifies through BAR0 alone.
func TestPCINotifyPortsSize(t *testing.T) {
	for _, tc := range []struct {
		queues int
		want   uint64
	}{
		{1, 4}, {2, 4}, {3, 8}, {5, 16}, {128, 256}, {129, 0},
	} {
		t.Run(fmt.Sprint(tc.queues), func(t *testing.T) {
			ram := make([]byte, 1<<20)
			mem, err := memory.FromBytes(memory.Region{GPA: 0, Host: ram})
			require.NoError(t, err)
			be := &fakeBackend{sizes: slices.Repeat([]uint16{8}, tc.queues)}
			dev, err := NewPCIDevice(PCIConfig{Backend: be, Memory: mem, ClassCode: 0x018000})
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, dev.Close()) })
			assert.Equal(t, tc.want, dev.NotifyPortsSize())
			bar := dev.ConfigSpace().BAR(NotifyPortsBAR)
			kicks := dev.Kicks()
			var notifyCaps int
			for _, c := range virtioCaps(t, dev) {
				if c.cfgType == 2 {
					notifyCaps++
				}
			}
			if tc.want == 0 {
				assert.Nil(t, dev.NotifyPorts())
				assert.Zero(t, bar.Kind, "no I/O BAR")
				assert.Len(t, kicks, tc.queues)
				assert.Equal(t, 1, notifyCaps)
				return
			}
			assert.Equal(t, pci.BAR{Kind: pci.BARIO, Size: tc.want}, bar)
			assert.Len(t, kicks, 2*tc.queues)
			assert.Equal(t, 2, notifyCaps)
		})
	}
}

// FuzzPCIDevice throws arbitrary register accesses at the transport (BAR0
// and the notification ports).
func FuzzPCIDevice(f *testing.F) {
	f.Add([]byte{0x14, 1, 0x0f, 0x14, 1, 0x04})
	f.Fuzz(func(t *testing.T, ops []byte) {
		r := newPCIRig(t)
		for len(ops) >= 3 {
			off := uint64(binary.LittleEndian.Uint16(ops)) % (BARSize + 16)
			n := []int{1, 2, 4, 8}[ops[2]&3]
			write := ops[2]&4 != 0
			ports := ops[2]&8 != 0
			ops = ops[3:]
			data := make([]byte, n)
			copy(data, ops)
			var target devices.Device = r.dev
			if ports {
				target = r.dev.NotifyPorts()
			}
			if write {
				target.Write(off, data)
			} else {
				target.Read(off, data)
			}
		}
	})
}
