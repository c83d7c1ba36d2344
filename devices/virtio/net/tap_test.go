package net

import (
	"errors"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openTestTap opens a new tap, or skips where this host gives none (no
// /dev/net/tun, or no CAP_NET_ADMIN); the end-to-end network tests cover
// taps inside the nested harness, where there always are.
func openTestTap(t *testing.T) *Tap {
	t.Helper()
	tap, err := OpenTap("govmmtest%d")
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOENT) {
		t.Skipf("no taps on this host: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { tap.Close() })
	return tap
}

// A tap passed on by descriptor (as govmm run passes it to govmm-vmm across
// exec) is taken over with its name, and only if it is a tap with
// virtio-net headers.
func TestTapFromFD(t *testing.T) {
	tap := openTestTap(t)
	fd, err := unix.Dup(tap.FD()) // like exec: the same open tap, no close-on-exec
	require.NoError(t, err)
	got, err := TapFromFD(fd)
	require.NoError(t, err)
	defer got.Close()
	assert.Equal(t, tap.Name(), got.Name())
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	require.NoError(t, err)
	assert.NotZero(t, flags&unix.FD_CLOEXEC, "close-on-exec is set again")
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	require.NoError(t, err)
	assert.NotZero(t, fl&unix.O_NONBLOCK)

	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	pipeFD, err := unix.Dup(int(r.Fd()))
	require.NoError(t, err)
	_, err = TapFromFD(pipeFD)
	assert.ErrorContains(t, err, "is not a tap")
	_, err = unix.FcntlInt(uintptr(pipeFD), unix.F_GETFD, 0)
	assert.ErrorIs(t, err, unix.EBADF, "refused, and closed")

	for _, flags := range []uint16{unix.IFF_TAP | unix.IFF_NO_PI, unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR} {
		raw, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		require.NoError(t, err)
		ifr, err := unix.NewIfreq("govmmtest%d")
		require.NoError(t, err)
		ifr.SetUint16(flags)
		require.NoError(t, unix.IoctlIfreq(raw, unix.TUNSETIFF, ifr))
		_, err = TapFromFD(raw)
		assert.ErrorContains(t, err, "not opened as govmm opens taps", "flags %#x", flags)
	}
}
