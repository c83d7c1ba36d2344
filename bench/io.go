package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/govmm/govmm/guest"
)

// IOConfig is a disk and network benchmark: the same kernel, initramfs and
// guest-side measurements (guest/iobench) for govmm and for QEMU's microvm
// with PCIe, virtio-blk-pci and virtio-net-pci (no vhost).
type IOConfig struct {
	Govmm, QEMU    string // QEMU "" skips its row
	Kernel, Initrd string
	MemMiB         int
	Cmdline        string // kernel command line, without govmm's words
	DiskMiB        int    // written, then read, sequentially; the random reads' range
	RandSeconds    int
	NetMiB         int // sent each way
	Rounds         int
	Dir            string // scratch space for the disk images
	Progress       io.Writer
	RunsInVMM      string
	// RoundTimeout, when not zero, replaces the bound ioRoundTimeout
	// computes for one VM's round (tests).
	RoundTimeout time.Duration
	// StallTimeout, when not zero, replaces the bound ioStallTimeout
	// computes for a round's console to stay silent (tests).
	StallTimeout time.Duration
	// AfterRound, when set, gets the report of the rounds done so far
	// after each round but the last (RoundsDone set): a
	// caller saves it, so that a run cut short (the nested harness's
	// outer guest can die in a long run) keeps its finished rounds. An
	// error from it ends the run.
	AfterRound func(*IOReport) error
	// Resume, when set, is such a saved report of a run cut short: the
	// run goes on from the round after its last, with its rounds' figures
	// and its rerun rounds, as if it had not stopped. Its settings
	// (Rounds, DiskMiB, NetMiB, RandSeconds, MemMiB) must be this
	// config's.
	Resume *IOReport
}

// IOMetrics are one VMM's figures, the medians over the rounds.
type IOMetrics struct {
	SeqWriteMiBs float64 `json:"seq_write_mib_s"`
	SeqReadMiBs  float64 `json:"seq_read_mib_s"`
	RandReadIOPS float64 `json:"rand_read_4k_iops"`
	TCPToHost    float64 `json:"tcp_guest_to_host_mib_s"`
	TCPToGuest   float64 `json:"tcp_host_to_guest_mib_s"`
}

// IORow is one VMM's results; Ratio is this row over QEMU's, metric by
// metric (above 1: this row is faster).
type IORow struct {
	VMM     string     `json:"vmm"`
	Skipped string     `json:"skipped,omitempty"`
	Median  IOMetrics  `json:"median"`
	Ratio   *IOMetrics `json:"ratio_to_qemu,omitempty"`
	// Runs are the figures of each round, in order: the spread behind
	// the median, and what a resumed run starts from.
	Runs []IOMetrics `json:"runs,omitempty"`
	// AheadInRounds, on govmm's row, counts the rounds it beat QEMU in.
	AheadInRounds *IORoundsAhead `json:"ahead_in_rounds,omitempty"`
}

// IORoundsAhead counts, metric by metric, the rounds in which govmm's
// figure was above QEMU's in the same round. A round boots both VMMs
// within a minute or two of each other, so the pairs share whatever the
// host was doing then: a lead that holds in most rounds is a lead, while
// a ratio of medians near 1 may come from one lucky round. Compared is
// the number of rounds both VMMs finished.
type IORoundsAhead struct {
	Compared     int `json:"compared"`
	SeqWriteMiBs int `json:"seq_write_mib_s"`
	SeqReadMiBs  int `json:"seq_read_mib_s"`
	RandReadIOPS int `json:"rand_read_4k_iops"`
	TCPToHost    int `json:"tcp_guest_to_host_mib_s"`
	TCPToGuest   int `json:"tcp_host_to_guest_mib_s"`
}

// roundsAhead compares govmm's runs with QEMU's round by round (both in
// round order); a tie is not a lead.
func roundsAhead(govmm, qemu []IOMetrics) *IORoundsAhead {
	n := min(len(govmm), len(qemu))
	a := &IORoundsAhead{Compared: n}
	count := func(g, q float64) int {
		if g > q {
			return 1
		}
		return 0
	}
	for i := range n {
		g, q := govmm[i], qemu[i]
		a.SeqWriteMiBs += count(g.SeqWriteMiBs, q.SeqWriteMiBs)
		a.SeqReadMiBs += count(g.SeqReadMiBs, q.SeqReadMiBs)
		a.RandReadIOPS += count(g.RandReadIOPS, q.RandReadIOPS)
		a.TCPToHost += count(g.TCPToHost, q.TCPToHost)
		a.TCPToGuest += count(g.TCPToGuest, q.TCPToGuest)
	}
	return a
}

