package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/govmm/govmm/container"
	"github.com/govmm/govmm/guest"
	"github.com/govmm/govmm/isolation"
)

// ContainerConfig is the VM-versus-container benchmark: the isolation probe
// started in a runc container on the host, a govmm VM booted to its init,
// the probe started in a runc container inside a govmm VM, and QEMU's
// microvm booted to its init as the peer VMM. The VMs boot the same
// bzImage and initramfs.
type ContainerConfig struct {
	Govmm, QEMU, Runc string // QEMU or Runc "" skips their rows
	Kernel            string // bzImage
	Initrd            string // govmm's guest initramfs
	// ContainerInitrd is the guest initramfs with runc; "" skips the row
	// of the container in the VM.
	ContainerInitrd string
	// RootfsDir is the container root (the probe as /probe); RootfsImage
	// the same tree as an ext4 image, for the VM.
	RootfsDir, RootfsImage string
	MemMiB                 int
	Cmdline                string // kernel command line, without govmm's words
	Rounds                 int
	Dir                    string // scratch space (the host container's bundle)
	Progress               io.Writer
	RunsInVMM              string
}

// Row names of the container benchmark, in report order.
const (
	RowHostContainer = "runc container on host"
	RowGovmm         = "govmm VM"
	RowGovmmCont     = "govmm VM + runc container"
	RowQEMU          = "qemu-microvm VM"
)

// StartRow is one way to start an isolated process.
type StartRow struct {
	Name     string  `json:"name"`
	Measures string  `json:"measures"` // what "start" is for this row
	Skipped  string  `json:"skipped,omitempty"`
	ToStart  Summary `json:"launch_to_start"`
	ToExit   Summary `json:"launch_to_exit"`
	// RSSMiB is the median resident memory of the launched process (the
	// VMM, or runc) when the start marker appeared; OverheadMiB the VMM's
	// part of it, guest RAM excluded.
	RSSMiB      float64 `json:"rss_mib"`
	OverheadMiB float64 `json:"vmm_overhead_mib,omitempty"`
	// ContainerRSSMiB is the probe's own peak resident memory in its
	// container, where the row has a container.
	ContainerRSSMiB float64 `json:"container_rss_mib,omitempty"`
	// TimesContainer is this row's median start over the host
	// container's: how many container starts one of these costs.
	TimesContainer float64 `json:"times_host_container,omitempty"`
}

// ContainerReport is a whole VM-versus-container benchmark.
type ContainerReport struct {
	Date   time.Time  `json:"date"`
	Where  string     `json:"where"`
	Rounds int        `json:"rounds"`
	MemMiB int        `json:"mem_mib"`
	Kernel string     `json:"kernel"`
	Rows   []StartRow `json:"rows"`
	// GovmmOverQEMU is QEMU's median launch-to-init over govmm's: above 1,
	// govmm boots faster.
	GovmmOverQEMU float64 `json:"qemu_over_govmm_init,omitempty"`
	Distortion    string  `json:"distortion,omitempty"`
}

type startRun struct {
	row     StartRow
	run     Run
	samples []Sample
	// containerRSS are the probe's reported peak RSS, per round.
	containerRSS []uint64
}

