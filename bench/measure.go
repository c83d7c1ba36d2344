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
						rss, guest, err := residentMemory(cmd.Process.Pid, r.GuestMemBytes)
						mu.Lock()
						s.ToInit, s.RSS, s.GuestRSS, smapsErr = t, rss, guest, err
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

// residentMemory reads a process's resident memory, and the resident part
// of its guest RAM mapping: the largest mapping at least guestBytes long
// (/proc/PID/smaps, Documentation/filesystems/proc.rst).
func residentMemory(pid int, guestBytes uint64) (rss, guest uint64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return parseSmaps(f, guestBytes)
}

func parseSmaps(r io.Reader, guestBytes uint64) (rss, guest uint64, err error) {
	// No guest RAM (a container runtime): nothing to set apart.
	if guestBytes == 0 {
		guestBytes = math.MaxUint64
	}
	sc := bufio.NewScanner(r)
	var size, bestSize uint64
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
		switch key {
		case "Size":
			size = kb << 10
		case "Rss":
			rss += kb << 10
			if size >= guestBytes && size > bestSize {
				bestSize, guest = size, kb<<10
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return rss, guest, nil
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
