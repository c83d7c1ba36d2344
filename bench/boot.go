package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/govmm/govmm/guest"
)

// BootConfig is a boot benchmark: the same kernel, initramfs, memory and
// guest command for every VMM.
type BootConfig struct {
	Govmm     string // govmm binary
	QEMU      string // qemu-system-x86_64 binary; "" skips the QEMU rows
	Kernel    string
	Vmlinux   string // Kernel's extracted payload: adds a govmm row that boots it; "" for none
	Initrd    string
	MemMiB    int
	Cmdline   string // kernel command line, without the guest command
	Rounds    int
	Progress  io.Writer
	RunsInVMM string // how the benchmark ran ("directly on /dev/kvm", "nested ..."), for the report
}

// Row is one VMM's results.
type Row struct {
	VMM         string  `json:"vmm"`
	Skipped     string  `json:"skipped,omitempty"`
	ToInit      Summary `json:"launch_to_init"`
	ToExit      Summary `json:"launch_to_exit"`
	OverheadMiB float64 `json:"vmm_overhead_mib"` // median RSS less guest RAM
	// OwnDirtyMiB is the median private dirty memory outside guest RAM:
	// the part of the overhead each further VM adds (Sample.OwnDirty).
	OwnDirtyMiB float64 `json:"vmm_own_dirty_mib"`
	RSSMiB      float64 `json:"rss_mib"` // median RSS at init
	// InitRatio and ExitRatio are QEMU's median, booting the same bzImage,
	// over this row's: above 1 means this row is faster. Zero on QEMU's
	// own rows.
	InitRatio float64 `json:"qemu_init_ratio,omitempty"`
	ExitRatio float64 `json:"qemu_exit_ratio,omitempty"`
	// SameFormInitRatio is the same against QEMU booting the kernel in the
	// same form as this row: the bzImage, or the extracted vmlinux (which
	// QEMU boots by its PVH entry). It sets apart what the VMM gains from
	// what skipping the guest's decompressor gains.
	SameFormInitRatio float64 `json:"qemu_same_form_init_ratio,omitempty"`
}

// BootReport is a whole boot benchmark.
type BootReport struct {
	Date       time.Time `json:"date"`
	Kernel     string    `json:"kernel"`
	MemMiB     int       `json:"mem_mib"`
	Rounds     int       `json:"rounds"`
	Where      string    `json:"where"`
	Rows       []Row     `json:"rows"` // govmm's rows, then QEMU's
	Distortion string    `json:"distortion,omitempty"`
}

type vmmRun struct {
	name string
	run  Run
	skip string // why this VMM is not measured
}

// The guest runs `true`: the agent reports its status and the VMM exits.
var guestCommand = []string{"true"}

