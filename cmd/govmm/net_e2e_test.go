package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/harness"
)

// asNetPeerEnv makes the test binary the host side of the network test: in
// a network namespace of its own it serves a download and an upload over
// TCP and runs govmm (its arguments) in the same namespace.
const asNetPeerEnv = "GOVMM_TEST_AS_NETPEER"

const (
	netTransferBytes = 8 << 20
	downloadPort     = 5000
	uploadPort       = 5001
)

// netPeerMain is the host side. It prints what it sent and received, then
// govmm's output, and exits with govmm's status.
func netPeerMain() {
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "netpeer: %v\n", err)
		os.Exit(1)
	}
	down, err := net.Listen("tcp4", fmt.Sprintf(":%d", downloadPort))
	if err != nil {
		fail(err)
	}
	up, err := net.Listen("tcp4", fmt.Sprintf(":%d", uploadPort))
	if err != nil {
		fail(err)
	}
	var wg sync.WaitGroup
	var report strings.Builder
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&report, format+"\n", args...)
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		conn, err := down.Accept()
		if err != nil {
			say("download accept: %v", err)
			return
		}
		defer conn.Close()
		// Deterministic bytes: the guest's sum must match this one.
		src := io.LimitReader(rand.NewChaCha8([32]byte{'g', 'o', 'v', 'm', 'm'}), netTransferBytes)
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(conn, h), src)
		say("host sent %d bytes sha256 %x err %v", n, h.Sum(nil), err)
	}()
	go func() {
		defer wg.Done()
		conn, err := up.Accept()
		if err != nil {
			say("upload accept: %v", err)
			return
		}
		defer conn.Close()
		h := sha256.New()
		n, err := io.Copy(h, conn)
		say("host received %d bytes sha256 %x err %v", n, h.Sum(nil), err)
	}()

	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), asGovmmEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	runErr := cmd.Run()
	// Once govmm is gone nobody will connect any more.
	down.Close()
	up.Close()
	wg.Wait()
	// --net auto's tap lives only as long as govmm.
	if _, err := net.InterfaceByName("govmm0"); err != nil {
		say("tap govmm0 gone after govmm exited")
	} else {
		say("tap govmm0 still there after govmm exited")
	}
	fmt.Print(report.String())
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) {
		os.Exit(exitErr.ExitCode())
	}
	if runErr != nil {
		fail(runErr)
	}
	os.Exit(0)
}

// TestNetTCPTransfer: several MiB each way over TCP between the host and
// the guest, over --net auto's tap, in a network namespace of the test's
// own; the checksums must match on both ends.
func TestNetTCPTransfer(t *testing.T) {
	t.Parallel()
	bootSlots <- struct{}{}
	defer func() { <-bootSlots }()
	guestScript := fmt.Sprintf(
		"dd if=/dev/urandom of=/tmp/up bs=1M count=%d 2>/dev/null && shasum -a 256 /tmp/up && "+
			"netcat $GOVMM_HOST_ADDR %d < /tmp/up > /dev/null && "+
			"netcat $GOVMM_HOST_ADDR %d < /dev/null > /tmp/down && shasum -a 256 /tmp/down && wc -c /tmp/down",
		netTransferBytes>>20, uploadPort, downloadPort)

	exe, err := os.Executable()
	require.NoError(t, err)
	transfer := func() (out []byte, timedOut bool, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*bootTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, exe, "run", "--mem", "512M", "--net", "auto", "--", "sh", "-c", guestScript)
		cmd.Env = append(os.Environ(), asNetPeerEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
		cmd.WaitDelay = 5 * time.Second
		out, err = cmd.CombinedOutput()
		return out, ctx.Err() != nil, err
	}
	out, timedOut, err := transfer()
	if harness.Inside() && (timedOut || strings.Contains(string(out), "triple fault) before its command reported")) {
		// The nested harness's known problem (README, "No /dev/kvm?"),
		// as in govmmEnv: said in the log, and tried once more.
		t.Logf("the guest hung or triple-faulted inside the nested harness; retrying once. Output:\n%s", lastLines(string(out), 20))
		out, _, err = transfer()
	}
	require.NoError(t, err, "output:\n%s", out)
	text := strings.ReplaceAll(string(out), "\r\n", "\n") // the guest's tty turns \n into \r\n

	sums := map[string]string{}
	for _, line := range regexp.MustCompile(`(?m)^([0-9a-f]{64})\s+/tmp/(up|down)$`).FindAllStringSubmatch(text, -1) {
		sums[line[2]] = line[1]
	}
	hostSent := regexp.MustCompile(`host sent (\d+) bytes sha256 ([0-9a-f]{64}) err <nil>`).FindStringSubmatch(text)
	hostGot := regexp.MustCompile(`host received (\d+) bytes sha256 ([0-9a-f]{64}) err <nil>`).FindStringSubmatch(text)
	require.NotNil(t, hostSent, "the host served the download:\n%s", text)
	require.NotNil(t, hostGot, "the host received the upload:\n%s", text)
	want := fmt.Sprint(netTransferBytes)
	assert.Equal(t, want, hostSent[1])
	assert.Equal(t, want, hostGot[1])
	assert.Equal(t, hostGot[2], sums["up"], "guest to host: the guest's file and what the host received")
	assert.Equal(t, hostSent[2], sums["down"], "host to guest: what the host sent and the guest's file")
	assert.Regexp(t, `(?m)^\s*`+want+`\s+/tmp/down$`, text)
	assert.Contains(t, text, "tap govmm0 gone after govmm exited")
	_, err = hex.DecodeString(sums["up"])
	assert.NoError(t, err)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		assert.NotContains(t, sc.Text(), "panic:")
	}
}

func TestNetErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		net      string
		wantCode int
		want     string
	}{
		{"unknown kind", "bridge=br0", exitUsage, "start with auto or tap=NAME"},
		{"bad MAC", "auto,mac=zz", exitUsage, `bad MAC "zz"`},
		{"multicast MAC", "auto,mac=01:00:5e:00:00:01", exitUsage, "multicast"},
		{"long tap name", "tap=averyveryverylongtapname", exitUsage, "longer than 15 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := govmm(t, "run", "--net", tc.net, "--", "true")
			assert.Equal(t, tc.wantCode, code, "stderr:\n%s", errOut)
			assert.Contains(t, errOut, tc.want)
		})
	}
}
