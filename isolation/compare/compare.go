// Package compare runs the isolation probe in the four places govmm
// compares (directly on the host, in a runc container on the host, in a runc
// container inside a govmm VM, directly inside a govmm VM) and collects
// their reports. The same probe binary and the same root file system serve
// every place: the host's runc takes the directory, the VM a read-only ext4
// image of it.
package compare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/govmm/govmm/container"
	"github.com/govmm/govmm/isolation"
)

// Names of the places, in the order Run reports them.
const (
	PlaceHost          = "host"
	PlaceHostContainer = "runc container on host"
	PlaceVMContainer   = "runc container in govmm VM"
	PlaceVM            = "govmm VM"
)

// Config says what to run and where to find it.
type Config struct {
	Govmm string // the govmm binary
	// Runc is the host's runc; "" marks the host container's place as
	// skipped (with how to install it).
	Runc string
	// RootfsDir is the container root (with the probe as /probe), and
	// RootfsImage the same tree as an ext4 image for the VM.
	RootfsDir, RootfsImage string
	// Initramfs is the guest initramfs with runc in it, for the VM
	// container; the VM's own place uses govmm's default.
	Initramfs string
	MemMiB    int
	Progress  io.Writer
}

// Run runs the probe in each place and returns the places in order. A
// place that fails carries its error; Run itself fails only when it cannot
// set up the host's side.
func Run(ctx context.Context, cfg Config) ([]isolation.Place, error) {
	probe := filepath.Join(cfg.RootfsDir, "probe")
	if _, err := os.Stat(probe); err != nil {
		return nil, fmt.Errorf("isolation probe: %w (run 'govmm images')", err)
	}
	// What only the host has: a file, a TCP listener on its loopback, and
	// this process.
	scratch, err := os.MkdirTemp("", "govmm-isolation-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	hostFile := filepath.Join(scratch, "only-on-the-host")
	if err := os.WriteFile(hostFile, []byte("the host's file\n"), 0o600); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("isolation: host listener: %w", err)
	}
	defer ln.Close()
	go acceptAndClose(ln)
	probeArgs := []string{"--host-pid", strconv.Itoa(os.Getpid()), "--host-file", hostFile, "--host-addr", ln.Addr().String()}

	mem := fmt.Sprintf("%dM", cfg.MemMiB)
	steps := []struct {
		name string
		run  func() ([]byte, error)
	}{
		{PlaceHost, func() ([]byte, error) {
			return output(exec.CommandContext(ctx, probe, probeArgs...))
		}},
		{PlaceHostContainer, func() ([]byte, error) {
			return runHostContainer(ctx, cfg, scratch, probeArgs)
		}},
		{PlaceVMContainer, func() ([]byte, error) {
			args := []string{"run", "--mem", mem, "--container", cfg.RootfsImage}
			if cfg.Initramfs != "" {
				args = append(args, "--initrd", cfg.Initramfs)
			}
			args = append(append(args, "--", "/probe"), probeArgs...)
			return output(exec.CommandContext(ctx, cfg.Govmm, args...))
		}},
		{PlaceVM, func() ([]byte, error) {
			// The probe is also a command of govmm's initramfs.
			args := append([]string{"run", "--mem", mem, "--", "probe"}, probeArgs...)
			return output(exec.CommandContext(ctx, cfg.Govmm, args...))
		}},
	}
	var places []isolation.Place
	for i, s := range steps {
		fmt.Fprintf(cfg.Progress, "isolation: [%d/%d] probing %s\n", i+1, len(steps), s.name)
		place := isolation.Place{Name: s.name}
		out, err := s.run()
		if err == nil {
			var r isolation.Report
			if r, err = isolation.ParseReport(out); err == nil {
				place.Report = &r
			}
		}
		if err != nil {
			place.Error = err.Error()
			fmt.Fprintf(cfg.Progress, "isolation: %s: %v\n", s.name, err)
		}
		places = append(places, place)
	}
	return places, nil
}

// errSkipped marks a place that could not be tried here.
var errSkipped = errors.New("skipped")

// runHostContainer runs the probe in a runc container on the host, from the
// same root directory the VM's image was made of.
func runHostContainer(ctx context.Context, cfg Config, scratch string, probeArgs []string) ([]byte, error) {
	if cfg.Runc == "" {
		return nil, fmt.Errorf("%w: %w", errSkipped, container.ErrNoRunc)
	}
	bundle := filepath.Join(scratch, "bundle")
	id := fmt.Sprintf("govmm-isolation-%d", os.Getpid())
	c := container.Config{RootFS: cfg.RootfsDir, Args: append([]string{"/probe"}, probeArgs...)}
	if err := container.WriteBundle(bundle, c, id); err != nil {
		return nil, err
	}
	rt := container.Runtime{Runc: cfg.Runc, StateDir: filepath.Join(scratch, "runc")}
	out, err := output(rt.Command(ctx, bundle, id))
	if container.PivotRootFailed(err) {
		rt.NoPivot = true
		out, err = output(rt.Command(ctx, bundle, id))
	}
	return out, err
}

// output runs cmd and returns its stdout; a failure includes the end of
// stderr, where runc and govmm say why.
func output(cmd *exec.Cmd) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, lastLines(stderr.String(), 3))
	}
	return stdout.Bytes(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
