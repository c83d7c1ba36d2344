package bench

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
				bootRow("govmm", 8*time.Second, 10*time.Second),
				bootRow("govmm+vmlinux", 5*time.Second, 8*time.Second),
				bootRow(qemuRow, 8*time.Second, 10*time.Second),
				bootRow(qemuVmlinuxRow, 6*time.Second, 8*time.Second),
			},
			want: [][3]float64{{1, 1, 1}, {1.6, 1.25, 1.2}, {}, {}},
		},
		{
			name: "no vmlinux row for QEMU: only the bzImage ratio",
			rows: []Row{
				bootRow("govmm+vmlinux", 4*time.Second, 5*time.Second),
				bootRow(qemuRow, 8*time.Second, 10*time.Second),
			},
			want: [][3]float64{{2, 2, 0}, {}},
		},
		{
			name: "QEMU skipped: no ratios",
			rows: []Row{
				bootRow("govmm", 8*time.Second, 10*time.Second),
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
			assert.Contains(t, out.String(), tc.rows[0].VMM)
		})
	}
}
