package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A round whose guest dies of a triple fault or hangs is told apart from
// other failures (IO runs it again), under govmm and under QEMU; a round
// that reports is parsed.
func TestIORoundTellsTripleFaultsApart(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, script string
		qemu         bool
		wantTriple   bool
		wantHung     bool
		wantErr      bool
	}{
		{
			name: "triple fault",
			script: "echo 'govmm-agent: started'\n" +
				"echo 'govmm: the guest ended (reset: vCPU 0: triple fault) before its command reported an exit status' >&2\n",
			wantTriple: true, wantErr: true,
		},
		{
			name: "QEMU's guest reset",
			qemu: true,
			script: "echo 'iobench result name=seqwrite bytes=134217728 ops=128 seconds=1'\n" +
				"exit 0\n",
			wantTriple: true, wantErr: true,
		},
		{
			name:     "guest hung",
			script:   "echo 'govmm-agent: started'\nexec sleep 60\n",
			wantHung: true,
			wantErr:  true,
		},
		{
			name:    "QEMU's guest failed",
			qemu:    true,
			script:  "exit 3\n",
			wantErr: true,
		},
		{
			name:    "other failure",
			script:  "echo 'govmm: read kernel: no such file' >&2\nexit 1\n",
			wantErr: true,
		},
		{
			name: "results",
			script: "echo 'iobench result name=seqwrite bytes=134217728 ops=128 seconds=1'\n" +
				"echo 'iobench result name=seqread bytes=134217728 ops=128 seconds=0.5'\n" +
				"echo 'iobench result name=randread bytes=4096000 ops=1000 seconds=2'\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := filepath.Join(dir, "govmm")
			require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\n"+tc.script), 0o755))
			cfg := IOConfig{Govmm: fake, QEMU: fake, Dir: dir, DiskMiB: 1, RandSeconds: 1, MemMiB: 256, Kernel: "k", Initrd: "i",
				RoundTimeout: time.Second}
			vmm := "govmm"
			if tc.qemu {
				vmm = "qemu-microvm"
			}
			m, err := ioRound(context.Background(), cfg, vmm, false)
			if !tc.wantErr {
				require.NoError(t, err)
				assert.InDelta(t, 128, m.SeqWriteMiBs, 0.01)
				assert.InDelta(t, 256, m.SeqReadMiBs, 0.01)
				assert.InDelta(t, 500, m.RandReadIOPS, 0.01)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.wantTriple, errors.Is(err, errGuestTripleFault), "%v", err)
			assert.Equal(t, tc.wantHung, errors.Is(err, errGuestHung), "%v", err)
			assert.Equal(t, tc.wantTriple || tc.wantHung, roundLost(err) != nil, "worth another round")
		})
	}
}

func TestIORoundTimeoutGrowsWithTheWork(t *testing.T) {
	small := ioRoundTimeout(IOConfig{DiskMiB: 128, NetMiB: 256, RandSeconds: 3})
	big := ioRoundTimeout(IOConfig{DiskMiB: 1024, NetMiB: 1024, RandSeconds: 30})
	assert.GreaterOrEqual(t, small, 2*time.Minute)
	assert.Less(t, small, 5*time.Minute, "a hung round of the defaults costs minutes, not ten")
	assert.Greater(t, big, small+10*time.Minute, "4 GiB moved")
	assert.Equal(t, time.Second, ioRoundTimeout(IOConfig{RoundTimeout: time.Second}))
}

// TestIORunsLostRoundsAgain: a round lost to the harness's known problems
// is run again, up to maxRoundReruns times, and the report says so; one
// more loss fails the benchmark.
func TestIORunsLostRoundsAgain(t *testing.T) {
	results := "echo 'iobench result name=seqwrite bytes=134217728 ops=128 seconds=1'\n" +
		"echo 'iobench result name=seqread bytes=134217728 ops=128 seconds=0.5'\n" +
		"echo 'iobench result name=randread bytes=4096000 ops=1000 seconds=2'\n" +
		"echo 'iobench result name=tcpsend bytes=67108864 ops=64 seconds=1'\n" +
		"echo 'iobench result name=tcprecv bytes=67108864 ops=64 seconds=1'\n"
	for _, tc := range []struct {
		name    string
		losses  int
		wantErr bool
	}{
		{"no loss", 0, false},
		{"lost twice", maxRoundReruns, false},
		{"lost once too often", maxRoundReruns + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fake := filepath.Join(dir, "govmm")
			// The first tc.losses runs hang (past RoundTimeout); the
			// next ones report.
			script := fmt.Sprintf("#!/bin/sh\nn=$(cat %[1]s/count 2>/dev/null || echo 0)\necho $((n+1)) > %[1]s/count\n"+
				"if [ $n -lt %[2]d ]; then exec sleep 60; fi\n%[3]s", dir, tc.losses, results)
			require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
			var progress bytes.Buffer
			rep, err := IO(context.Background(), IOConfig{Govmm: fake, Dir: dir, DiskMiB: 1, RandSeconds: 1, NetMiB: 1,
				MemMiB: 256, Kernel: "k", Initrd: "i", Rounds: 1, Progress: &progress, RoundTimeout: 300 * time.Millisecond})
			if tc.wantErr {
				require.Error(t, err)
				assert.ErrorIs(t, err, errGuestHung)
				return
			}
			require.NoError(t, err)
			assert.Len(t, rep.RetriedRounds, tc.losses)
			assert.InDelta(t, 128, rep.Rows[0].Median.SeqWriteMiBs, 0.01)
			assert.Equal(t, tc.losses, strings.Count(progress.String(), "running the round again"))
		})
	}
}

