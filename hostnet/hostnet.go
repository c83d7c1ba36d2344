package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	virtionet "github.com/govmm/govmm/devices/virtio/net"
	"github.com/govmm/govmm/guest"
	"github.com/govmm/govmm/vmm"
)

// Net is one network device as the user asked for it.
type Net struct {
	// Tap is an existing tap to attach to. With Auto it is empty.
	Tap string
	// Auto creates a tap (govmmN), gives the host end 10.213.N.1/24 and
	// has the guest agent configure 10.213.N.2/24 with the host as its
	// gateway. The tap goes away with the VM.
	Auto bool
	// MAC is the guest's address; nil means a random one.
	MAC net.HardwareAddr
}

// autoTapPattern is the name of taps govmm creates: the kernel picks N.
const autoTapPattern = "govmm%d"

// Open opens (or creates) the tap of every net and returns the VM's network
// devices, each with its open tap, and the kernel command-line words that
// configure the guest's side. The VM closes the taps; on error Open has
// closed what it opened.
func Open(nets []Net) (cfgs []vmm.NetConfig, cmdline []string, err error) {
	defer func() {
		if err != nil {
			Close(cfgs)
		}
	}()
	for _, n := range nets {
		mac := n.MAC
		if mac == nil {
			mac = virtionet.RandomMAC()
		}
		name := n.Tap
		if n.Auto {
			name = autoTapPattern
		}
		tap, err := virtionet.OpenTap(name)
		if err != nil {
			return cfgs, nil, err
		}
		cfgs = append(cfgs, vmm.NetConfig{Tap: tap.Name(), TapFD: tap.FD(), MAC: mac})
		if !n.Auto {
			continue
		}
		host, guestAddr, err := autoAddresses(tap.Name())
		if err != nil {
			return cfgs, nil, err
		}
		if err := configureHostEnd(tap.Name(), host); err != nil {
			return cfgs, nil, err
		}
		word, err := guest.EncodeNet(guest.Net{MAC: mac, Addr: guestAddr, Gateway: host.Addr()})
		if err != nil {
			return cfgs, nil, err
		}
		cmdline = append(cmdline, word)
	}
	return cfgs, cmdline, nil
}

// Close closes the taps Open opened, for when no VM will take them.
func Close(cfgs []vmm.NetConfig) {
	for _, c := range cfgs {
		virtionet.CloseTapFDs(c.TapFD)
	}
}

// autoAddresses gives tap govmmN the link 10.213.N.0/24: .1 for the host,
// .2 for the guest.
func autoAddresses(tapName string) (host, guestAddr netip.Prefix, err error) {
	n, err := strconv.Atoi(strings.TrimPrefix(tapName, "govmm"))
	if err != nil || n < 0 || n > 255 {
		return host, guestAddr, fmt.Errorf("tap %s: no address for it: --net auto numbers its taps govmm0 to govmm255", tapName)
	}
	base := netip.AddrFrom4([4]byte{10, 213, byte(n), 0})
	host = netip.PrefixFrom(base.Next(), 24)
	guestAddr = netip.PrefixFrom(base.Next().Next(), 24)
	return host, guestAddr, nil
}

// configureHostEnd gives the host end of the tap its address and brings it
// up.
func configureHostEnd(name string, addr netip.Prefix) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tap %s: %w", name, err)
	}
	ipnet := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipnet}); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("tap %s: address %s is already in use on this host: %w", name, addr, err)
		}
		return fmt.Errorf("tap %s: add address %s: %w", name, addr, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("tap %s: bring up: %w", name, err)
	}
	return nil
}
