package main

import (
	"bytes"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/govmm/govmm/guest"
)

// configureNets brings up lo and each interface the host described, found
// by MAC: its address, and a default route through the gateway.
func configureNets(nets []guest.Net) error {
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			return fmt.Errorf("bring up lo: %w", err)
		}
	}
	for _, n := range nets {
		link, err := linkByMAC(n.MAC)
		if err != nil {
			return err
		}
		name := link.Attrs().Name
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.Addr.Addr().AsSlice(), Mask: net.CIDRMask(n.Addr.Bits(), n.Addr.Addr().BitLen())}}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("%s: add address %s: %w", name, n.Addr, err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("%s: bring up: %w", name, err)
		}
		if n.Gateway.IsValid() {
			route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: n.Gateway.AsSlice()}
			if err := netlink.RouteAdd(route); err != nil {
				return fmt.Errorf("%s: default route via %s: %w", name, n.Gateway, err)
			}
		}
	}
	return nil
}

// linkByMAC finds the interface with mac. The virtio-net driver has just
// been loaded; its interface may take a moment to appear.
func linkByMAC(mac net.HardwareAddr) (netlink.Link, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return nil, fmt.Errorf("list interfaces: %w", err)
		}
		for _, l := range links {
			if bytes.Equal(l.Attrs().HardwareAddr, mac) {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no interface with MAC %s (is virtio-net loaded?)", mac)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
