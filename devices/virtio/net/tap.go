package net

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Offload flags of TUNSETOFFLOAD (<linux/if_tun.h>).
const (
	tunFCSUM   = 0x01
	tunFTSO4   = 0x02
	tunFTSO6   = 0x04
	tunFTSOECN = 0x08
)

// VnetHdrSize is the size of struct virtio_net_hdr_v1 (virtio 1.2 section
// 5.1.6): what precedes every frame on the tap and in the guest's buffers.
const VnetHdrSize = 12

// Tap is an open tap device with virtio-net headers.
type Tap struct {
	fd   int
	name string
}

// OpenTap attaches to the tap called name, creating it if it does not
// exist; a name containing %d (such as "govmm%d") has the kernel pick the
// first free number. A tap govmm creates exists only while it is open, so it
// disappears however govmm exits. Needs CAP_NET_ADMIN (or a persistent tap
// owned by the user).
func OpenTap(name string) (*Tap, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("tap %s: /dev/net/tun is missing: load the tun module (modprobe tun)", name)
		}
		return nil, fmt.Errorf("tap %s: open /dev/net/tun: %w", name, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("tap %s: %w: creating or attaching a tap needs root (CAP_NET_ADMIN), or a persistent tap owned by you (ip tuntap add mode tap user $USER name NAME)", name, err)
		}
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("tap %s: %w: another process (another VM?) has it open", name, err)
		}
		return nil, fmt.Errorf("tap %s: TUNSETIFF: %w", name, err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VnetHdrSize); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: TUNSETVNETHDRSZ: %w", name, err)
	}
	t := &Tap{fd: fd, name: strings.TrimRight(ifr.Name(), "\x00")}
	// No offloads until the guest accepts them.
	if err := t.SetOffload(false, false, false, false); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// TapFromFD takes over fd, a tap opened by OpenTap in this process or
// another that passed it on (across exec): it checks that fd is a tap with
// virtio-net headers and sets it up as OpenTap does. The Tap owns fd; on
// error, fd is closed.
func TapFromFD(fd int) (_ *Tap, err error) {
	defer func() {
		if err != nil {
			unix.Close(fd)
		}
	}()
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return nil, err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return nil, fmt.Errorf("descriptor %d is not a tap: TUNGETIFF: %w", fd, err)
	}
	name := strings.TrimRight(ifr.Name(), "\x00")
	// IFF_NO_PI is not checked: TUNGETIFF was seen to report it for a
	// tap opened without it.
	const want = unix.IFF_TAP | unix.IFF_VNET_HDR
	if flags := ifr.Uint16(); flags&want != want {
		return nil, fmt.Errorf("tap %s: not opened as govmm opens taps (flags %#x: want TAP and VNET_HDR)", name, flags)
	}
	// It came without close-on-exec (that is how it got here); nothing
	// this process starts should inherit it.
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VnetHdrSize); err != nil {
		return nil, fmt.Errorf("tap %s: TUNSETVNETHDRSZ: %w", name, err)
	}
	t := &Tap{fd: fd, name: name}
	if err := t.SetOffload(false, false, false, false); err != nil {
		return nil, err
	}
	return t, nil
}

// CloseTapFDs closes the open taps of fds that nothing took over (see
// TapFromFD), skipping the non-positive ones.
func CloseTapFDs(fds ...int) {
	for _, fd := range fds {
		if fd > 0 {
			unix.Close(fd)
		}
	}
}

// Name is the tap's interface name.
func (t *Tap) Name() string { return t.name }

// FD is the tap's descriptor: non-blocking, one frame (with its header) per
// read or write.
func (t *Tap) FD() int { return t.fd }

// SetOffload tells the tap which offloads the guest accepts in received
// frames: partial checksums, TCP segmentation over IPv4 and IPv6, and ECN
// with TSO.
func (t *Tap) SetOffload(csum, tso4, tso6, ecn bool) error {
	var flags int
	if csum {
		flags |= tunFCSUM
		if tso4 {
			flags |= tunFTSO4
		}
		if tso6 {
			flags |= tunFTSO6
		}
		if ecn && (tso4 || tso6) {
			flags |= tunFTSOECN
		}
	}
	if err := unix.IoctlSetInt(t.fd, unix.TUNSETOFFLOAD, flags); err != nil {
		return fmt.Errorf("tap %s: TUNSETOFFLOAD %#x: %w", t.name, flags, err)
	}
	return nil
}

// Close closes the tap; one govmm created goes away.
func (t *Tap) Close() error {
	if err := unix.Close(t.fd); err != nil {
		return fmt.Errorf("close tap %s: %w", t.name, err)
	}
	return nil
}