// TestIOAlternatesWhichVMMGoesFirst: each VMM runs first in every other
// round, so neither always inherits the other's leftovers.
func TestIOAlternatesWhichVMMGoesFirst(t *testing.T) {
	vmms := []string{"govmm", "qemu-microvm"}
	for _, tc := range []struct {
		round int
		want  []string
	}{
		{1, []string{"govmm", "qemu-microvm"}},
		{2, []string{"qemu-microvm", "govmm"}},
		{3, []string{"govmm", "qemu-microvm"}},
		{8, []string{"qemu-microvm", "govmm"}},
	} {
		assert.Equal(t, tc.want, inRoundOrder(tc.round, vmms), "round %d", tc.round)
	}
	assert.Equal(t, []string{"govmm", "qemu-microvm"}, vmms, "the VMMs' list must not be reordered in place")
}

// fakeSpeedingGovmm writes a stand-in for govmm run into dir whose n-th
// boot (counted in dir/count) writes at n*100 MiB/s (128 MiB in 1.28/n s),
// for n up to 3, and reports the other measurements alike every time.
func fakeSpeedingGovmm(t *testing.T, dir string) string {
	t.Helper()
	fake := filepath.Join(dir, "govmm")
	script := fmt.Sprintf("#!/bin/sh\nn=$(cat %[1]s/count 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > %[1]s/count\n"+
		"case $n in 1) s=1.28;; 2) s=0.64;; *) s=0.4267;; esac\n"+
		"echo \"iobench result name=seqwrite bytes=134217728 ops=128 seconds=$s\"\n"+
		"echo 'iobench result name=seqread bytes=134217728 ops=128 seconds=0.5'\n"+
		"echo 'iobench result name=randread bytes=4096000 ops=1000 seconds=2'\n"+
		"echo 'iobench result name=tcpsend bytes=67108864 ops=64 seconds=1'\n"+
		"echo 'iobench result name=tcprecv bytes=67108864 ops=64 seconds=1'\n", dir)
	require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
	return fake
}

// TestIOSavesEachRound: AfterRound gets the medians of the rounds done
// after every round but the last, marked unfinished; the final report is
// not; and an error from AfterRound ends the run.
func TestIOSavesEachRound(t *testing.T) {
	dir := t.TempDir()
	fake := fakeSpeedingGovmm(t, dir)
	cfg := IOConfig{Govmm: fake, Dir: dir, DiskMiB: 1, RandSeconds: 1, NetMiB: 1,
		MemMiB: 256, Kernel: "k", Initrd: "i", Rounds: 3, Progress: io.Discard}

	var saved []IOReport
	cfg.AfterRound = func(r *IOReport) error {
		saved = append(saved, *r)
		return nil
	}
	rep, err := IO(context.Background(), cfg)
	require.NoError(t, err)
	require.Len(t, saved, 2, "one report after each round but the last")
	for i, r := range saved {
		assert.Equal(t, i+1, r.RoundsDone)
		assert.Equal(t, 3, r.Rounds)
	}
	assert.InDelta(t, 100, saved[0].Rows[0].Median.SeqWriteMiBs, 0.5, "after round 1: its figure")
	assert.InDelta(t, 150, saved[1].Rows[0].Median.SeqWriteMiBs, 0.5, "after round 2: the mean of two")
	assert.InDelta(t, 200, rep.Rows[0].Median.SeqWriteMiBs, 0.5, "the median of three")
	assert.Zero(t, rep.RoundsDone, "a finished report is not marked unfinished")

	var table bytes.Buffer
	saved[0].WriteTable(&table)
	assert.Contains(t, table.String(), "UNFINISHED: medians of the first 1 of 3 rounds")
	table.Reset()
	rep.WriteTable(&table)
	assert.NotContains(t, table.String(), "UNFINISHED")

	require.NoError(t, os.Remove(filepath.Join(dir, "count")))
	cfg.AfterRound = func(*IOReport) error { return errors.New("disk full") }
	_, err = IO(context.Background(), cfg)
	assert.ErrorContains(t, err, "disk full")
	count, err := os.ReadFile(filepath.Join(dir, "count"))
	require.NoError(t, err)
	assert.Equal(t, "1\n", string(count), "no round after the failed save")
}