// IOReport is a whole I/O benchmark.
type IOReport struct {
	Date   time.Time `json:"date"`
	Where  string    `json:"where"`
	Rounds int       `json:"rounds"`
	// RoundsDone is set only in the reports AfterRound gets during a
	// run: the rounds their medians cover, fewer than Rounds. A finished
	// report leaves it out.
	RoundsDone  int `json:"rounds_done,omitempty"`
	DiskMiB     int `json:"disk_mib"`
	NetMiB      int `json:"net_mib"`
	RandSeconds int `json:"rand_seconds,omitempty"`
	MemMiB      int `json:"mem_mib,omitempty"`
	// ResumedAfter lists the rounds after which the run stopped and was
	// resumed (IOConfig.Resume), in a new outer guest when nested.
	ResumedAfter []int   `json:"resumed_after,omitempty"`
	NetSkipped   string  `json:"net_skipped,omitempty"`
	Rows         []IORow `json:"rows"`
	Distortion   string  `json:"distortion,omitempty"`
	// RetriedRounds are the rounds run again because the guest died of
	// a triple fault or hung (roundLost), as "govmm, round 3 (the guest
	// hung)".
	RetriedRounds []string `json:"retried_rounds,omitempty"`
}

// errGuestTripleFault is a round whose guest died of a triple fault, and
// errGuestHung one whose guest stopped making progress. In the nested
// harness both happen now and then, below the guest and under either VMM
// (README, "No /dev/kvm?"), and the round is run again.
//
// A round is run again up to maxRoundReruns times: on 2026-11-29 one run
// of eight rounds lost the same round twice in a row, and with it the
// whole report.
const maxRoundReruns = 2

var (
	errGuestTripleFault = errors.New("the guest died of a triple fault")
	errGuestHung        = errors.New("the guest hung")
)

// qemuBenchTap is the tap QEMU creates for its row, and qemuBenchNet the
// link on it (govmm's own --net auto uses 10.213.N.0/24).
const qemuBenchTap = "govmmqbench0"

var qemuBenchNet = netip.MustParsePrefix("10.214.0.1/24")

// IO runs the benchmark: Rounds boots per VMM, interleaved, the VMM that
// goes first alternating from round to round; each boot runs every
// measurement once.
func IO(ctx context.Context, cfg IOConfig) (*IOReport, error) {
	rep := &IOReport{Date: time.Now().UTC(), Where: cfg.RunsInVMM, Rounds: cfg.Rounds, DiskMiB: cfg.DiskMiB, NetMiB: cfg.NetMiB,
		RandSeconds: cfg.RandSeconds, MemMiB: cfg.MemMiB}
	if os.Geteuid() != 0 {
		rep.NetSkipped = "not root: the network rows need taps (CAP_NET_ADMIN)"
	}
	vmms := []*ioVMM{{name: "govmm"}, {name: "qemu-microvm"}}
	if _, err := exec.LookPath(cfg.QEMU); cfg.QEMU == "" || err != nil {
		vmms[1].skip = "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
	}
	first := 1
	if cfg.Resume != nil {
		done, err := resume(rep, vmms, cfg.Resume)
		if err != nil {
			return nil, err
		}
		first = done + 1
		fmt.Fprintf(cfg.Progress, "bench io: resuming after round %d of %d\n", done, cfg.Rounds)
	}
	for round := first; round <= cfg.Rounds; round++ {
		for _, v := range inRoundOrder(round, vmms) {
			if v.skip != "" {
				continue
			}
			m, err := ioRound(ctx, cfg, v.name, rep.NetSkipped == "")
			for again := 1; again <= maxRoundReruns; again++ {
				lost := roundLost(err)
				if lost == nil {
					break
				}
				fmt.Fprintf(cfg.Progress, "bench io: round %d/%d %s: %v (the nested harness's known problem); running the round again (%d/%d)\n", round, cfg.Rounds, v.name, lost, again, maxRoundReruns)
				rep.RetriedRounds = append(rep.RetriedRounds, fmt.Sprintf("%s, round %d (%v)", v.name, round, lost))
				m, err = ioRound(ctx, cfg, v.name, rep.NetSkipped == "")
			}
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", v.name, round, err)
			}
			v.samples = append(v.samples, m)
			fmt.Fprintf(cfg.Progress, "bench io: round %d/%d %-9s write %7.1f MiB/s  read %7.1f MiB/s  4k read %8.0f IOPS  tcp out %7.1f MiB/s  in %7.1f MiB/s\n",
				round, cfg.Rounds, v.name, m.SeqWriteMiBs, m.SeqReadMiBs, m.RandReadIOPS, m.TCPToHost, m.TCPToGuest)
		}
		if cfg.AfterRound != nil && round < cfg.Rounds {
			if err := cfg.AfterRound(summarize(rep, vmms, round)); err != nil {
				return nil, err
			}
		}
	}
	return summarize(rep, vmms, cfg.Rounds), nil
}

