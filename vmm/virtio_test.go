package vmm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/devices/bus"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/internal/devtest"
	"github.com/govmm/govmm/internal/ratelog"
)

// idleBackend is a virtio device that is never activated.
type idleBackend struct{}

func (idleBackend) Type() virtio.DeviceType           { return virtio.TypeBlock }
func (idleBackend) Features() uint64                  { return 0 }
func (idleBackend) QueueSizes() []uint16              { return []uint16{16} }
func (idleBackend) ConfigSize() int                   { return 0 }
func (idleBackend) ReadConfig(uint64, []byte)         {}
func (idleBackend) WriteConfig(uint64, []byte)        {}
func (idleBackend) Activate(*virtio.Activation) error { return nil }
func (idleBackend) Reset()                            {}

// A guest that keeps moving a BAR onto another device's addresses is
// refused each time; the host's log gets a few warnings, not one per move.
func TestRefusedBARMovesAreRateLimited(t *testing.T) {
	log, out := devtest.Logger()
	m := &Machine{log: log, guestLog: ratelog.New(log),
		devs: &deviceSet{mmio: mmioBus{bus.NewMMIO(log)}, pio: pioBus{bus.NewPIO(log)}}}
	dev, err := virtio.NewPCIDevice(virtio.PCIConfig{Backend: idleBackend{}, ClassCode: 0x018000, Logger: log})
	require.NoError(t, err)
	p := &virtioPCI{m: m, name: "virtio-test", dev: dev, mapped: map[int]uint64{}}

	const mmioAddr, port = 0xe000_0000, 0x1000
	require.NoError(t, m.devs.mmio.Register(mmioAddr, virtio.BARSize, &devtest.Recorder{}))
	require.NoError(t, m.devs.pio.Register(port, 256, &devtest.Recorder{}))
	for range 500 {
		p.OnBARChange(0, pci.NoAddress, mmioAddr)
		p.OnBARChange(virtio.NotifyPortsBAR, pci.NoAddress, port)
	}

	warnings := strings.Count(out.String(), "PCI BAR not mapped")
	assert.Positive(t, warnings, "a refused move is logged")
	assert.LessOrEqual(t, warnings, ratelog.DefaultBurst, "a thousand refused moves in well under a second")
	assert.Equal(t, map[int]uint64{}, p.mapped, "nothing was mapped")
}