// Boot runs the benchmark: Rounds boots per VMM, interleaved so that drift
// in the machine's speed hits both alike, in an order reversed every other
// round (inRoundOrder).
func Boot(ctx context.Context, cfg BootConfig) (*BootReport, error) {
	word, err := guest.EncodeCommand(guestCommand)
	if err != nil {
		return nil, err
	}
	marker := []byte("govmm-agent: " + guest.StartedLine)
	memBytes := uint64(cfg.MemMiB) << 20
	mem := fmt.Sprintf("%dM", cfg.MemMiB)
	runs := []vmmRun{
		{name: govmmRow, run: Run{
			// --no-vmlinux: the bzImage as it is, decompressor included,
			// like QEMU's row (govmm run would boot the payload that
			// govmm images extracted for its own kernels).
			Args: []string{cfg.Govmm, "run", "--kernel", cfg.Kernel, "--no-vmlinux", "--initrd", cfg.Initrd, "--mem", mem,
				"--cmdline", cfg.Cmdline + " " + word, "--", guestCommand[0]},
			GuestMemBytes: memBytes, Marker: marker, OKCodes: []int{0},
		}},
	}
	if cfg.Vmlinux != "" {
		runs = append(runs, vmmRun{name: govmmVmlinuxRow, run: Run{
			Args: []string{cfg.Govmm, "run", "--kernel", cfg.Kernel, "--vmlinux", cfg.Vmlinux, "--initrd", cfg.Initrd, "--mem", mem,
				"--cmdline", cfg.Cmdline + " " + word, "--", guestCommand[0]},
			GuestMemBytes: memBytes, Marker: marker, OKCodes: []int{0},
		}})
	}
	// QEMU boots the bzImage, decompressor included, like govmm's first
	// row; and, when there is one, the extracted vmlinux by its PVH entry,
	// like govmm's second.
	qemuSkip := ""
	if _, err := exec.LookPath(cfg.QEMU); cfg.QEMU == "" || err != nil {
		qemuSkip = "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
	}
	runs = append(runs, vmmRun{name: qemuRow, skip: qemuSkip,
		run: qemuMicrovmRun(cfg.QEMU, cfg.Kernel, cfg.Initrd, cfg.Cmdline+" "+word, cfg.MemMiB, marker)})
	if cfg.Vmlinux != "" {
		runs = append(runs, vmmRun{name: qemuVmlinuxRow, skip: qemuSkip,
			run: qemuMicrovmRun(cfg.QEMU, cfg.Vmlinux, cfg.Initrd, cfg.Cmdline+" "+word, cfg.MemMiB, marker)})
	}

	samples := make([][]Sample, len(runs))
	order := make([]int, len(runs))
	for i := range order {
		order[i] = i
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, i := range inRoundOrder(round, order) {
			r := runs[i]
			if r.skip != "" {
				continue
			}
			s, err := Measure(ctx, r.run)
			if err != nil && r.name == qemuVmlinuxRow && ctx.Err() == nil {
				// An extra row, and one an older QEMU or a kernel without
				// a PVH note cannot boot: say why, keep the rest.
				runs[i].skip = fmt.Sprintf("QEMU could not boot the vmlinux by its PVH entry: %v", firstLine(err.Error()))
				samples[i] = nil
				fmt.Fprintf(cfg.Progress, "bench: %s skipped: %s\n", r.name, runs[i].skip)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", r.name, round, err)
			}
			samples[i] = append(samples[i], s)
			fmt.Fprintf(cfg.Progress, "bench: round %d/%d %-20s init %8s  exit %8s  overhead %5.1f MiB\n",
				round, cfg.Rounds, r.name, s.ToInit.Round(time.Millisecond), s.ToExit.Round(time.Millisecond),
				float64(s.Overhead())/(1<<20))
		}
	}
	rep := &BootReport{Date: time.Now().UTC(), Kernel: cfg.Kernel, MemMiB: cfg.MemMiB, Rounds: cfg.Rounds, Where: cfg.RunsInVMM}
	for i, r := range runs {
		row := Row{VMM: r.name, Skipped: r.skip}
		var inits, exits []time.Duration
		var overheads, dirty, rss []uint64
		for _, s := range samples[i] {
			inits, exits = append(inits, s.ToInit), append(exits, s.ToExit)
			overheads, dirty, rss = append(overheads, s.Overhead()), append(dirty, s.OwnDirty), append(rss, s.RSS)
		}
		row.ToInit, row.ToExit = Summarize(inits), Summarize(exits)
		row.OverheadMiB = float64(MedianBytes(overheads)) / (1 << 20)
		row.OwnDirtyMiB = float64(MedianBytes(dirty)) / (1 << 20)
		row.RSSMiB = float64(MedianBytes(rss)) / (1 << 20)
		rep.Rows = append(rep.Rows, row)
	}
	rep.setRatios()
	if os.Getenv("GOVMM_HARNESS_INSIDE") != "" {
		rep.Distortion = "measured inside the nested harness's outer guest (software-emulated CPU): absolute times are one to two orders of magnitude slower than hardware; only the ratios compare"
	}
	return rep, nil
}