// TestIORoundEndsWhenTheGuestFallsSilent: a round whose console stays
// silent for longer than the stall bound is a hung guest, ended then and
// not at the round's whole bound; one that keeps printing is not ended.
func TestIORoundEndsWhenTheGuestFallsSilent(t *testing.T) {
	dir := t.TempDir()
	results := "echo 'iobench result name=seqwrite bytes=134217728 ops=128 seconds=1'\n" +
		"echo 'iobench result name=seqread bytes=134217728 ops=128 seconds=0.5'\n" +
		"echo 'iobench result name=randread bytes=4096000 ops=1000 seconds=2'\n"
	for _, tc := range []struct {
		name, script string
		wantHung     bool
	}{
		{"silent after its first line", "echo 'govmm-agent: started'\nexec sleep 60\n", true},
		{"silent from the start", "exec sleep 60\n", true},
		{"printing now and then", "for i in 1 2 3 4 5 6; do echo tick; sleep 0.2; done\n" + results, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := filepath.Join(dir, "govmm")
			require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\n"+tc.script), 0o755))
			cfg := IOConfig{Govmm: fake, Dir: dir, DiskMiB: 1, RandSeconds: 1, MemMiB: 256, Kernel: "k", Initrd: "i",
				RoundTimeout: time.Minute, StallTimeout: 600 * time.Millisecond}
			start := time.Now()
			_, err := ioRound(context.Background(), cfg, "govmm", false)
			if !tc.wantHung {
				require.NoError(t, err, "1.2 s of output with gaps of 0.2 s is not a stall")
				return
			}
			require.ErrorIs(t, err, errGuestHung)
			assert.ErrorContains(t, err, "printed nothing for 600ms")
			assert.Less(t, time.Since(start), 20*time.Second, "ended by the stall bound, not the round's minute")
		})
	}
	assert.Equal(t, time.Minute+256*time.Second/5, ioStallTimeout(IOConfig{DiskMiB: 128, NetMiB: 256, RandSeconds: 3}))
	assert.Equal(t, time.Minute+100*time.Second, ioStallTimeout(IOConfig{DiskMiB: 1, NetMiB: 1, RandSeconds: 100}))
}

