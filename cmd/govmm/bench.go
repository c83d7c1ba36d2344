package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"

	"github.com/spf13/cobra"

	"github.com/govmm/govmm/bench"
	"github.com/govmm/govmm/container"
	"github.com/govmm/govmm/harness"
	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/vmm"
)

func newBenchCommand() *cobra.Command {
	var (
		rounds, memMiB               int
		kernel, initrd               string
		qemu, jsonPath, chartPath    string
		fromPath, resumePath         string
		suites                       []string
		diskMiB, netMiB, randSeconds int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark boot, disk, network and VM-versus-container start-up",
		Long: `Three suites (--suites boot,io,container), each govmm against its peers in
the same place.

boot: boot the same kernel and initramfs ROUNDS times with govmm and with QEMU's
microvm machine (-M microvm -enable-kvm, the leanest QEMU), interleaved, and
report for each: launch to guest init (min, median, p95), launch to exit,
and the VMM's own memory (its resident memory less the guest RAM it backs).
Where 'govmm images' extracted the kernel's payload, a third row boots
that vmlinux directly (govmm's default for its images).
The guest runs 'true' through govmm's agent in both.

io: boot ROUNDS times with a virtio disk (a raw image) and, as root, a
virtio network on a tap, under govmm and under QEMU's microvm machine with
PCIe (-M microvm,acpi=on,pcie=on), virtio-blk-pci and virtio-net-pci (no
vhost). In each boot the guest
measures, with the same program (iobench, in govmm's initramfs): sequential
write and read in 1 MiB O_DIRECT blocks, 4 KiB random reads (4 in flight),
and TCP throughput each way to a peer in this process. The report gives
the medians and govmm/QEMU ratios (above 1: govmm is faster), and with
--json every round's figures. The JSON report is saved after each round;
a run cut short (in the nested harness the outer guest can die during a
long run) goes on from where it stopped with --resume FILE, which finishes
the io suite of that report with its own settings and writes it back
(or to --json), keeping the report's other suites.

container: what hardware isolation costs next to a container. ROUNDS times
each, interleaved: govmm's isolation probe started in a runc container on
this host (runc run to the probe's first line); a govmm VM launched to its
guest init; a govmm VM launched to the probe's first line in a runc
container inside it (--container); QEMU's microvm launched to its guest
init. Both VMMs boot the same bzImage and initramfs. It reports min, median
and p95 of each, memory per instance (runc's or the VMM's resident memory,
the VMM's own overhead, the probe's in its container) and each row's start
over the container's. --chart draws it as SVG; --from redraws a saved
--json report without measuring. Needs runc (apt-get install runc) and root.

Progress goes to stderr as the rounds run, then a table per suite.

Run it where KVM works; on hosts without one, through the nested harness
('govmm with-kvm -- govmm bench', as 'make bench' does): absolute times
there are one to two orders of magnitude slower than hardware, so read the
ratios, never the times.`,
		Example: `  govmm bench --rounds 10
  govmm with-kvm -- govmm bench --rounds 5 --json - > bench.json
  govmm with-kvm -- govmm bench --suites container --rounds 3 --json bench.json --chart bench.svg
  govmm with-kvm -- govmm bench --resume bench.json     # finish a cut-short io suite`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rep benchReport
			var resumeIO *bench.IOReport
			if resumePath != "" {
				r, err := loadResume(cmd, resumePath)
				if err != nil {
					return err
				}
				rep, resumeIO = *r, r.IO
				// The run goes on with its own settings, saved in its report.
				rounds, diskMiB, netMiB, randSeconds, memMiB = resumeIO.Rounds, resumeIO.DiskMiB, resumeIO.NetMiB, resumeIO.RandSeconds, resumeIO.MemMiB
				suites = []string{"io"}
				if jsonPath == "" {
					jsonPath = resumePath
				}
			}
			if fromPath != "" {
				// Redraw a saved run: no measuring, no KVM needed.
				raw, err := os.ReadFile(fromPath)
				if err != nil {
					return usageError{fmt.Errorf("--from: %w", err)}
				}
				if err := json.Unmarshal(raw, &rep); err != nil {
					return fmt.Errorf("--from %s: not a govmm bench report: %w", fromPath, err)
				}
				return rep.finish(cmd, jsonPath, chartPath)
			}
			for _, f := range []struct {
				name string
				v    int
			}{{"rounds", rounds}, {"disk-mib", diskMiB}, {"net-mib", netMiB}, {"rand-seconds", randSeconds}} {
				if f.v < 1 {
					return usageError{fmt.Errorf("--%s %d: need at least 1", f.name, f.v)}
				}
			}
			if err := needKVM("bench"); err != nil {
				return err
			}
			vmlinux := ""
			if err := fillDefaultImages(&kernel, &initrd, &vmlinux, false); err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			where := "directly on /dev/kvm"
			if harness.Inside() {
				where = "nested, inside the harness's outer guest"
			}
			if q, err := exec.LookPath(qemu); err == nil {
				qemu = q
			} else {
				qemu = ""
			}
			ctx, stop := stopOnSignal(cmd.Context())
			defer stop()
			for _, suite := range suites {
				switch suite {
				case "boot":
				case "io":
				case "container":
				default:
					return usageError{fmt.Errorf("--suites: unknown suite %q (boot, io, container)", suite)}
				}
			}
			// Each finished suite is saved at once: a later one that fails
			// (the nested harness's outer guest can lock up in a long run)
			// must not take the earlier results with it.
			saveSoFar := func() error {
				if jsonPath == "" || jsonPath == "-" {
					return nil
				}
				return writeJSON(cmd, jsonPath, rep)
			}
			if slices.Contains(suites, "boot") {
				rep.Boot, err = bench.Boot(ctx, bench.BootConfig{
					Govmm: self, QEMU: qemu, Kernel: kernel, Vmlinux: vmlinux, Initrd: initrd, MemMiB: memMiB,
					Cmdline: vmm.DefaultCmdline, Rounds: rounds, Progress: cmd.ErrOrStderr(), RunsInVMM: where,
				})
				if err != nil {
					return err
				}
				if err := saveSoFar(); err != nil {
					return err
				}
			}
			if slices.Contains(suites, "io") {
				dir, err := os.MkdirTemp("", "govmm-bench-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				rep.IO, err = bench.IO(ctx, bench.IOConfig{
					Govmm: self, QEMU: qemu, Kernel: kernel, Initrd: initrd, MemMiB: memMiB,
					Cmdline: vmm.DefaultCmdline, DiskMiB: diskMiB, RandSeconds: randSeconds, NetMiB: netMiB,
					Rounds: rounds, Dir: dir, Progress: cmd.ErrOrStderr(), RunsInVMM: where, Resume: resumeIO,
					// Every round is saved as it ends: a long nested run
					// that dies keeps its finished rounds.
					AfterRound: func(partial *bench.IOReport) error {
						rep.IO = partial
						return saveSoFar()
					},
				})
				if err != nil {
					return err
				}
				if err := saveSoFar(); err != nil {
					return err
				}
			}
			if slices.Contains(suites, "container") {
				rep.Container, err = containerBench(ctx, cmd, self, qemu, kernel, initrd, memMiB, rounds, where)
				if err != nil {
					return err
				}
			}
			return rep.finish(cmd, jsonPath, chartPath)
		},
	}
	f := cmd.Flags()
	f.IntVar(&rounds, "rounds", 5, "boots per VMM")
	f.IntVar(&memMiB, "mem", 512, "guest RAM in MiB")
	f.StringVar(&kernel, "kernel", "", "bzImage (default: Debian's kernel from 'govmm images')")
	f.StringVar(&initrd, "initrd", "", "initramfs with govmm's agent (default: from 'govmm images')")
	f.StringVar(&qemu, "qemu", "qemu-system-x86_64", "the QEMU to compare with; its row is skipped when it is missing")
	f.StringSliceVar(&suites, "suites", []string{"boot", "io", "container"}, "what to measure: boot, io, container")
	f.IntVar(&diskMiB, "disk-mib", 128, "io: MiB written and read sequentially (and the random reads' range)")
	f.IntVar(&netMiB, "net-mib", 256, "io: MiB sent each way over TCP (shorter transfers are mostly TCP ramp-up and noise, nested)")
	f.IntVar(&randSeconds, "rand-seconds", 3, "io: seconds of 4 KiB random reads")
	f.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file ('-': stdout)")
	f.StringVar(&fromPath, "from", "", "measure nothing: print the tables of a saved --json report, and draw its --chart")
	f.StringVar(&chartPath, "chart", "", "draw the container suite's chart to this file (.svg)")
	f.StringVar(&resumePath, "resume", "", "finish the cut-short io suite of this saved --json report, with its settings; written back to it unless --json says where")
	return cmd
}

