package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"

	"github.com/spf13/cobra"

	"github.com/govmm/govmm/bench"
	"github.com/govmm/govmm/harness"
	"github.com/govmm/govmm/vmm"
)

func newBenchCommand() *cobra.Command {
	var (
		rounds, memMiB               int
		kernel, initrd               string
		qemu, jsonPath               string
		suites                       []string
		diskMiB, netMiB, randSeconds int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark boot, disk and network: govmm against QEMU, side by side",
		Long: `Two suites (--suites boot,io), each govmm against QEMU in the same place.

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
the medians and govmm/QEMU ratios (above 1: govmm is faster).

Run it where KVM works; on hosts without one, through the nested harness
('govmm with-kvm -- govmm bench', as 'make bench' does): absolute times
there are one to two orders of magnitude slower than hardware, so read the
ratios, never the times.`,
		Example: `  govmm bench --rounds 10
  govmm with-kvm -- govmm bench --rounds 5 --json - > bench.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rounds < 1 {
				return usageError{fmt.Errorf("--rounds %d: need at least 1", rounds)}
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
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			var rep struct {
				Boot *bench.BootReport `json:"boot,omitempty"`
				IO   *bench.IOReport   `json:"io,omitempty"`
			}
			for _, suite := range suites {
				switch suite {
				case "boot":
				case "io":
				default:
					return usageError{fmt.Errorf("--suites: unknown suite %q (boot, io)", suite)}
				}
			}
			if slices.Contains(suites, "boot") {
				rep.Boot, err = bench.Boot(ctx, bench.BootConfig{
					Govmm: self, QEMU: qemu, Kernel: kernel, Vmlinux: vmlinux, Initrd: initrd, MemMiB: memMiB,
					Cmdline: vmm.DefaultCmdline, Rounds: rounds, Progress: cmd.ErrOrStderr(), RunsInVMM: where,
				})
				if err != nil {
					return err
				}
				rep.Boot.WriteTable(cmd.ErrOrStderr())
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
					Rounds: rounds, Dir: dir, Progress: cmd.ErrOrStderr(), RunsInVMM: where,
				})
				if err != nil {
					return err
				}
				rep.IO.WriteTable(cmd.ErrOrStderr())
			}
			if jsonPath == "" {
				return nil
			}
			out := cmd.OutOrStdout()
			if jsonPath != "-" {
				f, err := os.Create(jsonPath)
				if err != nil {
					return err
				}
				defer f.Close()
				out = f
			}
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		},
	}
	f := cmd.Flags()
	f.IntVar(&rounds, "rounds", 5, "boots per VMM")
	f.IntVar(&memMiB, "mem", 512, "guest RAM in MiB")
	f.StringVar(&kernel, "kernel", "", "bzImage (default: Debian's kernel from 'govmm images')")
	f.StringVar(&initrd, "initrd", "", "initramfs with govmm's agent (default: from 'govmm images')")
	f.StringVar(&qemu, "qemu", "qemu-system-x86_64", "the QEMU to compare with; its row is skipped when it is missing")
	f.StringSliceVar(&suites, "suites", []string{"boot", "io"}, "what to measure: boot, io")
	f.IntVar(&diskMiB, "disk-mib", 128, "io: MiB written and read sequentially (and the random reads' range)")
	f.IntVar(&netMiB, "net-mib", 64, "io: MiB sent each way over TCP")
	f.IntVar(&randSeconds, "rand-seconds", 3, "io: seconds of 4 KiB random reads")
	f.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file ('-': stdout)")
	return cmd
}
