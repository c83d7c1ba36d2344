package console

import (
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// openPTY returns both ends of a new pseudo-terminal (pty(7)).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	require.NoError(t, unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestAttachTerminalRawModeAndEscape(t *testing.T) {
	master, slave := openPTY(t)
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	require.NotZero(t, before.Lflag&unix.ICANON, "a new terminal starts in cooked mode")

	got := make(chan []byte, 16)
	quit := make(chan struct{})
	s, err := Attach(slave, func(b []byte) { got <- append([]byte(nil), b...) }, func() { close(quit) })
	require.NoError(t, err)
	raw, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	assert.Zero(t, raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG), "raw: no line editing, echo or signals")

	// Ctrl-C reaches the guest as a byte, not as a signal to govmm.
	_, err = master.Write([]byte{0x03})
	require.NoError(t, err)
	assert.Equal(t, []byte{0x03}, <-got)
	_, err = master.Write([]byte{EscapeKey, QuitKey})
	require.NoError(t, err)
	<-quit

	require.NoError(t, s.Restore())
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	assert.Equal(t, before.Lflag, after.Lflag, "Restore puts the terminal back")
	assert.True(t, term.IsTerminal(int(slave.Fd())))
}
