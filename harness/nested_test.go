package harness

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// defaultOuter is the outer guest `make images` built. These tests boot it,
// so they need QEMU and the images, but not /dev/kvm: they run on any host.
func defaultOuter(t *testing.T) *Outer {
	t.Helper()
	o, err := DefaultOuter()
	require.NoError(t, err)
	return o
}

func TestNestedRunsHostCommandWithKVM(t *testing.T) {
	o := defaultOuter(t)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code, err := o.Run(context.Background(), Command{
		Args: []string{"sh", "-c", `test -c /dev/kvm || exit 99
echo "hello from $(uname -r)"; echo to-stderr >&2; echo scratch > /tmp/govmm-harness-write && cat /tmp/govmm-harness-write; exit 7`},
		Stdout: &stdout, Stderr: &stderr,
	})
	require.NoError(t, err)
	t.Logf("outer guest round trip: %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, 7, code, "exit status; stdout %q stderr %q", stdout.String(), stderr.String())
	assert.Equal(t, "hello from 6.1.0-56-amd64\nscratch\n", stdout.String())
	assert.Equal(t, "to-stderr\n", stderr.String())
}

func TestNestedHarnessFailuresSayWhatToDo(t *testing.T) {
	good := defaultOuter(t)
	for _, tc := range []struct {
		name  string
		outer Outer
		args  []string
		want  []string
	}{
		{
			name:  "no qemu",
			outer: Outer{Kernel: good.Kernel, Initramfs: good.Initramfs, QEMU: "qemu-system-x86_64-not-installed"},
			args:  []string{"true"},
			want:  []string{"not found", "apt-get install qemu-system-x86"},
		},
		{
			name:  "images missing",
			outer: Outer{Kernel: good.Kernel, Initramfs: "/nonexistent/outer.cpio"},
			args:  []string{"true"},
			want:  []string{"/nonexistent/outer.cpio", "make images"},
		},
		{
			name:  "empty command",
			outer: *good,
			want:  []string{"empty command"},
		},
		{
			name:  "program not found",
			outer: *good,
			args:  []string{"govmm-no-such-program"},
			want:  []string{"govmm-no-such-program", "not found"},
		},
		{
			name:  "outer kernel does not boot",
			outer: Outer{Kernel: good.Initramfs, Initramfs: good.Initramfs, Timeout: time.Minute},
			args:  []string{"true"},
			want:  []string{"qemu", "console"},
		},
		{
			name:  "timeout",
			outer: Outer{Kernel: good.Kernel, Initramfs: good.Initramfs, Timeout: 3 * time.Second},
			args:  []string{"sleep", "600"},
			want:  []string{"did not finish within 3s", "raise the timeout"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.outer.Run(context.Background(), Command{Args: tc.args})
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