// resume takes over the rounds of saved, a report of a run cut short, into
// rep and vmms, and returns how many rounds it had done. saved must be
// of the run rep starts: the same settings, VMMs and network rows.
func resume(rep *IOReport, vmms []*ioVMM, saved *IOReport) (int, error) {
	done := saved.RoundsDone
	switch {
	case done == 0:
		return 0, errors.New("resume: the report is of a finished run (it has no rounds_done): nothing to resume")
	case done < 0:
		return 0, fmt.Errorf("resume: the report's rounds_done is %d: not a report govmm saved", done)
	case done >= saved.Rounds:
		return 0, fmt.Errorf("resume: the report has done %d of %d rounds: nothing to resume", done, saved.Rounds)
	}
	for _, s := range []struct {
		name       string
		saved, now int
	}{{"rounds", saved.Rounds, rep.Rounds}, {"disk MiB", saved.DiskMiB, rep.DiskMiB}, {"net MiB", saved.NetMiB, rep.NetMiB},
		{"random-read seconds", saved.RandSeconds, rep.RandSeconds}, {"guest MiB", saved.MemMiB, rep.MemMiB}} {
		if s.saved != s.now {
			return 0, fmt.Errorf("resume: the report's run had %s %d, this one %d: resume it with its own settings", s.name, s.saved, s.now)
		}
	}
	if (saved.NetSkipped == "") != (rep.NetSkipped == "") {
		return 0, fmt.Errorf("resume: the report's run and this one differ on the network rows (%q, %q): run both as root or neither",
			saved.NetSkipped, rep.NetSkipped)
	}
	if len(saved.Rows) != len(vmms) {
		return 0, fmt.Errorf("resume: the report has %d rows, want %d", len(saved.Rows), len(vmms))
	}
	for i, v := range vmms {
		row := saved.Rows[i]
		switch {
		case row.VMM != v.name:
			return 0, fmt.Errorf("resume: the report's row %d is %q, want %q", i+1, row.VMM, v.name)
		case (row.Skipped == "") != (v.skip == ""):
			return 0, fmt.Errorf("resume: %s was skipped in one run and not in the other (%q, %q)", v.name, row.Skipped, v.skip)
		case v.skip == "" && len(row.Runs) != done:
			return 0, fmt.Errorf("resume: the report has %d rounds of %s, want %d (a report from before per-round figures were saved cannot be resumed)",
				len(row.Runs), v.name, done)
		}
		v.samples = slices.Clone(row.Runs)
	}
	rep.Date = saved.Date
	rep.RetriedRounds = slices.Clone(saved.RetriedRounds)
	rep.ResumedAfter = append(slices.Clone(saved.ResumedAfter), done)
	return done, nil
}

// ioVMM is one VMM's side of the benchmark: why it is skipped, if it is,
// and its samples so far.
type ioVMM struct {
	name    string
	skip    string
	samples []IOMetrics
}

