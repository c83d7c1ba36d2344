package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/govmm/govmm/container"
	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/isolation"
	"github.com/govmm/govmm/isolation/compare"
)

func newIsolationCommand() *cobra.Command {
	var (
		jsonPath string
		memMiB   int
	)
	cmd := &cobra.Command{
		Use:   "isolation",
		Short: "Show what a process sees in a container and in a VM, side by side",
		Long: `Run govmm's isolation probe, a small static Go program, in four places:

  host                         directly on this host
  runc container on host       in a runc container on this host
  runc container in govmm VM   in the same container inside a govmm VM
  govmm VM                     directly inside a govmm VM

and print one table: the kernel each sees (release, version, and the boot
ID, which tells two boots of the same kernel apart), PID 1 and the processes
visible, CPUs and memory, cgroup, mounts, devices and network interfaces,
identity and capabilities, whether the host's processes, files and loopback
are visible or reachable, and which privileged operations fail and how:
loading a kernel module, kexec, reading another process's memory (ptrace
access), raw I/O ports, mknod of a block device, mounting a file system.
The privileged probes ask the kernel with invalid arguments or undo at once:
nothing they do outlives them.

A container shares the host's kernel: it sees the host's boot ID, and what
it is refused, it is refused by that kernel's permission checks. A VM has a
kernel of its own: root in it may do anything to the guest and nothing to
the host.

The containers use the root file system of 'govmm images' (the probe as
/probe) and the same OCI configuration on both sides (see 'govmm run
--help', --container). Needs runc (apt-get install runc) and root. Where
this host has no usable KVM, run it through the nested harness, where the
"host" is the harness's outer guest:
  govmm with-kvm -- govmm isolation

Exit status: 0 when every place reported, 1 otherwise (the table still
shows what did).`,
		Example: `  sudo govmm isolation
  govmm with-kvm -- govmm isolation --json isolation.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needKVM("isolation"); err != nil {
				return err
			}
			dir, err := images.DefaultCacheDir()
			if err != nil {
				return err
			}
			m, err := images.LoadManifest(dir)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			runc, _ := container.FindRunc()
			ctx, stop := stopOnSignal(cmd.Context())
			defer stop()
			places, err := compare.Run(ctx, compare.Config{
				Govmm: self, Runc: runc, RootfsDir: m.ProbeRootfs, RootfsImage: m.ProbeRootfsImage,
				Initramfs: m.ContainerInitramfs, MemMiB: memMiB, Progress: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			isolation.WriteTable(cmd.OutOrStdout(), places)
			if jsonPath != "" {
				if err := writeJSON(cmd, jsonPath, places); err != nil {
					return err
				}
			}
			for _, p := range places {
				if p.Report == nil {
					return fmt.Errorf("isolation: %s did not report: %s", p.Name, p.Error)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&jsonPath, "json", "", "also write the places and their reports as JSON to this file ('-': stdout)")
	cmd.Flags().IntVar(&memMiB, "mem", 256, "guest RAM of the VMs, in MiB")
	return cmd
}

// writeJSON writes v, indented, to path ("-" for the command's stdout).
func writeJSON(cmd *cobra.Command, path string, v any) error {
	if path == "-" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	// Into a temporary file renamed over path: a run stopped while writing
	// leaves the previous file whole.
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
