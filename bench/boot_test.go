package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func bootRow(name string, init, exit time.Duration) Row {
	return Row{VMM: name, ToInit: Summary{N: 3, Min: init, Median: init, P95: init}, ToExit: Summary{N: 3, Median: exit, P95: exit}}
}

func TestBootRatios(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []Row
		// want[i] is rows[i]'s InitRatio, ExitRatio and SameFormInitRatio.
		want [][3]float64
	}{
		{
			name: "each govmm row against the bzImage and its own form",
			rows: []Row{
				bootRow(govmmRow, 8*time.Second, 10*time.Second),
				bootRow(govmmVmlinuxRow, 5*time.Second, 8*time.Second),
				bootRow(qemuRow, 8*time.Second, 10*time.Second),
				bootRow(qemuVmlinuxRow, 6*time.Second, 8*time.Second),
			},
			want: [][3]float64{{1, 1, 1}, {1.6, 1.25, 1.2}, {}, {}},
		},
		{
			name: "no vmlinux row for QEMU: only the bzImage ratio",
			rows: []Row{
				bootRow(govmmVmlinuxRow, 4*time.Second, 5*time.Second),
				bootRow(qemuRow, 8*time.Second, 10*time.Second),
			},
			want: [][3]float64{{2, 2, 0}, {}},
		},
		{
			name: "QEMU skipped: no ratios",
			rows: []Row{
				bootRow(govmmRow, 8*time.Second, 10*time.Second),
				{VMM: qemuRow, Skipped: "qemu-system-x86_64 not found"},
			},
			want: [][3]float64{{}, {}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &BootReport{Rows: tc.rows}
			rep.setRatios()
			for i, r := range rep.Rows {
				assert.InDeltaSlice(t, tc.want[i][:], []float64{r.InitRatio, r.ExitRatio, r.SameFormInitRatio}, 1e-9, r.VMM)
			}
			var out bytes.Buffer
			rep.WriteTable(&out)
			if r := rep.Rows[0]; r.InitRatio > 0 {
				assert.Contains(t, out.String(), fmt.Sprintf("%.2fx, %.2fx", r.InitRatio, r.ExitRatio), "the first row's ratios in the table")
			}
		})
	}
}

// TestBootSkipsAPVHBootQEMUCannotDo runs the suite with stand-ins: a
// "govmm" that prints the agent's first line, and a "QEMU" that boots the
// bzImage but fails on the vmlinux. That row is skipped with QEMU's
// reason, and the others are measured and compared.
func TestBootSkipsAPVHBootQEMUCannotDo(t *testing.T) {
	dir := t.TempDir()
	fakeGovmm := filepath.Join(dir, "govmm")
	require.NoError(t, os.WriteFile(fakeGovmm, []byte("#!/bin/sh\necho 'govmm-agent: started'\n"), 0o755))
	fakeQEMU := filepath.Join(dir, "qemu")
	require.NoError(t, os.WriteFile(fakeQEMU, []byte(`#!/bin/sh
case "$*" in *vmlinux*) echo "qemu: no PVH ELF note" >&2; exit 1;; esac
echo 'govmm-agent: started'
exit 1 # isa-debug-exit's status for 0
`), 0o755))
	var progress bytes.Buffer
	rep, err := Boot(t.Context(), BootConfig{
		Govmm: fakeGovmm, QEMU: fakeQEMU, Kernel: "bzImage", Vmlinux: filepath.Join(dir, "vmlinux"),
		Initrd: "initrd", MemMiB: 256, Rounds: 2, Progress: &progress,
	})
	require.NoError(t, err)
	require.Len(t, rep.Rows, 4)
	byName := map[string]Row{}
	for _, r := range rep.Rows {
		byName[r.VMM] = r
	}
	assert.Contains(t, byName[qemuVmlinuxRow].Skipped, "PVH")
	for _, name := range []string{govmmRow, govmmVmlinuxRow, qemuRow} {
		assert.Empty(t, byName[name].Skipped, name)
		assert.Equal(t, 2, byName[name].ToInit.N, "%s measured every round", name)
	}
	assert.Positive(t, byName[govmmVmlinuxRow].InitRatio, "still compared with QEMU on the bzImage")
	assert.Zero(t, byName[govmmVmlinuxRow].SameFormInitRatio, "no same-form peer")
	var table bytes.Buffer
	rep.WriteTable(&table)
	assert.Contains(t, table.String(), qemuVmlinuxRow+" skipped: QEMU could not boot the vmlinux")
}