// summarize fills in rep's rows from the samples of the rounds done so
// far: the medians, and govmm's ratios to QEMU.
func summarize(rep *IOReport, vmms []*ioVMM, roundsDone int) *IOReport {
	out := *rep
	if roundsDone < rep.Rounds {
		out.RoundsDone = roundsDone
	}
	out.Rows = nil
	out.RetriedRounds = slices.Clone(rep.RetriedRounds)
	out.ResumedAfter = slices.Clone(rep.ResumedAfter)
	for _, v := range vmms {
		row := IORow{VMM: v.name, Skipped: v.skip}
		if v.skip == "" {
			row.Median = medianMetrics(v.samples)
			row.Runs = slices.Clone(v.samples)
		}
		out.Rows = append(out.Rows, row)
	}
	if q := out.Rows[1]; q.Skipped == "" {
		g := out.Rows[0].Median
		out.Rows[0].Ratio = &IOMetrics{
			SeqWriteMiBs: ratio(g.SeqWriteMiBs, q.Median.SeqWriteMiBs),
			SeqReadMiBs:  ratio(g.SeqReadMiBs, q.Median.SeqReadMiBs),
			RandReadIOPS: ratio(g.RandReadIOPS, q.Median.RandReadIOPS),
			TCPToHost:    ratio(g.TCPToHost, q.Median.TCPToHost),
			TCPToGuest:   ratio(g.TCPToGuest, q.Median.TCPToGuest),
		}
		out.Rows[0].AheadInRounds = roundsAhead(out.Rows[0].Runs, q.Runs)
	}
	if os.Getenv("GOVMM_HARNESS_INSIDE") != "" {
		out.Distortion = "measured inside the nested harness's outer guest (software-emulated CPU, disk images in its RAM): absolute figures mean little; only the ratios compare"
	}
	return &out
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func medianMetrics(ms []IOMetrics) IOMetrics {
	med := func(get func(IOMetrics) float64) float64 {
		var xs []float64
		for _, m := range ms {
			xs = append(xs, get(m))
		}
		slices.Sort(xs)
		n := len(xs)
		switch {
		case n == 0:
			return 0
		case n%2 == 0: // the mean of the middle two, as Summarize's
			return (xs[n/2-1] + xs[n/2]) / 2
		}
		return xs[n/2]
	}
	return IOMetrics{
		SeqWriteMiBs: med(func(m IOMetrics) float64 { return m.SeqWriteMiBs }),
		SeqReadMiBs:  med(func(m IOMetrics) float64 { return m.SeqReadMiBs }),
		RandReadIOPS: med(func(m IOMetrics) float64 { return m.RandReadIOPS }),
		TCPToHost:    med(func(m IOMetrics) float64 { return m.TCPToHost }),
		TCPToGuest:   med(func(m IOMetrics) float64 { return m.TCPToGuest }),
	}
}

// inRoundOrder is the order the VMMs run in in round (from 1): as given
// in odd rounds, reversed in even ones. Whatever the first VMM of a round
// leaves behind in the host (page cache, free huge pages, a warm
// scheduler), or the harness's state drifting over a round, then weighs
// on each VMM alike instead of on one always.
func inRoundOrder[T any](round int, vmms []T) []T {
	if round%2 == 1 {
		return vmms
	}
	out := slices.Clone(vmms)
	slices.Reverse(out)
	return out
}

// ioRound boots one VM that runs every measurement, and reads the results
// off its console.
func ioRound(ctx context.Context, cfg IOConfig, name string, withNet bool) (IOMetrics, error) {
	img := filepath.Join(cfg.Dir, name+".img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return IOMetrics{}, err
	}
	defer os.Remove(img)
	if err := os.Truncate(img, int64(cfg.DiskMiB+1)<<20); err != nil {
		return IOMetrics{}, err
	}
	script := fmt.Sprintf("iobench seqwrite /dev/vda %d && iobench seqread /dev/vda %d && iobench randread /dev/vda %d %d",
		cfg.DiskMiB, cfg.DiskMiB, cfg.DiskMiB, cfg.RandSeconds)

	var peer *tcpPeer
	if withNet {
		var err error
		if peer, err = newTCPPeer(cfg.NetMiB); err != nil {
			return IOMetrics{}, err
		}
		defer peer.close()
		script += fmt.Sprintf(" && iobench tcpsend $%s:%d %d && iobench tcprecv $%s:%d",
			guest.HostAddrEnv, peer.uploadPort, cfg.NetMiB, guest.HostAddrEnv, peer.downloadPort)
	}
	cmdWord, err := guest.EncodeCommand([]string{"sh", "-c", script})
	if err != nil {
		return IOMetrics{}, err
	}
	mem := fmt.Sprintf("%dM", cfg.MemMiB)
	var args []string
	okCode := 0
	switch name {
	case "govmm":
		args = []string{cfg.Govmm, "run", "--kernel", cfg.Kernel, "--initrd", cfg.Initrd, "--mem", mem,
			"--cmdline", cfg.Cmdline, "--disk", img}
		if withNet {
			args = append(args, "--net", "auto")
		}
		// govmm run puts the command on the kernel command line itself.
		args = append(args, "--", "sh", "-c", script)
	default:
		// QEMU's microvm with a PCIe host (pcie=on needs its ACPI
		// tables), the leanest QEMU that has virtio-pci; the kernel
		// resets by triple fault (reboot=t), as in the boot benchmark.
		cmdline := strings.ReplaceAll(cfg.Cmdline, "reboot=k", "reboot=t")
		args = []string{cfg.QEMU, "-M", "microvm,pit=on,pic=on,rtc=on,acpi=on,pcie=on", "-enable-kvm", "-cpu", "host", "-m", mem, "-smp", "1",
			"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
			"-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=1", guest.ExitStatusPort),
			"-kernel", cfg.Kernel, "-initrd", cfg.Initrd,
			"-drive", "file=" + img + ",if=none,id=d0,format=raw",
			"-device", "virtio-blk-pci,drive=d0"}
		if withNet {
			mac := "02:00:00:00:42:01"
			word, err := guest.EncodeNet(guest.Net{MAC: mustMAC(mac), Addr: netip.PrefixFrom(qemuBenchNet.Addr().Next(), 24), Gateway: qemuBenchNet.Addr()})
			if err != nil {
				return IOMetrics{}, err
			}
			cmdline += " " + word
			args = append(args,
				"-netdev", "tap,id=n0,ifname="+qemuBenchTap+",script=no,downscript=no,vhost=off",
				"-device", "virtio-net-pci,netdev=n0,mac="+mac)
		}
		args = append(args, "-append", cmdline+" "+cmdWord)
		okCode = 1 // isa-debug-exit: (0 << 1) | 1
	}
	// A guest that stops making progress (a stalled transfer, a hung
	// VMM) must not hang the whole benchmark.
	timeout := ioRoundTimeout(cfg)
	roundCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(roundCtx, args[0], args[1:]...)
	// Stopped as a user would stop it (both VMMs end cleanly on SIGTERM),
	// then killed if that does not do.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out := &activityBuffer{last: time.Now()}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return IOMetrics{}, err
	}
	// A hung guest falls silent: each measurement prints its result as
	// it ends. Silence for longer than any measurement takes ends the
	// round early, instead of at the round's whole bound.
	stall := ioStallTimeout(cfg)
	var stalled atomic.Bool
	go func() { // ends with the round: its context is cancelled on return
		tick := time.NewTicker(min(stall/4, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-roundCtx.Done():
				return
			case <-tick.C:
				if out.silentFor() > stall {
					stalled.Store(true)
					cancel()
					return
				}
			}
		}
	}()
	if withNet && name != "govmm" {
		// QEMU creates its tap; the host end needs its address before the
		// guest connects (iobench retries meanwhile).
		if err := configureTap(roundCtx, qemuBenchTap, qemuBenchNet); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return IOMetrics{}, err
		}
	}
	err = cmd.Wait()
	if stalled.Load() && ctx.Err() == nil {
		return IOMetrics{}, fmt.Errorf("%w: %s printed nothing for %s; output:\n%s", errGuestHung, name, stall, lastN(out.String(), 40))
	}
	if err != nil && errors.Is(roundCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return IOMetrics{}, fmt.Errorf("%w: %s did not finish the round in %s; output:\n%s", errGuestHung, name, timeout, lastN(out.String(), 40))
	}
	code := cmd.ProcessState.ExitCode()
	if name == "govmm" && strings.Contains(out.String(), "triple fault) before its command reported") {
		return IOMetrics{}, fmt.Errorf("%w; output:\n%s", errGuestTripleFault, lastN(out.String(), 20))
	}
	if name != "govmm" && code == 0 && err == nil {
		// QEMU with -no-reboot exits 0 when the guest resets, which the
		// guest does only on a triple fault (reboot=t): its agent ends
		// through isa-debug-exit, which gives an odd status. The nested
		// harness's fault (README, "No /dev/kvm?") strikes QEMU's guests
		// too.
		return IOMetrics{}, fmt.Errorf("%w (QEMU exited 0: the guest reset); output:\n%s", errGuestTripleFault, lastN(out.String(), 20))
	}
	if code != okCode {
		return IOMetrics{}, fmt.Errorf("exit status %d (%v); output:\n%s", code, err, lastN(out.String(), 40))
	}
	return parseIOResults(out.String(), withNet)
}

