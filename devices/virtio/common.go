package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// struct virtio_pci_common_cfg (virtio 1.2 section 4.1.4.3): field offsets.
const (
	cfgDeviceFeatureSelect = 0
	cfgDeviceFeature       = 4
	cfgDriverFeatureSelect = 8
	cfgDriverFeature       = 12
	cfgConfigMSIXVector    = 16
	cfgNumQueues           = 18
	cfgDeviceStatus        = 20
	cfgConfigGeneration    = 21
	cfgQueueSelect         = 22
	cfgQueueSize           = 24
	cfgQueueMSIXVector     = 26
	cfgQueueEnable         = 28
	cfgQueueNotifyOff      = 30
	cfgQueueDesc           = 32
	cfgQueueDriver         = 40
	cfgQueueDevice         = 48
	cfgQueueNotifyData     = 56
	cfgQueueReset          = 58
	cfgEnd                 = 60
)

// commonFieldWidth gives the width of the field at each offset.
var commonFieldWidth = map[uint64]uint64{
	cfgDeviceFeatureSelect: 4, cfgDeviceFeature: 4, cfgDriverFeatureSelect: 4, cfgDriverFeature: 4,
	cfgConfigMSIXVector: 2, cfgNumQueues: 2, cfgDeviceStatus: 1, cfgConfigGeneration: 1,
	cfgQueueSelect: 2, cfgQueueSize: 2, cfgQueueMSIXVector: 2, cfgQueueEnable: 2, cfgQueueNotifyOff: 2,
	cfgQueueDesc: 8, cfgQueueDriver: 8, cfgQueueDevice: 8, cfgQueueNotifyData: 2, cfgQueueReset: 2,
}

// commonBytes renders the common configuration as the driver reads it.
// d.mu is held.
func (d *PCIDevice) commonBytes() [commonSize]byte {
	var b [commonSize]byte
	le := binary.LittleEndian
	le.PutUint32(b[cfgDeviceFeatureSelect:], d.deviceFeatSel)
	if d.deviceFeatSel < 2 {
		le.PutUint32(b[cfgDeviceFeature:], uint32(d.offeredFeatures()>>(32*d.deviceFeatSel)))
	}
	le.PutUint32(b[cfgDriverFeatureSelect:], d.driverFeatSel)
	if d.driverFeatSel < 2 {
		le.PutUint32(b[cfgDriverFeature:], uint32(d.driverFeatures>>(32*d.driverFeatSel)))
	}
	le.PutUint16(b[cfgConfigMSIXVector:], d.configVector)
	le.PutUint16(b[cfgNumQueues:], uint16(len(d.queues)))
	b[cfgDeviceStatus] = d.status
	b[cfgConfigGeneration] = d.generation
	le.PutUint16(b[cfgQueueSelect:], d.queueSel)
	if q := d.selected(); q != nil {
		le.PutUint16(b[cfgQueueSize:], q.size)
		le.PutUint16(b[cfgQueueMSIXVector:], q.vector)
		if q.enabled {
			le.PutUint16(b[cfgQueueEnable:], 1)
		}
		le.PutUint16(b[cfgQueueNotifyOff:], d.queueSel)
		le.PutUint64(b[cfgQueueDesc:], q.desc)
		le.PutUint64(b[cfgQueueDriver:], q.driver)
		le.PutUint64(b[cfgQueueDevice:], q.devic)
		le.PutUint16(b[cfgQueueNotifyData:], d.queueSel)
	}
	// Section 4.1.4.3.1: a queue_select naming no queue reads queue_size 0.
	return b
}

// selected is the queue queue_select names, or nil. d.mu is held.
func (d *PCIDevice) selected() *queueRegs {
	if int(d.queueSel) < len(d.queues) {
		return &d.queues[d.queueSel]
	}
	return nil
}

func (d *PCIDevice) readCommon(offset uint64, data []byte) {
	d.mu.Lock()
	b := d.commonBytes()
	d.mu.Unlock()
	copy(data, b[offset:])
}

