package guest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

const (
	// BootMarkerPort and BootMarkerValue follow Firecracker's convention: the
	// first thing the guest's init does is write this byte to this port, so
	// the VMM can time launch-to-init without parsing console output.
	BootMarkerPort  = 0x3f0
	BootMarkerValue = 123

	// StartedLine is what the agent prints on the console (after a
	// "govmm-agent: " prefix) right after the boot marker.
	StartedLine = "started"

	// ExitStatusPort receives the exit status (one byte) of the command the
	// agent ran. It sits where QEMU's isa-debug-exit device is usually placed,
	// so the same initramfs reports its status under QEMU as well.
	ExitStatusPort = 0xf4

	// CommandParam is the kernel command-line parameter that carries the
	// command to run: base64url (no padding) of a JSON array of strings, so
	// no quoting rule of the kernel's command-line parser can split or eat it.
	CommandParam = "govmm.cmd"
	// NetParam configures one guest interface: govmm.net=MAC,ADDR/PREFIX,GATEWAY
	// (the gateway may be empty). It may appear once per interface.
	NetParam = "govmm.net"
	// ContainerParam asks the agent to run the command in a container:
	// govmm.container=SERIAL names the read-only virtio disk (by its serial)
	// that holds the container's root file system, an ext4 image.
	ContainerParam = "govmm.container"
	// ContainerDiskSerial is the serial govmm gives that disk.
	ContainerDiskSerial = "govmm-rootfs"
	// HostAddrEnv is set in the command's environment to the gateway of
	// the first configured interface: the host's end of the link.
	HostAddrEnv = "GOVMM_HOST_ADDR"
)

// Net is one guest interface the agent configures, found by its MAC.
type Net struct {
	MAC     net.HardwareAddr
	Addr    netip.Prefix // the guest's address and the link's prefix
	Gateway netip.Addr   // default route; invalid for none
}

// EncodeNet returns the kernel command-line word for n.
func EncodeNet(n Net) (string, error) {
	if len(n.MAC) != 6 || !n.Addr.IsValid() {
		return "", fmt.Errorf("encode guest network: need a MAC and an address, got %q and %s", n.MAC, n.Addr)
	}
	gw := ""
	if n.Gateway.IsValid() {
		gw = n.Gateway.String()
	}
	return fmt.Sprintf("%s=%s,%s,%s", NetParam, n.MAC, n.Addr, gw), nil
}

func parseNet(v string) (Net, error) {
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return Net{}, fmt.Errorf("parse %s=%s: want MAC,ADDR/PREFIX,GATEWAY", NetParam, v)
	}
	mac, err := net.ParseMAC(parts[0])
	if err != nil || len(mac) != 6 {
		return Net{}, fmt.Errorf("parse %s=%s: bad MAC %q", NetParam, v, parts[0])
	}
	addr, err := netip.ParsePrefix(parts[1])
	if err != nil {
		return Net{}, fmt.Errorf("parse %s=%s: %w", NetParam, v, err)
	}
	n := Net{MAC: mac, Addr: addr}
	if parts[2] != "" {
		if n.Gateway, err = netip.ParseAddr(parts[2]); err != nil {
			return Net{}, fmt.Errorf("parse %s=%s: %w", NetParam, v, err)
		}
	}
	return n, nil
}

// ModuleOrderFile is where the initramfs lists, one path per line and in
// dependency order, the modules the agent loads at start when the kernel
// release is release. One initramfs carries modules for several kernels;
// each kernel loads only its own.
func ModuleOrderFile(release string) string {
	return "/lib/modules/" + release + "/govmm-load-order"
}

// EncodeCommand returns the kernel command-line word that asks the agent to
// run argv.
func EncodeCommand(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("encode guest command: empty command")
	}
	js, err := json.Marshal(argv)
	if err != nil {
		return "", fmt.Errorf("encode guest command: %w", err)
	}
	return CommandParam + "=" + base64.RawURLEncoding.EncodeToString(js), nil
}

// Config is what the agent reads from the kernel command line.
type Config struct {
	// Command is the command to run; empty means an interactive shell.
	Command []string
	// Nets are the interfaces to configure.
	Nets []Net
	// ContainerDisk, when set, is the serial of the disk holding the root
	// file system of a container to run Command in.
	ContainerDisk string
}

// EncodeContainer returns the kernel command-line word that asks the agent
// to run its command in a container whose root is on the disk with serial.
func EncodeContainer(serial string) (string, error) {
	if serial == "" || strings.ContainsAny(serial, " \t\n,=") {
		return "", fmt.Errorf("encode container disk: bad serial %q", serial)
	}
	return ContainerParam + "=" + serial, nil
}

// ParseCmdline reads the agent's configuration from a kernel command line
// (the contents of /proc/cmdline). Unknown words are the kernel's business
// and are ignored.
func ParseCmdline(cmdline string) (Config, error) {
	var c Config
	for _, word := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(word, NetParam+"="); ok {
			n, err := parseNet(v)
			if err != nil {
				return Config{}, err
			}
			c.Nets = append(c.Nets, n)
			continue
		}
		if v, ok := strings.CutPrefix(word, ContainerParam+"="); ok {
			if v == "" {
				return Config{}, fmt.Errorf("parse %s: empty disk serial", ContainerParam)
			}
			c.ContainerDisk = v
			continue
		}
		v, ok := strings.CutPrefix(word, CommandParam+"=")
		if !ok {
			continue
		}
		js, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return Config{}, fmt.Errorf("parse %s: %w", CommandParam, err)
		}
		var argv []string
		if err := json.Unmarshal(js, &argv); err != nil {
			return Config{}, fmt.Errorf("parse %s: %w", CommandParam, err)
		}
		if len(argv) == 0 || argv[0] == "" {
			return Config{}, fmt.Errorf("parse %s: empty command", CommandParam)
		}
		c.Command = argv
	}
	return c, nil
}