// ioRoundTimeout bounds one VM's whole round: nested, a round of the
// default sizes takes 20-40 s; the bound leaves two minutes for the boot
// and the unexpected, and 1 s per 5 MiB moved (the slowest rate seen
// nested is about 30 MiB/s).
func ioRoundTimeout(cfg IOConfig) time.Duration {
	if cfg.RoundTimeout != 0 {
		return cfg.RoundTimeout
	}
	moved := 2*cfg.DiskMiB + 2*cfg.NetMiB
	return 2*time.Minute + time.Duration(cfg.RandSeconds)*time.Second + time.Duration(moved)*time.Second/5
}

// ioStallTimeout bounds the silence on a round's console: a minute for
// the boot and the unexpected, plus the longest measurement at 5 MiB/s,
// six times slower than the slowest rate seen nested (1m51s for the
// defaults).
func ioStallTimeout(cfg IOConfig) time.Duration {
	if cfg.StallTimeout != 0 {
		return cfg.StallTimeout
	}
	longest := time.Duration(max(cfg.DiskMiB, cfg.NetMiB)) * time.Second / 5
	return time.Minute + max(longest, time.Duration(cfg.RandSeconds)*time.Second)
}

// activityBuffer is a VM's console output, with the time of its last
// write; make it with last set to the start.
type activityBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	last time.Time
}