// qemuMicrovmRun boots kernel and initrd under QEMU's microvm, as lean as
// QEMU gets: no firmware tables, the legacy PIC/PIT/RTC the stock kernel
// expects, and isa-debug-exit where govmm has its exit-status port, so the
// guest agent's status write ends QEMU as it ends govmm. The kernel resets
// by triple fault (reboot=t): microvm has no keyboard controller.
func qemuMicrovmRun(qemu, kernel, initrd, cmdline string, memMiB int, marker []byte) Run {
	return Run{
		Args: []string{qemu, "-M", "microvm,pit=on,pic=on,rtc=on,acpi=off", "-enable-kvm", "-cpu", "host",
			"-m", fmt.Sprintf("%dM", memMiB), "-smp", "1", "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
			"-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=1", guest.ExitStatusPort),
			"-kernel", kernel, "-initrd", initrd,
			"-append", strings.ReplaceAll(cmdline, "reboot=k", "reboot=t")},
		GuestMemBytes: uint64(memMiB) << 20, Marker: marker,
		// isa-debug-exit exits with (status << 1) | 1: 1 for status 0.
		OKCodes: []int{1},
	}
}

// firstLine is s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// The rows' names.
const (
	govmmRow        = "govmm"
	govmmVmlinuxRow = "govmm+vmlinux"
	qemuRow         = "qemu-microvm"
	qemuVmlinuxRow  = "qemu-microvm+vmlinux"
)

// sameForm is, for each govmm row, QEMU's row that boots the kernel in the
// same form.
var sameForm = map[string]string{govmmRow: qemuRow, govmmVmlinuxRow: qemuVmlinuxRow}

// setRatios compares each govmm row with QEMU's rows that were measured.
func (rep *BootReport) setRatios() {
	byName := map[string]Row{}
	for _, r := range rep.Rows {
		if r.Skipped == "" && r.ToInit.N > 0 {
			byName[r.VMM] = r
		}
	}
	bz, haveBz := byName[qemuRow]
	for i := range rep.Rows {
		r := &rep.Rows[i]
		peer, isGovmm := sameForm[r.VMM]
		if !isGovmm || r.Skipped != "" {
			continue
		}
		if haveBz {
			r.InitRatio = Ratio(r.ToInit.Median, bz.ToInit.Median)
			r.ExitRatio = Ratio(r.ToExit.Median, bz.ToExit.Median)
		}
		if q, ok := byName[peer]; ok {
			r.SameFormInitRatio = Ratio(r.ToInit.Median, q.ToInit.Median)
		}
	}
}

// WriteTable prints the report for people.
func (rep *BootReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "boot benchmark: %s, %d MiB, %d rounds (%s)\n", rep.Kernel, rep.MemMiB, rep.Rounds, rep.Where)
	if rep.Distortion != "" {
		fmt.Fprintf(w, "NOTE: %s\n", rep.Distortion)
	}
	fmt.Fprintf(w, "%-20s %12s %12s %12s %12s %12s %10s %10s  %-22s %s\n", "vmm", "init min", "init median", "init p95", "exit median", "exit p95", "overhead", "own dirty", "qemu/this (init, exit)", "same form (init)")
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "%-20s skipped: %s\n", r.VMM, r.Skipped)
			continue
		}
		ratio, same := "", ""
		if r.InitRatio > 0 {
			ratio = fmt.Sprintf("%.2fx, %.2fx", r.InitRatio, r.ExitRatio)
		}
		if r.SameFormInitRatio > 0 {
			same = fmt.Sprintf("%.2fx", r.SameFormInitRatio)
		}
		fmt.Fprintf(w, "%-20s %12s %12s %12s %12s %12s %6.1f MiB %6.1f MiB  %-22s %s\n", r.VMM,
			r.ToInit.Min.Round(time.Millisecond), r.ToInit.Median.Round(time.Millisecond), r.ToInit.P95.Round(time.Millisecond),
			r.ToExit.Median.Round(time.Millisecond), r.ToExit.P95.Round(time.Millisecond), r.OverheadMiB, r.OwnDirtyMiB, ratio, same)
	}
	fmt.Fprintln(w, "qemu/this: QEMU's median booting the same bzImage over the row's; above 1, the row is faster (goal: 1.25x)")
	fmt.Fprintln(w, "same form: against QEMU booting the kernel as the row does (bzImage, or the extracted vmlinux by its PVH entry)")
	fmt.Fprintln(w, "overhead: RSS less guest RAM (goal: under 5 MiB); own dirty: its private dirty part, what each further VM adds (the rest is the executable, shared through the page cache)")
}