// Container runs the benchmark: Rounds starts per row, interleaved so that
// drift in the machine's speed hits every row alike, in an order reversed
// every other round (inRoundOrder).
func Container(ctx context.Context, cfg ContainerConfig) (*ContainerReport, error) {
	trueWord, err := guest.EncodeCommand([]string{"true"})
	if err != nil {
		return nil, err
	}
	agentMarker := []byte("govmm-agent: " + guest.StartedLine)
	probeMarker := []byte(isolation.StartedLine)
	memBytes := uint64(cfg.MemMiB) << 20
	mem := fmt.Sprintf("%dM", cfg.MemMiB)

	host := &startRun{row: StartRow{Name: RowHostContainer, Measures: "runc run to the probe's first output line"}}
	if cfg.Runc == "" {
		host.row.Skipped = container.ErrNoRunc.Error()
	} else {
		r, err := hostContainerRun(ctx, cfg)
		if err != nil {
			host.row.Skipped = err.Error()
		}
		host.run = r
	}
	govmm := &startRun{
		row: StartRow{Name: RowGovmm, Measures: "launch to the guest agent's first line (guest init)"},
		run: Run{Args: []string{cfg.Govmm, "run", "--kernel", cfg.Kernel, "--no-vmlinux", "--initrd", cfg.Initrd, "--mem", mem,
			"--cmdline", cfg.Cmdline + " " + trueWord, "--", "true"},
			GuestMemBytes: memBytes, Marker: agentMarker, OKCodes: []int{0}},
	}
	inVM := &startRun{
		row: StartRow{Name: RowGovmmCont, Measures: "launch to the probe's first output line, in a runc container in the guest"},
		run: Run{Args: []string{cfg.Govmm, "run", "--kernel", cfg.Kernel, "--no-vmlinux", "--initrd", cfg.ContainerInitrd, "--mem", mem,
			"--cmdline", cfg.Cmdline, "--container", cfg.RootfsImage, "--", "/probe"},
			GuestMemBytes: memBytes, Marker: probeMarker, OKCodes: []int{0}},
	}
	if cfg.ContainerInitrd == "" {
		inVM.row.Skipped = "no guest initramfs with runc: install runc, then run 'govmm images'"
	}
	qemu := &startRun{
		row: StartRow{Name: RowQEMU, Measures: "launch to the guest agent's first line (guest init)"},
		run: qemuMicrovmRun(cfg.QEMU, cfg.Kernel, cfg.Initrd, cfg.Cmdline+" "+trueWord, cfg.MemMiB, agentMarker),
	}
	if cfg.QEMU == "" {
		qemu.row.Skipped = "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
	}
	rows := []*startRun{host, govmm, inVM, qemu}

	for round := 1; round <= cfg.Rounds; round++ {
		for _, r := range inRoundOrder(round, rows) {
			if r.row.Skipped != "" {
				continue
			}
			s, err := Measure(ctx, r.run)
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", r.row.Name, round, err)
			}
			r.samples = append(r.samples, s)
			if r == host || r == inVM {
				rep, err := isolation.ParseReport(s.Output)
				if err != nil {
					return nil, fmt.Errorf("%s, round %d: %w", r.row.Name, round, err)
				}
				r.containerRSS = append(r.containerRSS, rep.PeakRSSBytes)
			}
			fmt.Fprintf(cfg.Progress, "bench container: round %d/%d %-26s start %8s  exit %8s  rss %5.1f MiB\n",
				round, cfg.Rounds, r.row.Name, s.ToInit.Round(time.Millisecond), s.ToExit.Round(time.Millisecond), float64(s.RSS)/(1<<20))
		}
	}

	rep := &ContainerReport{Date: time.Now().UTC(), Where: cfg.RunsInVMM, Rounds: cfg.Rounds, MemMiB: cfg.MemMiB, Kernel: cfg.Kernel}
	for _, r := range rows {
		row := r.row
		if row.Skipped == "" {
			var starts, exits []time.Duration
			var rss, overhead []uint64
			for _, s := range r.samples {
				starts, exits = append(starts, s.ToInit), append(exits, s.ToExit)
				rss, overhead = append(rss, s.RSS), append(overhead, s.Overhead())
			}
			row.ToStart, row.ToExit = Summarize(starts), Summarize(exits)
			row.RSSMiB = mibOf(MedianBytes(rss))
			if r.run.GuestMemBytes > 0 {
				row.OverheadMiB = mibOf(MedianBytes(overhead))
			}
			row.ContainerRSSMiB = mibOf(MedianBytes(r.containerRSS))
		}
		rep.Rows = append(rep.Rows, row)
	}
	if h := rep.Rows[0]; h.Skipped == "" {
		for i := range rep.Rows[1:] {
			r := &rep.Rows[i+1]
			r.TimesContainer = Ratio(h.ToStart.Median, r.ToStart.Median)
		}
	}
	if g, q := rep.Rows[1], rep.Rows[3]; g.Skipped == "" && q.Skipped == "" {
		rep.GovmmOverQEMU = Ratio(g.ToStart.Median, q.ToStart.Median)
	}
	if os.Getenv("GOVMM_HARNESS_INSIDE") != "" {
		rep.Distortion = "measured inside the nested harness's outer guest (software-emulated CPU): every row, the host container's too, runs one to two orders of magnitude slower than on hardware, and VM exits cost far more than system calls; only the ratios compare"
	}
	return rep, nil
}

func mibOf(b uint64) float64 { return float64(b) / (1 << 20) }

