package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/govmm/govmm/guest"
	"github.com/govmm/govmm/hostnet"
	"github.com/govmm/govmm/images"
	"github.com/govmm/govmm/internal/threadsched"
	"github.com/govmm/govmm/vmm"
	"github.com/govmm/govmm/vmmproc"
)

func newRunCommand() *cobra.Command {
	var (
		kernel, initrd, mem, cmdline string
		vmlinux                      string
		noVmlinux                    bool
		cpus                         int
		bootTime, verbose            bool
		diskSpecs, netSpecs          []string
		containerRoot                string
	)
	cmd := &cobra.Command{
		Use:   "run [flags] [-- COMMAND [ARGS...]]",
		Short: "Boot a Linux guest, optionally running one command in it",
		Long: `Boot an unmodified Linux kernel (a bzImage, protocol 2.12 or newer, with a
64-bit entry point: any current distribution kernel) with an initramfs,
straight into 64-bit mode, with its serial console on your terminal.

Without --kernel and --initrd, the images of 'govmm images' are used:
Debian's stock kernel and govmm's u-root initramfs. Its guest agent runs
COMMAND (given after --) and govmm exits with COMMAND's status; without
COMMAND you get a shell, and powering the guest off ('poweroff', or leaving
the shell) ends govmm.

Disks (--disk, repeatable) are raw image files, given to the guest as
virtio block devices (/dev/vda, /dev/vdb, ... in order). Each image is locked
while the VM runs: a second VM on the same image is refused. Make one from a
directory with: mkfs.ext4 -d DIR disk.img 256M

Networks (--net, repeatable) are virtio network devices on a tap. With
--net auto, govmm creates a tap (govmm0, govmm1, ...), gives the host end
10.213.N.1/24 and the guest 10.213.N.2/24 with the host as its gateway
(the guest command finds the host's address in $GOVMM_HOST_ADDR); the tap
goes away when govmm exits. Routing the guest further (NAT) is up to you.
--net tap=NAME attaches to an existing tap (ip tuntap add mode tap NAME) and
configures nothing. Taps need root or CAP_NET_ADMIN.

With --container ROOTFS, COMMAND runs in an OCI container inside the guest,
under the runc of this host (packed into the guest by 'govmm images'), and
govmm exits with the container's status. ROOTFS is a directory (the same
one 'runc' takes on the host: it is copied into an ext4 image for the VM),
an ext4 image, or 'default' for govmm's own rootfs, which holds its static
isolation probe as /probe. The root reaches the guest as a read-only virtio
disk; the container gets new PID, network, IPC, UTS, mount and cgroup
namespaces, cgroup v2 limits (256 MiB, 64 tasks), a read-only root, no new
privileges and three capabilities. ROOTFS must hold /proc, /dev, /sys and
/tmp as directories.

The console is raw: keys such as Ctrl-C go to the guest. Type Ctrl-A x to
stop the VM.

Exit status:
  N   with -- COMMAND: COMMAND's exit status
  0   the guest powered off or rebooted
  1   govmm failed (KVM unusable, bad kernel or initrd, I/O errors)
  2   usage error (bad flags)
  3   the guest kernel panicked
  130 you stopped it (Ctrl-A x, or a signal to govmm)`,
		Example: `  govmm run -- uname -a
  govmm run --kernel bzImage --initrd initramfs.cpio --mem 1G --cpus 4
  govmm run --mem 256M -- sh -c 'cat /proc/meminfo | head -1'
  govmm run --boot-time -- true
  govmm run --disk data.img --disk ref.img,readonly,serial=ref0 -- sh -c 'mount /dev/vda /mnt && ls /mnt'
  govmm run --net auto -- sh -c 'ping -c 1 $GOVMM_HOST_ADDR'
  govmm run --container default -- /probe
  govmm run --container ./rootfs -- /bin/sh -c 'cat /etc/os-release'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && cmd.ArgsLenAtDash() != 0 {
				return usageError{fmt.Errorf("unexpected argument %q: put the guest command after --", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			memBytes, err := parseSize(mem)
			if err != nil {
				return usageError{fmt.Errorf("--mem: %w", err)}
			}
			if cpus < 1 {
				return usageError{fmt.Errorf("--cpus %d: need at least 1", cpus)}
			}
			var containerDisk string
			var removeOnExit []string
			vmmStarted := false
			if containerRoot != "" {
				if len(args) == 0 {
					return usageError{errors.New("--container: give the command to run in the container after --")}
				}
				disk, made, err := containerImages(cmd.Context(), containerRoot, &initrd, cmd.Flags().Changed("initrd"))
				if err != nil {
					return err
				}
				if made != "" {
					// startVM (the VMM's Run, in the end) removes it;
					// on the ways out before startVM, this does.
					removeOnExit = append(removeOnExit, made)
					defer func() {
						if !vmmStarted {
							os.RemoveAll(made)
						}
					}()
				}
				containerDisk = disk
			}
			useVmlinux := &vmlinux
			if noVmlinux {
				useVmlinux = nil
			}
			if err := fillDefaultImages(&kernel, &initrd, useVmlinux, cmd.Flags().Changed("initrd")); err != nil {
				return err
			}
			for flag, path := range map[string]string{"--kernel": kernel, "--initrd": initrd, "--vmlinux": vmlinux} {
				if path == "" {
					continue
				}
				if _, err := os.Stat(path); err != nil {
					return usageError{fmt.Errorf("%s: %w", flag, err)}
				}
			}
			var disks []vmm.DiskConfig
			for _, spec := range diskSpecs {
				d, err := parseDiskSpec(spec)
				if err != nil {
					return usageError{fmt.Errorf("--disk %s: %w", spec, err)}
				}
				disks = append(disks, d)
			}
			if containerDisk != "" {
				disks = append(disks, vmm.DiskConfig{Path: containerDisk, ReadOnly: true, Serial: guest.ContainerDiskSerial})
			}
			var nets []hostnet.Net
			for _, spec := range netSpecs {
				n, err := parseNetSpec(spec)
				if err != nil {
					return usageError{fmt.Errorf("--net %s: %w", spec, err)}
				}
				nets = append(nets, n)
			}
			if _, err := threadsched.FromEnv(); err != nil {
				return usageError{err} // checked here too, before anything is built
			}
			if !cmd.Flags().Changed("cmdline") {
				cmdline = vmm.DefaultCmdline
			}
			if containerDisk != "" {
				word, err := guest.EncodeContainer(guest.ContainerDiskSerial)
				if err != nil {
					return err
				}
				cmdline += " " + word
			}
			if len(args) > 0 {
				word, err := guest.EncodeCommand(args)
				if err != nil {
					return usageError{err}
				}
				cmdline += " " + word
			}
			// Last, after every check: the taps of --net auto exist only
			// while open, and whatever runs the VM inherits them.
			netCfgs, netWords, err := hostnet.Open(nets)
			if err != nil {
				return err
			}
			if len(netWords) > 0 {
				cmdline += " " + strings.Join(netWords, " ")
			}
			spec := vmmproc.Spec{
				VM: vmm.Config{
					Kernel: kernel, Initrd: initrd, Vmlinux: vmlinux, MemoryBytes: memBytes, CPUs: cpus, Cmdline: cmdline,
					Disks: disks, Nets: netCfgs, Launch: launch,
				},
				Verbose: verbose, PrintBootTime: bootTime, HasCommand: len(args) > 0, RemoveOnExit: removeOnExit,
			}
			vmmStarted = true
			return startVM(cmd.Context(), spec)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kernel, "kernel", "", "bzImage to boot (default: Debian's kernel from 'govmm images')")
	f.StringVar(&initrd, "initrd", "", "initramfs (default: govmm's initramfs from 'govmm images'; --initrd '' for none)")
	f.StringVar(&mem, "mem", "512M", "guest RAM: 256M, 1G, 1536M... (a bare number is MiB)")
	f.IntVar(&cpus, "cpus", 1, "number of vCPUs")
	f.StringVar(&vmlinux, "vmlinux", "", "the kernel's payload already decompressed (ELF vmlinux), booted directly so the guest skips its decompressor (default: extracted by 'govmm images' for its kernels)")
	f.BoolVar(&noVmlinux, "no-vmlinux", false, "boot the bzImage as it is, decompressor included, even when an extracted vmlinux is at hand")
	f.StringVar(&cmdline, "cmdline", "", "kernel command line (replaces the default: "+vmm.DefaultCmdline+")")
	f.StringArrayVar(&diskSpecs, "disk", nil, "PATH[,readonly][,serial=ID]: a raw disk image as a virtio block device (repeatable)")
	f.StringArrayVar(&netSpecs, "net", nil, "auto[,mac=MAC] or tap=NAME[,mac=MAC]: a virtio network device on a new or existing tap (repeatable)")
	f.StringVar(&containerRoot, "container", "", "run COMMAND in a runc container in the guest, with this root: a directory, an ext4 image, or 'default' (govmm's probe rootfs)")
	f.BoolVar(&bootTime, "boot-time", false, "print the time from launch to the guest's init on stderr")
	f.BoolVarP(&verbose, "verbose", "v", false, "debug logs on stderr")
	return cmd
}

// launch is when govmm started, the zero of its boot timer.
var launch = time.Now()

// fillDefaultImages fills an empty kernel or initrd path with the default
// image of 'govmm images'; initrdGiven keeps an explicitly empty --initrd (no
// initrd) empty. For the default kernels it also fills in their extracted
// payload (vmlinux), unless vmlinux is nil or already set.
func fillDefaultImages(kernel, initrd, vmlinux *string, initrdGiven bool) error {
	dir, err := images.DefaultCacheDir()
	if err != nil {
		return err
	}
	m, err := images.LoadManifest(dir)
	if err != nil {
		if *kernel != "" && (*initrd != "" || initrdGiven) {
			return nil // nothing needed from the cache
		}
		return fmt.Errorf("no --kernel or --initrd given and %w", err)
	}
	if *kernel == "" {
		*kernel = m.Kernel
	}
	if *initrd == "" && !initrdGiven {
		*initrd = m.Initramfs
	}
	if vmlinux != nil && *vmlinux == "" {
		switch *kernel {
		case m.Kernel:
			*vmlinux = m.KernelVmlinux
		case m.CloudKernel:
			*vmlinux = m.CloudVmlinux
		}
	}
	return nil
}

// startVM runs the VM of spec: in the VMM executable, which replaces this
// process, or in this process when there is none beside govmm.
//
// From here on, spec.RemoveOnExit is startVM's to remove: by the VMM's Run,
// or here on the ways out before that.
func startVM(ctx context.Context, spec vmmproc.Spec) error {
	giveUp := func(err error) error {
		for _, p := range spec.RemoveOnExit {
			os.RemoveAll(p)
		}
		return err
	}
	if err := vmmproc.PinFromEnv(); err != nil {
		return giveUp(err)
	}
	path, err := vmmproc.Executable()
	switch {
	case err == nil:
		return giveUp(vmmproc.Exec(path, spec)) // Exec returns only on failure
	case !errors.Is(err, vmmproc.ErrNoExecutable):
		return giveUp(err)
	}
	if spec.Verbose {
		fmt.Fprintf(os.Stderr, "govmm: %v: running the VM in this process (it maps all of govmm; 'make build' puts %s beside govmm)\n", err, vmmproc.ExecutableName)
	}
	code, err := vmmproc.Run(ctx, spec)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCodeError{code}
	}
	return nil
}

// parseDiskSpec parses PATH[,readonly][,serial=ID]. Raw images only: there
// is deliberately no format option, and no probing.
func parseDiskSpec(spec string) (vmm.DiskConfig, error) {
	parts := strings.Split(spec, ",")
	d := vmm.DiskConfig{Path: parts[0]}
	if d.Path == "" {
		return d, errors.New("no image path")
	}
	for _, opt := range parts[1:] {
		key, value, hasValue := strings.Cut(opt, "=")
		switch {
		case key == "readonly" && !hasValue:
			d.ReadOnly = true
		case key == "serial" && hasValue:
			if len(value) > 20 {
				return d, fmt.Errorf("serial %q is longer than 20 bytes", value)
			}
			d.Serial = value
		default:
			return d, fmt.Errorf("unknown option %q (options: readonly, serial=ID)", opt)
		}
	}
	return d, nil
}

// parseNetSpec parses auto[,mac=MAC] or tap=NAME[,mac=MAC].
func parseNetSpec(spec string) (hostnet.Net, error) {
	var n hostnet.Net
	for i, opt := range strings.Split(spec, ",") {
		key, value, hasValue := strings.Cut(opt, "=")
		switch {
		case i == 0 && key == "auto" && !hasValue:
			n.Auto = true
		case i == 0 && key == "tap" && value != "":
			if len(value) >= 16 {
				return n, fmt.Errorf("tap name %q is longer than 15 bytes", value)
			}
			n.Tap = value
		case i == 0:
			return n, fmt.Errorf("start with auto or tap=NAME, not %q", opt)
		case key == "mac" && hasValue:
			mac, err := net.ParseMAC(value)
			if err != nil || len(mac) != 6 {
				return n, fmt.Errorf("bad MAC %q (want 6 bytes, like 02:00:00:00:00:01)", value)
			}
			if mac[0]&1 != 0 {
				return n, fmt.Errorf("MAC %s is a multicast address", mac)
			}
			n.MAC = mac
		default:
			return n, fmt.Errorf("unknown option %q (options: mac=MAC)", opt)
		}
	}
	return n, nil
}
