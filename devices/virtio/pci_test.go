package virtio

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/devices/internal/devtest"
	"github.com/govmm/govmm/memory"
)

// fakeBackend records what the transport asks of it.
type fakeBackend struct {
	mu          sync.Mutex
	activations []*Activation
	resets      int
	config      [8]byte
}

func (b *fakeBackend) Type() DeviceType     { return TypeBlock }
func (b *fakeBackend) Features() uint64     { return 1 << 9 }
func (b *fakeBackend) QueueSizes() []uint16 { return []uint16{16, 8} }
func (b *fakeBackend) ConfigSize() int      { return len(b.config) }
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

// FuzzPCIDevice throws arbitrary register accesses at the transport.
func FuzzPCIDevice(f *testing.F) {
	f.Add([]byte{0x14, 1, 0x0f, 0x14, 1, 0x04})
	f.Fuzz(func(t *testing.T, ops []byte) {
		r := newPCIRig(t)
		for len(ops) >= 3 {
			off := uint64(binary.LittleEndian.Uint16(ops)) % (BARSize + 16)
			n := []int{1, 2, 4, 8}[ops[2]&3]
			write := ops[2]&4 != 0
			ops = ops[3:]
			data := make([]byte, n)
			copy(data, ops)
			if write {
				r.dev.Write(off, data)
			} else {
				r.dev.Read(off, data)
			}
		}
	})
}
