package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sample is one boot.
type Sample struct {
	ToInit time.Duration // launch to the init marker on the console
	ToExit time.Duration // launch to the VMM's exit
	// RSS is the VMM's resident memory when the marker appeared, and
	// GuestRSS the part of it that is guest RAM; RSS-GuestRSS is what the
	// VMM itself costs.
	RSS, GuestRSS uint64
	// OwnDirty is the VMM's private dirty memory outside guest RAM: its
	// heap, stacks and written data, which no other process shares and the
	// kernel cannot drop. The rest of its overhead is its executable's
	// pages, shared through the page cache with every other instance, of
	// which RSS counts however many the kernel mapped (fault-around maps
	// up to 64 KiB of cached pages around each touched one).
	OwnDirty uint64
	// Output is everything the command wrote on stdout (the guest console).
	Output []byte
}

// Overhead is the VMM's own resident memory, guest RAM excluded.
func (s Sample) Overhead() uint64 {
	if s.GuestRSS > s.RSS {
		return 0
	}
	return s.RSS - s.GuestRSS
}

// Run is one way to boot a VM: a command line whose output carries the
// guest console.
type Run struct {
	Args          []string
	GuestMemBytes uint64   // size of the guest RAM mapping, to find it in smaps
	Marker        []byte   // console text that means the guest reached init
	OKCodes       []int    // exit codes that mean success
	Env           []string // nil: this process's environment
}

// Measure boots once and times it.
func Measure(ctx context.Context, r Run) (Sample, error) {
	cmd := exec.CommandContext(ctx, r.Args[0], r.Args[1:]...)
	cmd.Env = r.Env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Sample{}, err
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	cmd.Stdin = nil
	var s Sample
	var console bytes.Buffer
	var mu sync.Mutex // guards s.RSS, s.GuestRSS, s.ToInit, smapsErr
	var smapsErr error
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Sample{}, fmt.Errorf("start %s: %w", r.Args[0], err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		window := make([]byte, 0, 4096)
		buf := make([]byte, 4096)
		seen := false
		for {
			n, err := stdout.Read(buf)
			if n > 0 {
				console.Write(buf[:n])
				if !seen {
					window = append(window, buf[:n]...)
					if bytes.Contains(window, r.Marker) {
						seen = true
						t := time.Since(start)
						use, err := residentMemory(cmd.Process.Pid, r.GuestMemBytes)
						mu.Lock()
						s.ToInit, s.RSS, s.GuestRSS, s.OwnDirty, smapsErr = t, use.rss, use.guest, use.ownDirty, err
						mu.Unlock()
					}
					if len(window) > 2*len(r.Marker) {
						window = append(window[:0], window[len(window)-len(r.Marker):]...)
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	<-done
	waitErr := cmd.Wait()
	s.ToExit = time.Since(start)
	code := 0
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		code = exitErr.ExitCode()
	} else if waitErr != nil {
		return Sample{}, fmt.Errorf("%s: %w", r.Args[0], waitErr)
	}
	ok := false
	for _, c := range r.OKCodes {
		ok = ok || c == code
	}
	mu.Lock()
	defer mu.Unlock()
	if !ok {
		return Sample{}, fmt.Errorf("%s exited with %d\n%s\n%s", r.Args[0], code, tailString(errOut.String(), 10), tailString(console.String(), 20))
	}
	if s.ToInit == 0 {
		return Sample{}, fmt.Errorf("%s: the guest never printed %q\n%s", r.Args[0], r.Marker, tailString(console.String(), 20))
	}
	if smapsErr != nil {
		return Sample{}, fmt.Errorf("%s: read memory use: %w", r.Args[0], smapsErr)
	}
	s.Output = console.Bytes()
	return s, nil
}

// memoryUse is what a process's smaps say of its memory.
type memoryUse struct {
	rss      uint64 // resident, all mappings
	guest    uint64 // resident in the guest RAM mapping
	ownDirty uint64 // private dirty outside the guest RAM mapping
}

// residentMemory reads a process's memory use; guest RAM is its largest
// mapping at least guestBytes long (/proc/PID/smaps,
// Documentation/filesystems/proc.rst).
func residentMemory(pid int, guestBytes uint64) (memoryUse, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return memoryUse{}, err
	}
	defer f.Close()
	return parseSmaps(f, guestBytes)
}

func parseSmaps(r io.Reader, guestBytes uint64) (memoryUse, error) {
	// No guest RAM (a container runtime): nothing to set apart.
	if guestBytes == 0 {
		guestBytes = math.MaxUint64
	}
	type mapping struct{ size, rss, privateDirty uint64 }
	var maps []mapping
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.Contains(key, " ") {
			continue // a mapping header line ("addr-addr perms ..."), or junk
		}
		fields := strings.Fields(value)
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		// Size is each mapping's first field.
		if key == "Size" {
			maps = append(maps, mapping{size: kb << 10})
			continue
		}
		if len(maps) == 0 {
			continue
		}
		m := &maps[len(maps)-1]
		switch key {
		case "Rss":
			m.rss = kb << 10
		case "Private_Dirty":
			m.privateDirty = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return memoryUse{}, err
	}
	guest := -1
	for i, m := range maps {
		if m.size >= guestBytes && (guest < 0 || m.size > maps[guest].size) {
			guest = i
		}
	}
	var use memoryUse
	for i, m := range maps {
		use.rss += m.rss
		if i == guest {
			use.guest = m.rss
		} else {
			use.ownDirty += m.privateDirty
		}
	}
	return use, nil
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