// TestIOResumesACutShortRun: a run cut short after round 2 (its save is
// all that is left, as when the outer guest dies) goes on from round 3
// with the saved rounds' figures, and a report that does not fit is
// refused before anything boots.
func TestIOResumesACutShortRun(t *testing.T) {
	dir := t.TempDir()
	fake := fakeSpeedingGovmm(t, dir)
	boots := func() string {
		b, err := os.ReadFile(filepath.Join(dir, "count"))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	cfg := IOConfig{Govmm: fake, Dir: dir, DiskMiB: 1, RandSeconds: 1, NetMiB: 1,
		MemMiB: 256, Kernel: "k", Initrd: "i", Rounds: 4, Progress: io.Discard}

	var saved []byte
	cut := errors.New("the outer guest died")
	cfg.AfterRound = func(r *IOReport) error {
		var err error
		saved, err = json.Marshal(r)
		require.NoError(t, err)
		if r.RoundsDone == 2 {
			return cut
		}
		return nil
	}
	_, err := IO(context.Background(), cfg)
	require.ErrorIs(t, err, cut)
	require.Equal(t, "2", boots())
	load := func() *IOReport {
		var r IOReport
		require.NoError(t, json.Unmarshal(saved, &r))
		return &r
	}

	for _, tc := range []struct {
		name   string
		change func(*IOReport)
		want   string
	}{
		{"finished", func(r *IOReport) { r.RoundsDone = 0 }, "nothing to resume"},
		{"negative rounds done", func(r *IOReport) { r.RoundsDone = -3 }, "rounds_done is -3"},
		{"other rounds", func(r *IOReport) { r.Rounds = 6 }, "rounds 6, this one 4"},
		{"other disk size", func(r *IOReport) { r.DiskMiB = 128 }, "disk MiB 128, this one 1"},
		{"rounds missing", func(r *IOReport) { r.Rows[0].Runs = r.Rows[0].Runs[:1] }, "has 1 rounds of govmm, want 2"},
		{"other VMM", func(r *IOReport) { r.Rows[0].VMM = "firecracker" }, `row 1 is "firecracker"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := load()
			tc.change(r)
			c := cfg
			c.AfterRound, c.Resume = nil, r
			_, err := IO(context.Background(), c)
			assert.ErrorContains(t, err, tc.want)
			assert.Equal(t, "2", boots(), "nothing booted")
		})
	}

	cfg.AfterRound, cfg.Resume = nil, load()
	rep, err := IO(context.Background(), cfg)
	require.NoError(t, err)
	assert.Equal(t, "4", boots(), "only rounds 3 and 4 booted")
	var writes []float64
	for _, m := range rep.Rows[0].Runs {
		writes = append(writes, math.Round(m.SeqWriteMiBs))
	}
	assert.Equal(t, []float64{100, 200, 300, 300}, writes, "the saved rounds, then the new ones")
	assert.InDelta(t, 250, rep.Rows[0].Median.SeqWriteMiBs, 0.5, "the mean of the middle two of four")
	assert.Equal(t, []int{2}, rep.ResumedAfter)
	assert.Zero(t, rep.RoundsDone)
	assert.Equal(t, load().Date, rep.Date, "the run's start")
	var table bytes.Buffer
	rep.WriteTable(&table)
	assert.Contains(t, table.String(), "resumed after round 2")
	assert.NotContains(t, table.String(), "UNFINISHED")
}

// The rounds govmm led in are counted round by round, metric by metric; a
// tie is no lead, and a VMM's extra rounds (none to pair with) are left out.
func TestRoundsAhead(t *testing.T) {
	m := func(v float64) IOMetrics {
		return IOMetrics{SeqWriteMiBs: v, SeqReadMiBs: v, RandReadIOPS: v, TCPToHost: v, TCPToGuest: v}
	}
	all := func(compared, ahead int) *IORoundsAhead {
		return &IORoundsAhead{Compared: compared, SeqWriteMiBs: ahead, SeqReadMiBs: ahead,
			RandReadIOPS: ahead, TCPToHost: ahead, TCPToGuest: ahead}
	}
	for _, tc := range []struct {
		name        string
		govmm, qemu []IOMetrics
		want        *IORoundsAhead
	}{
		{"none", nil, nil, all(0, 0)},
		{"ahead in every round", []IOMetrics{m(2), m(3)}, []IOMetrics{m(1), m(1)}, all(2, 2)},
		{"behind in every round", []IOMetrics{m(1), m(1)}, []IOMetrics{m(2), m(3)}, all(2, 0)},
		{"a tie is no lead", []IOMetrics{m(1), m(5)}, []IOMetrics{m(1), m(4)}, all(2, 1)},
		{"rounds pair by position, not by rank", []IOMetrics{m(10), m(1)}, []IOMetrics{m(1), m(10)}, all(2, 1)},
		{"unpaired rounds left out", []IOMetrics{m(2), m(2), m(2)}, []IOMetrics{m(1)}, all(1, 1)},
		{
			"metric by metric",
			[]IOMetrics{{SeqWriteMiBs: 2, SeqReadMiBs: 1, RandReadIOPS: 2, TCPToHost: 1, TCPToGuest: 2}},
			[]IOMetrics{m(1.5)},
			&IORoundsAhead{Compared: 1, SeqWriteMiBs: 1, RandReadIOPS: 1, TCPToGuest: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, roundsAhead(tc.govmm, tc.qemu))
		})
	}
}

// The table shows the count under the ratios, and the JSON carries it on
// govmm's row, computed from the rounds.
func TestIOReportCountsRoundsAhead(t *testing.T) {
	rounds := func(vs ...float64) []IOMetrics {
		var out []IOMetrics
		for _, v := range vs {
			out = append(out, IOMetrics{SeqWriteMiBs: v, SeqReadMiBs: v, RandReadIOPS: v, TCPToHost: v, TCPToGuest: v})
		}
		return out
	}
	vmms := []*ioVMM{{name: "govmm", samples: rounds(3, 1, 5)}, {name: "qemu-microvm", samples: rounds(2, 2, 2)}}
	rep := summarize(&IOReport{Rounds: 3}, vmms, 3)
	require.NotNil(t, rep.Rows[0].AheadInRounds)
	assert.Equal(t, 2, rep.Rows[0].AheadInRounds.TCPToGuest)
	assert.Nil(t, rep.Rows[1].AheadInRounds, "only govmm's row carries it")
	var table bytes.Buffer
	rep.WriteTable(&table)
	assert.Regexp(t, `govmm ahead in rounds +2 of 3 +2 of 3 +2 of 3 +2 of 3 +2 of 3\n`, table.String())
}