func (b *activityBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = time.Now()
	return b.buf.Write(p)
}

func (b *activityBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// silentFor is the time since the last write (or since the buffer was
// made with last set, if nothing was written yet).
func (b *activityBuffer) silentFor() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return time.Since(b.last)
}

// roundLost returns the harness's known problem that lost a round, if
// that is what err is: the round is worth running again.
func roundLost(err error) error {
	for _, known := range []error{errGuestTripleFault, errGuestHung} {
		if errors.Is(err, known) {
			return known
		}
	}
	return nil
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func lastN(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var ioResult = regexp.MustCompile(`iobench result name=(\w+) bytes=(\d+) ops=(\d+) seconds=([0-9.]+)`)

// parseIOResults turns iobench's result lines into metrics.
func parseIOResults(out string, withNet bool) (IOMetrics, error) {
	var m IOMetrics
	seen := map[string]bool{}
	for _, r := range ioResult.FindAllStringSubmatch(out, -1) {
		bytes, _ := strconv.ParseFloat(r[2], 64)
		ops, _ := strconv.ParseFloat(r[3], 64)
		secs, _ := strconv.ParseFloat(r[4], 64)
		if secs <= 0 {
			return m, fmt.Errorf("iobench %s: %s seconds", r[1], r[4])
		}
		mibs := bytes / (1 << 20) / secs
		switch r[1] {
		case "seqwrite":
			m.SeqWriteMiBs = mibs
		case "seqread":
			m.SeqReadMiBs = mibs
		case "randread":
			m.RandReadIOPS = ops / secs
		case "tcpsend":
			m.TCPToHost = mibs
		case "tcprecv":
			m.TCPToGuest = mibs
		}
		seen[r[1]] = true
	}
	want := []string{"seqwrite", "seqread", "randread"}
	if withNet {
		want = append(want, "tcpsend", "tcprecv")
	}
	for _, w := range want {
		if !seen[w] {
			return m, fmt.Errorf("no %s result in the guest's output:\n%s", w, lastN(out, 40))
		}
	}
	return m, nil
}

// configureTap waits for the tap name to appear and gives it addr.
func configureTap(ctx context.Context, name string, addr netip.Prefix) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		link, err := netlink.LinkByName(name)
		if err == nil {
			ipnet := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}
			if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipnet}); err != nil {
				return fmt.Errorf("tap %s: add %s: %w", name, addr, err)
			}
			return netlink.LinkSetUp(link)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("tap %s did not appear: %w", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tcpPeer is the host end of the network measurements: the guest uploads
// to one port (read and discarded) and downloads from the other.
type tcpPeer struct {
	up, down                 net.Listener
	uploadPort, downloadPort int
	done                     chan struct{}
}

func newTCPPeer(mib int) (*tcpPeer, error) {
	up, err := net.Listen("tcp4", ":0")
	if err != nil {
		return nil, err
	}
	down, err := net.Listen("tcp4", ":0")
	if err != nil {
		up.Close()
		return nil, err
	}
	p := &tcpPeer{up: up, down: down, done: make(chan struct{}),
		uploadPort: up.Addr().(*net.TCPAddr).Port, downloadPort: down.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			// Read in large pieces, as the guest's iobench does: at
			// io.Discard's 8 KiB a read, the peer's system calls would
			// take CPU time from the VMM being measured (the nested
			// harness has two CPUs).
			buf := make([]byte, 1<<20)
			for {
				if _, err := c.Read(buf); err != nil {
					break
				}
			}
			c.Close()
		}
	}()
	go func() {
		buf := make([]byte, 1<<20)
		for {
			c, err := down.Accept()
			if err != nil {
				return
			}
			for range mib {
				if _, err := c.Write(buf); err != nil {
					break
				}
			}
			c.Close()
		}
	}()
	return p, nil
}