// loadResume reads the report --resume names and checks that it can be
// resumed: an io suite cut short, and no flag that would change its run.
func loadResume(cmd *cobra.Command, path string) (*benchReport, error) {
	for _, name := range []string{"from", "suites", "rounds", "disk-mib", "net-mib", "rand-seconds", "mem"} {
		if cmd.Flags().Changed(name) {
			return nil, usageError{fmt.Errorf("--resume and --%s do not mix: a resumed run keeps its own suite and settings", name)}
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--resume: %w", err)}
	}
	var rep benchReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("--resume %s: not a govmm bench report: %w", path, err)
	}
	switch {
	case rep.IO == nil:
		return nil, fmt.Errorf("--resume %s: the report has no io suite: nothing to resume", path)
	case rep.IO.RoundsDone == 0:
		return nil, fmt.Errorf("--resume %s: its io suite finished all its %d rounds: nothing to resume", path, rep.IO.Rounds)
	case rep.IO.RandSeconds == 0 || rep.IO.MemMiB == 0:
		return nil, fmt.Errorf("--resume %s: the report is from a govmm that did not save its io settings: it cannot be resumed", path)
	}
	return &rep, nil
}

// containerBench runs the container suite on the images of 'govmm images'.
func containerBench(ctx context.Context, cmd *cobra.Command, self, qemu, kernel, initrd string, memMiB, rounds int, where string) (*bench.ContainerReport, error) {
	cacheDir, err := images.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	m, err := images.LoadManifest(cacheDir)
	if err != nil {
		return nil, err
	}
	runc, _ := container.FindRunc()
	dir, err := os.MkdirTemp("", "govmm-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	return bench.Container(ctx, bench.ContainerConfig{
		Govmm: self, QEMU: qemu, Runc: runc, Kernel: kernel, Initrd: initrd, ContainerInitrd: m.ContainerInitramfs,
		RootfsDir: m.ProbeRootfs, RootfsImage: m.ProbeRootfsImage, MemMiB: memMiB, Cmdline: vmm.DefaultCmdline,
		Rounds: rounds, Dir: dir, Progress: cmd.ErrOrStderr(), RunsInVMM: where,
	})
}

// benchReport is everything one 'govmm bench' measured, as its JSON.
type benchReport struct {
	Boot      *bench.BootReport      `json:"boot,omitempty"`
	IO        *bench.IOReport        `json:"io,omitempty"`
	Container *bench.ContainerReport `json:"container,omitempty"`
}

// finish prints the report's tables and writes its chart and JSON.
func (rep *benchReport) finish(cmd *cobra.Command, jsonPath, chartPath string) error {
	w := cmd.ErrOrStderr()
	if rep.Boot != nil {
		rep.Boot.WriteTable(w)
	}
	if rep.IO != nil {
		rep.IO.WriteTable(w)
	}
	if rep.Container != nil {
		rep.Container.WriteTable(w)
	}
	if chartPath != "" {
		if rep.Container == nil {
			return usageError{errors.New("--chart draws the container suite: add container to --suites")}
		}
		if err := bench.WriteChart(chartPath, rep.Container.Chart()); err != nil {
			return err
		}
		fmt.Fprintf(w, "bench: chart in %s\n", chartPath)
	}
	if jsonPath == "" {
		return nil
	}
	return writeJSON(cmd, jsonPath, rep)
}