// commonField finds the field a write of n bytes at offset updates: the
// whole field, or one 32-bit half of a 64-bit one (section 4.1.3.1 lets
// drivers split those).
func commonField(offset, n uint64) (base, width uint64, ok bool) {
	for base := offset; ; base-- {
		if w, found := commonFieldWidth[base]; found {
			switch {
			case base == offset && n == w:
				return base, w, true
			case w == 8 && n == 4 && (offset == base || offset == base+4):
				return base, w, true
			}
			return 0, 0, false
		}
		if base == 0 {
			return 0, 0, false
		}
	}
}

func (d *PCIDevice) writeCommon(offset uint64, data []byte) {
	n := uint64(len(data))
	base, width, ok := commonField(offset, n)
	if !ok || offset >= cfgEnd {
		d.log.Debug("virtio-pci: common configuration write fits no field", "offset", offset, "len", n)
		return
	}
	if base == cfgDeviceStatus {
		d.writeStatus(data[0])
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	// Merge the write into the field's current value.
	cur := d.commonBytes()
	copy(cur[offset:], data)
	var v uint64
	switch width {
	case 1:
		v = uint64(cur[base])
	case 2:
		v = uint64(binary.LittleEndian.Uint16(cur[base:]))
	case 4:
		v = uint64(binary.LittleEndian.Uint32(cur[base:]))
	case 8:
		v = binary.LittleEndian.Uint64(cur[base:])
	}
	q := d.selected()
	// Section 4.1.4.3.2: the driver does not change a queue's
	// configuration once it enabled it, nor anything after DRIVER_OK;
	// such writes are ignored, so what the device runs never changes
	// under it.
	frozen := d.status&StatusDriverOK != 0 || (q != nil && q.enabled)
	switch base {
	case cfgDeviceFeatureSelect:
		d.deviceFeatSel = uint32(v)
	case cfgDriverFeatureSelect:
		d.driverFeatSel = uint32(v)
	case cfgDriverFeature:
		if d.status&StatusFeaturesOK != 0 || d.driverFeatSel > 1 {
			d.log.Debug("virtio-pci: driver feature write ignored", "select", d.driverFeatSel, "status", d.status)
			return
		}
		shift := 32 * d.driverFeatSel
		d.driverFeatures = d.driverFeatures&^(0xffffffff<<shift) | (v&0xffffffff)<<shift
	case cfgConfigMSIXVector:
		d.configVector = d.vectorOrNone(uint16(v))
	case cfgQueueSelect:
		d.queueSel = uint16(v)
	case cfgQueueMSIXVector:
		if q != nil {
			q.vector = d.vectorOrNone(uint16(v))
		}
	case cfgQueueSize, cfgQueueEnable, cfgQueueDesc, cfgQueueDriver, cfgQueueDevice:
		if q == nil || (frozen && !(base == cfgQueueEnable && v == 1 && q.enabled)) {
			d.log.Debug("virtio-pci: queue configuration write ignored", "queue", d.queueSel, "offset", base)
			return
		}
		switch base {
		case cfgQueueSize:
			q.size = uint16(v) // checked when the queue is activated
		case cfgQueueEnable:
			// Only 1 may be written (section 4.1.4.3.2); disabling a
			// queue is a reset.
			q.enabled = v == 1
		case cfgQueueDesc:
			q.desc = v
		case cfgQueueDriver:
			q.driver = v
		case cfgQueueDevice:
			q.devic = v
		}
	default:
		d.log.Debug("virtio-pci: write to a read-only common configuration field", "offset", base)
	}
}

// vectorOrNone returns v if it names an MSI-X table entry; otherwise
// NO_VECTOR, which is how a device says it could not take the vector
// (section 4.1.4.3.2 and 4.1.5.1.2).
func (d *PCIDevice) vectorOrNone(v uint16) uint16 {
	if uint64(v) < d.msix.TableSize()/16 {
		return v
	}
	return NoVector
}

// writeStatus handles a device_status write: reset, feature negotiation
// and activation (section 2.1, 3.1.1).
func (d *PCIDevice) writeStatus(v uint8) {
	d.transition.Lock()
	defer d.transition.Unlock()
	if v == 0 {
		d.resetLocked()
		return
	}
	d.mu.Lock()
	old := d.status
	// FAILED, or NEEDS_RESET which only the device sets, are kept; the
	// driver may only add bits, except through a reset.
	next := old | v&^StatusDeviceNeedsReset
	if v&^old&StatusFeaturesOK != 0 {
		if err := d.checkFeatures(); err != nil {
			d.log.Warn("virtio-pci: features refused", "type", d.backend.Type(), "err", err)
			next &^= StatusFeaturesOK // the driver reads it back and gives up
		}
	}
	activate := next&StatusDriverOK != 0 && old&StatusDriverOK == 0 && next&StatusFeaturesOK != 0 && !d.active
	if next&StatusDriverOK != 0 && next&StatusFeaturesOK == 0 {
		d.log.Warn("virtio-pci: DRIVER_OK without FEATURES_OK", "type", d.backend.Type())
		next |= StatusDeviceNeedsReset
	}
	d.status = next
	if !activate {
		d.mu.Unlock()
		return
	}
	act, err := d.activation()
	d.mu.Unlock()
	if err == nil {
		err = d.backend.Activate(act)
	}
	if err != nil {
		d.fail(fmt.Errorf("activate: %w", err))
		return
	}
	d.mu.Lock()
	d.active = true
	d.mu.Unlock()
}

func (d *PCIDevice) checkFeatures() error {
	offered := d.offeredFeatures()
	if extra := d.driverFeatures &^ offered; extra != 0 {
		return fmt.Errorf("driver accepted features %#x the device did not offer", extra)
	}
	if d.driverFeatures&FeatureVersion1 == 0 {
		return errors.New("driver did not accept VIRTIO_F_VERSION_1 (a legacy driver)")
	}
	return nil
}

// activation builds the queues the driver configured. d.mu is held.
func (d *PCIDevice) activation() (*Activation, error) {
	act := &Activation{
		Features:  d.driverFeatures,
		Queues:    make([]*Queue, len(d.queues)),
		Kicks:     d.kicks,
		Interrupt: d.Interrupt,
		Fail:      d.fail,
	}
	for i, r := range d.queues {
		if !r.enabled {
			continue
		}
		if r.size > r.maxSize {
			return nil, &GuestError{Reason: fmt.Sprintf("queue %d: size %d is larger than the device's %d", i, r.size, r.maxSize)}
		}
		q, err := NewQueue(d.mem, QueueConfig{
			Size: r.size, Desc: r.desc, Avail: r.driver, Used: r.devic,
			EventIdx: d.driverFeatures&FeatureEventIdx != 0,
			Indirect: d.driverFeatures&FeatureIndirectDesc != 0,
		})
		if err != nil {
			return nil, fmt.Errorf("queue %d: %w", i, err)
		}
		act.Queues[i] = q
		// A notification sent before activation is not lost: the worker
		// looks at every queue when it starts.
	}
	return act, nil
}

// reset stops the backend and returns every register to its reset state.
func (d *PCIDevice) reset() {
	d.transition.Lock()
	defer d.transition.Unlock()
	d.resetLocked()
}

// resetLocked is reset with d.transition held. The backend is stopped
// without d.mu held: its worker may be waiting for d.mu in Interrupt.
func (d *PCIDevice) resetLocked() {
	d.mu.Lock()
	active := d.active
	d.mu.Unlock()
	if active {
		d.backend.Reset()
	}
	for _, k := range d.kicks {
		k.Drain()
	}
	d.mu.Lock()
	d.resetRegs()
	d.mu.Unlock()
}
