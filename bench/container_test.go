package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleContainerReport() *ContainerReport {
	ms := time.Millisecond
	return &ContainerReport{
		Rounds: 3, MemMiB: 512, Where: "directly on /dev/kvm",
		Rows: []StartRow{
			{Name: RowHostContainer, ToStart: Summary{N: 3, Min: 50 * ms, Median: 60 * ms, P95: 70 * ms}, RSSMiB: 12, ContainerRSSMiB: 3},
			{Name: RowGovmm, ToStart: Summary{N: 3, Min: 1100 * ms, Median: 1200 * ms, P95: 1300 * ms}, RSSMiB: 40, OverheadMiB: 4.5, TimesContainer: 20},
			{Name: RowGovmmCont, ToStart: Summary{N: 3, Min: 1500 * ms, Median: 1600 * ms, P95: 1700 * ms}, RSSMiB: 60, OverheadMiB: 4.6, ContainerRSSMiB: 2, TimesContainer: 26.7},
			{Name: RowQEMU, Skipped: "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"},
		},
	}
}

func TestContainerReportTable(t *testing.T) {
	var buf bytes.Buffer
	sampleContainerReport().WriteTable(&buf)
	out := buf.String()
	for _, want := range []string{
		RowHostContainer, "60ms", "1.2s", "20.0x", "26.7x", "4.5 MiB",
		"skipped: qemu-system-x86_64 not found",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "NOTE:", "no distortion note outside the harness")
	assert.NotContains(t, out, "as fast as QEMU", "no QEMU ratio without a QEMU row")

	rep := sampleContainerReport()
	rep.Distortion = "nested"
	rep.GovmmOverQEMU = 1.3
	buf.Reset()
	rep.WriteTable(&buf)
	assert.Contains(t, buf.String(), "NOTE: nested")
	assert.Contains(t, buf.String(), "1.30x as fast as QEMU")
}

func TestContainerReportChart(t *testing.T) {
	c := sampleContainerReport().Chart()
	require.Len(t, c.Bars, 4, "one bar per row, skipped rows included")
	assert.Equal(t, "container", c.Bars[0].Group)
	assert.Equal(t, 60*time.Millisecond, c.Bars[0].Times.Median)
	assert.Zero(t, c.Bars[3].Times.N, "a skipped row draws as skipped")
	var labels []string
	for _, m := range c.Memory {
		labels = append(labels, m.Label)
	}
	assert.Equal(t, []string{"runc + container process", "govmm: VMM overhead", "govmm: total, with guest RAM touched"}, labels)
	assert.InDelta(t, 15, c.Memory[0].MiB, 1e-9, "runc's RSS plus the container's")
	assert.NotContains(t, c.Note, "software-emulated")

	rep := sampleContainerReport()
	rep.Distortion = "nested"
	assert.Contains(t, rep.Chart().Note, "compare ratios")

	path := filepath.Join(t.TempDir(), "c.svg")
	require.NoError(t, WriteChart(path, c))
}

func TestOptMiB(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "-"}, {4.54, "4.5 MiB"}, {12, "12.0 MiB"}} {
		assert.Equal(t, tc.want, strings.TrimSpace(optMiB(tc.v)), "optMiB(%v)", tc.v)
	}
}

func TestParseSmapsWithoutGuest(t *testing.T) {
	smaps := "7f00-7f10 rw-p 0 0 0\nSize: 1048576 kB\nRss: 2048 kB\n7f20-7f30 r-xp 0 0 0\nSize: 64 kB\nRss: 64 kB\n"
	use, err := parseSmaps(strings.NewReader(smaps), 0)
	require.NoError(t, err)
	assert.EqualValues(t, 2112<<10, use.rss)
	assert.Zero(t, use.guest, "no guest RAM to set apart for a container runtime")
}

// TestContainerSkipsWhatIsMissing runs the suite with a stand-in for govmm
// (a script that prints the agent's first line) and neither runc, nor a
// container initramfs, nor QEMU: those rows are skipped, each saying why,
// and the rest is measured.
func TestContainerSkipsWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "govmm")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'govmm-agent: started'\n"), 0o755))
	var progress bytes.Buffer
	rep, err := Container(t.Context(), ContainerConfig{
		Govmm: fake, Kernel: "bzImage", Initrd: "initrd", MemMiB: 256, Rounds: 2, Dir: dir, Progress: &progress,
	})
	require.NoError(t, err)
	require.Len(t, rep.Rows, 4)
	want := map[string]string{
		RowHostContainer: "apt-get install runc",
		RowGovmm:         "",
		RowGovmmCont:     "govmm images",
		RowQEMU:          "apt-get install qemu-system-x86",
	}
	for _, r := range rep.Rows {
		if want[r.Name] == "" {
			assert.Empty(t, r.Skipped, r.Name)
			assert.Equal(t, 2, r.ToStart.N, "%s measured every round", r.Name)
			assert.Positive(t, r.ToStart.Median)
			continue
		}
		assert.Contains(t, r.Skipped, want[r.Name], r.Name)
	}
	assert.Zero(t, rep.GovmmOverQEMU, "no ratio without QEMU")
	assert.Contains(t, progress.String(), "round 2/2 govmm VM")
}
