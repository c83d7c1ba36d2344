package vmm

import (
	"net"

	virtionet "github.com/govmm/govmm/devices/virtio/net"
)

// NetConfig is one virtio network device on a tap. Creating taps and
// configuring their host end is package hostnet's job, done before the VM
// starts, so the VMM itself never needs netlink.
type NetConfig struct {
	// Tap is the tap's name: the one to attach to, or, with TapFD, the
	// name of the tap already open.
	Tap string
	// TapFD, when positive, is a tap this process already has open (govmm
	// run opened it and passed it on across exec); the VM owns it from
	// then on and closes it.
	TapFD int
	// MAC is the guest's address; nil means a random one.
	MAC net.HardwareAddr
}

// openedNet is a tap ready for a device, and the guest's address on it.
type openedNet struct {
	tap *virtionet.Tap
	mac net.HardwareAddr
}

// openNets opens every tap (or takes over the open ones) before KVM is
// touched. On error it has closed them all, the passed-on ones included.
func openNets(cfgs []NetConfig) (_ []openedNet, err error) {
	var nets []openedNet
	handled := 0 // cfgs[:handled] are in nets, or were closed
	defer func() {
		if err != nil {
			for _, n := range nets {
				n.tap.Close()
			}
			for _, c := range cfgs[handled:] {
				virtionet.CloseTapFDs(c.TapFD)
			}
		}
	}()
	for i, c := range cfgs {
		handled = i + 1
		var tap *virtionet.Tap
		if c.TapFD > 0 {
			tap, err = virtionet.TapFromFD(c.TapFD) // closes it on error
		} else {
			tap, err = virtionet.OpenTap(c.Tap)
		}
		if err != nil {
			return nil, err
		}
		mac := c.MAC
		if mac == nil {
			mac = virtionet.RandomMAC()
		}
		nets = append(nets, openedNet{tap: tap, mac: mac})
	}
	return nets, nil
}
