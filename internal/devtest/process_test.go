package devtest

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExited(t *testing.T) {
	assert.False(t, Exited(os.Getpid()), "this test is running")

	zombie := exec.Command("true")
	require.NoError(t, zombie.Start())
	// Not waited for: once it ends it stays a zombie until Wait below.
	assert.Eventually(t, func() bool { return Exited(zombie.Process.Pid) }, 10*time.Second, 10*time.Millisecond, "an ended child not yet reaped")
	require.NoError(t, zombie.Wait())
	assert.True(t, Exited(zombie.Process.Pid), "a reaped child is gone")

	sleeper := exec.Command("sleep", "60")
	require.NoError(t, sleeper.Start())
	assert.False(t, Exited(sleeper.Process.Pid), "a sleeping child")
	require.NoError(t, sleeper.Process.Kill())
	sleeper.Wait()
}