func (p *tcpPeer) close() {
	p.up.Close()
	p.down.Close()
}

// WriteTable prints the report for people.
func (rep *IOReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "I/O benchmark: %d MiB disk, %d MiB each way over TCP, %d rounds (%s)\n", rep.DiskMiB, rep.NetMiB, rep.Rounds, rep.Where)
	if rep.RoundsDone > 0 {
		fmt.Fprintf(w, "UNFINISHED: medians of the first %d of %d rounds; the run was cut short after them (go on with govmm bench --resume)\n", rep.RoundsDone, rep.Rounds)
	}
	if len(rep.ResumedAfter) > 0 {
		var after []string
		for _, r := range rep.ResumedAfter {
			after = append(after, strconv.Itoa(r))
		}
		fmt.Fprintf(w, "resumed after round %s: the run stopped there and went on later\n", strings.Join(after, ", "))
	}
	if rep.Distortion != "" {
		fmt.Fprintf(w, "NOTE: %s\n", rep.Distortion)
	}
	if rep.NetSkipped != "" {
		fmt.Fprintf(w, "network rows skipped: %s\n", rep.NetSkipped)
	}
	fmt.Fprintf(w, "%-22s %14s %14s %14s %14s %14s\n", "", "seq write", "seq read", "4k rand read", "tcp out", "tcp in")
	for _, r := range rep.Rows {
		if r.Skipped != "" {
			fmt.Fprintf(w, "%-22s skipped: %s\n", r.VMM, r.Skipped)
			continue
		}
		m := r.Median
		fmt.Fprintf(w, "%-22s %8.1f MiB/s %8.1f MiB/s %9.0f IOPS %8.1f MiB/s %8.1f MiB/s\n", r.VMM,
			m.SeqWriteMiBs, m.SeqReadMiBs, m.RandReadIOPS, m.TCPToHost, m.TCPToGuest)
	}
	if r := rep.Rows[0]; r.Ratio != nil {
		m := r.Ratio
		fmt.Fprintf(w, "%-22s %13.2fx %13.2fx %13.2fx %13.2fx %13.2fx\n", "govmm/qemu", m.SeqWriteMiBs, m.SeqReadMiBs, m.RandReadIOPS, m.TCPToHost, m.TCPToGuest)
		fmt.Fprintln(w, "govmm/qemu: above 1, govmm is faster (goal: at or above 1 on every column)")
	}
	if len(rep.Rows) > 1 && rep.Rows[0].Skipped == "" && rep.Rows[1].Skipped == "" {
		// Computed here too, for reports saved before the count was.
		a := roundsAhead(rep.Rows[0].Runs, rep.Rows[1].Runs)
		if a.Compared > 0 {
			of := func(k int) string { return fmt.Sprintf("%d of %d", k, a.Compared) }
			fmt.Fprintf(w, "%-22s %14s %14s %14s %14s %14s\n", "govmm ahead in rounds",
				of(a.SeqWriteMiBs), of(a.SeqReadMiBs), of(a.RandReadIOPS), of(a.TCPToHost), of(a.TCPToGuest))
		}
	}
	if len(rep.RetriedRounds) > 0 {
		fmt.Fprintf(w, "run again after a lost round: %s\n", strings.Join(rep.RetriedRounds, "; "))
	}
}