// hostContainerRun prepares the host container's bundle, and runs it once
// to choose runc's way into the root (pivot_root, or --no-pivot where the
// host's own root cannot be pivoted away from) and to warm the caches as
// the VM rows' first boots are warmed by reading the images.
func hostContainerRun(ctx context.Context, cfg ContainerConfig) (Run, error) {
	bundle := filepath.Join(cfg.Dir, "bundle")
	id := fmt.Sprintf("govmm-bench-%d", os.Getpid())
	c := container.Config{RootFS: cfg.RootfsDir, Args: []string{"/probe"}}
	if err := container.WriteBundle(bundle, c, id); err != nil {
		return Run{}, err
	}
	rt := container.Runtime{Runc: cfg.Runc, StateDir: filepath.Join(cfg.Dir, "runc")}
	for _, noPivot := range []bool{false, true} {
		rt.NoPivot = noPivot
		args := rt.Command(ctx, bundle, id).Args
		run := Run{Args: args, Marker: []byte(isolation.StartedLine), OKCodes: []int{0}}
		_, err := Measure(ctx, run)
		if err == nil {
			return run, nil
		}
		if noPivot || !container.PivotRootFailed(err) {
			return Run{}, fmt.Errorf("runc on this host: %w", err)
		}
	}
	panic("unreachable")
}

// WriteTable prints the report for people.
func (rep *ContainerReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "VM versus container: %d rounds, %d MiB guests (%s)\n", rep.Rounds, rep.MemMiB, rep.Where)
	if rep.Distortion != "" {
		fmt.Fprintf(w, "NOTE: %s\n", rep.Distortion)
	}
	fmt.Fprintf(w, "%-26s %10s %10s %10s %10s %9s %9s %9s %s\n", "", "start min", "median", "p95", "exit med", "rss", "overhead", "in-cont.", "x container")
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "%-26s skipped: %s\n", r.Name, r.Skipped)
			continue
		}
		times := ""
		if r.TimesContainer > 0 {
			times = fmt.Sprintf("%.1fx", r.TimesContainer)
		}
		fmt.Fprintf(w, "%-26s %10s %10s %10s %10s %5.1f MiB %s %s %s\n", r.Name,
			r.ToStart.Min.Round(time.Millisecond), r.ToStart.Median.Round(time.Millisecond), r.ToStart.P95.Round(time.Millisecond),
			r.ToExit.Median.Round(time.Millisecond), r.RSSMiB, optMiB(r.OverheadMiB), optMiB(r.ContainerRSSMiB), times)
	}
	fmt.Fprintln(w, "start: what 'measures' in the JSON says (container: the probe's first line; VM: the guest agent's)")
	fmt.Fprintln(w, "rss: the launched process (runc, or the VMM with the guest RAM it touched); overhead: the VMM without guest RAM;")
	fmt.Fprintln(w, "in-cont.: the probe's own peak RSS in its container; x container: median start over the host container's")
	if rep.GovmmOverQEMU > 0 {
		fmt.Fprintf(w, "govmm boots %.2fx as fast as QEMU's microvm to init (QEMU's median over govmm's)\n", rep.GovmmOverQEMU)
	}
}

func optMiB(v float64) string {
	if v == 0 {
		return fmt.Sprintf("%9s", "-")
	}
	return fmt.Sprintf("%5.1f MiB", v)
}

// Chart turns the report into the chart govmm bench draws: start-up times
// on a log scale, and memory per instance.
func (rep *ContainerReport) Chart() Chart {
	c := Chart{
		Title: "VM versus container: start-up and memory",
		Note:  fmt.Sprintf("%d rounds, %d MiB guests, %s", rep.Rounds, rep.MemMiB, rep.Where),
	}
	if rep.Distortion != "" {
		c.Note += " (software-emulated CPU: compare ratios, not times)"
	}
	group := map[string]string{RowHostContainer: "container", RowGovmm: "govmm", RowGovmmCont: "govmm", RowQEMU: "qemu"}
	label := map[string]string{
		RowHostContainer: "runc container on host, to process start",
		RowGovmm:         "govmm VM, to guest init",
		RowGovmmCont:     "govmm VM + container, to process start",
		RowQEMU:          "QEMU microvm, to guest init",
	}
	for _, r := range rep.Rows {
		times := r.ToStart
		if r.Skipped != "" {
			times = Summary{}
		}
		c.Bars = append(c.Bars, ChartBar{Label: label[r.Name], Group: group[r.Name], Times: times})
		if r.Skipped != "" {
			continue
		}
		switch {
		case r.Name == RowHostContainer:
			c.Memory = append(c.Memory, ChartMemory{Label: "runc + container process", Group: "container", MiB: r.RSSMiB + r.ContainerRSSMiB})
		case r.OverheadMiB > 0 && r.Name != RowGovmmCont:
			vmm := map[string]string{RowGovmm: "govmm", RowQEMU: "QEMU microvm"}[r.Name]
			c.Memory = append(c.Memory, ChartMemory{Label: vmm + ": VMM overhead", Group: group[r.Name], MiB: r.OverheadMiB})
			c.Memory = append(c.Memory, ChartMemory{Label: vmm + ": total, with guest RAM touched", Group: group[r.Name], MiB: r.RSSMiB})
		}
	}
	return c
}
