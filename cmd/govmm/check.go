package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/govmm/govmm/harness"
	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/vmm"
)

func newCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check whether govmm can run guests on this host, and what to do if not",
		Long: `Check this host for what govmm needs, like kvm-ok: /dev/kvm and its API
version, the KVM capabilities govmm uses, the vCPU limit, whether this KVM
boots stock kernels, and, for hosts without a usable KVM, whether the nested
harness ('govmm with-kvm') can stand in.

Exits 0 when govmm can run guests here directly, 1 when it cannot.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !runChecks(cmd.OutOrStdout()) {
				return exitCodeError{exitFailure}
			}
			return nil
		},
	}
}

// runChecks prints one line per check and reports whether KVM is usable.
func runChecks(w io.Writer) bool {
	line := func(name, verdict, detail string) {
		fmt.Fprintf(w, "%-16s %-5s %s\n", name, verdict, detail)
	}
	usable := checkKVM(line)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		line("nested harness", "no", "qemu-system-x86_64 not found: apt-get install qemu-system-x86")
	} else {
		line("nested harness", "ok", "qemu-system-x86_64 found: 'govmm with-kvm -- CMD' runs CMD with KVM even where this host has none")
	}
	if dir, err := images.DefaultCacheDir(); err == nil {
		if _, err := images.LoadManifest(dir); err != nil {
			line("images", "no", "run 'govmm images' (or 'make images') to build the default kernel and initramfs")
		} else {
			line("images", "ok", "default kernel and initramfs in "+dir)
		}
	}
	if usable {
		fmt.Fprintln(w, "\ngovmm can run guests on this host.")
	} else {
		fmt.Fprintln(w, "\ngovmm cannot run guests directly on this host; see above, or use 'govmm with-kvm -- govmm run ...'.")
	}
	return usable
}

func checkKVM(line func(name, verdict, detail string)) bool {
	sys, err := kvm.Open(kvm.DevicePath)
	if err != nil {
		line("kvm device", "no", err.Error())
		return false
	}
	defer sys.Close()
	line("kvm device", "ok", fmt.Sprintf("%s opened, API version %d", kvm.DevicePath, kvm.APIVersion))
	usable := true
	if err := sys.RequireExtensions(vmm.RequiredCapabilities...); err != nil {
		line("capabilities", "no", err.Error())
		usable = false
	} else {
		var names []string
		for _, c := range vmm.RequiredCapabilities {
			names = append(names, c.String())
		}
		line("capabilities", "ok", strings.Join(names, ", "))
	}
	if n, err := sys.CheckExtension(kvm.CapMaxVCPUs); err == nil {
		line("max vcpus", "ok", fmt.Sprintf("%d (govmm's MP table allows 254)", n))
	}
	facts := kvm.GatherHostFacts(os.DirFS("/"))
	if err := kvm.CheckStockGuests(kvm.DevicePath, facts); err != nil {
		var ue *kvm.UnavailableError
		if errors.As(err, &ue) {
			line("stock kernels", "no", ue.Reason+"; "+strings.Join(ue.Advice, "; "))
		}
		usable = false
	} else {
		line("stock kernels", "ok", "hardware virtualization")
	}
	switch {
	case facts.NestedIntel != "":
		line("nested virt", "info", "kvm_intel nested="+facts.NestedIntel+" (guests of this host may use KVM when Y or 1)")
	case facts.NestedAMD != "":
		line("nested virt", "info", "kvm_amd nested="+facts.NestedAMD+" (guests of this host may use KVM when Y or 1)")
	}
	return usable
}

// needKVM fails with the fix when this host has no usable KVM and the
// command is not already running inside the nested harness: commands that
// start many VMs and compare them (isolation, bench) run whole in one place.
func needKVM(command string) error {
	if harness.Inside() {
		return nil
	}
	plan, err := harness.Detect()
	if err != nil {
		return usageError{err}
	}
	if plan.Mode != harness.Direct {
		return fmt.Errorf("no usable KVM here, so run it whole inside the nested harness: govmm with-kvm -- govmm %s\n(why: %s)", command, plan.Reason)
	}
	return nil
}
