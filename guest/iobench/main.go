// Command iobench measures a guest's disk and network from inside: govmm's
// benchmarks run it in the guest, under govmm and under QEMU alike, so both
// VMMs are measured by the same code. It prints one result line per run:
//
//	iobench result name=NAME bytes=N ops=N seconds=S
//
// Disk runs use O_DIRECT, so the guest's page cache does not hide the
// device.
//
//	iobench seqwrite DEVICE MIB     write MIB MiB in 1 MiB blocks, then fdatasync
//	iobench seqread DEVICE MIB      read MIB MiB in 1 MiB blocks
//	iobench randread DEVICE MIB SECONDS [DEPTH]
//	                                4 KiB reads at random offsets in the first
//	                                MIB MiB, DEPTH in flight (default 4), for
//	                                SECONDS
//	iobench tcpsend ADDR MIB        send MIB MiB to ADDR (host:port)
//	iobench tcprecv ADDR            receive from ADDR until it closes
package main

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const block = 1 << 20

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "iobench: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: iobench seqwrite|seqread|randread|tcpsend|tcprecv ARGS (see the source)")
	}
	num := func(i int) (int, error) {
		if i >= len(args) {
			return 0, fmt.Errorf("%s: missing argument %d", args[0], i)
		}
		return strconv.Atoi(args[i])
	}
	switch args[0] {
	case "seqwrite", "seqread":
		mib, err := num(2)
		if err != nil {
			return err
		}
		return sequential(args[0], args[1], mib)
	case "randread":
		mib, err := num(2)
		if err != nil {
			return err
		}
		secs, err := num(3)
		if err != nil {
			return err
		}
		depth := 4
		if len(args) > 4 {
			if depth, err = num(4); err != nil {
				return err
			}
			if depth < 1 {
				return fmt.Errorf("randread: depth %d: need at least 1", depth)
			}
		}
		return randomRead(args[1], mib, time.Duration(secs)*time.Second, depth)
	case "tcpsend":
		mib, err := num(2)
		if err != nil {
			return err
		}
		return tcpSend(args[1], mib)
	case "tcprecv":
		return tcpRecv(args[1])
	}
	return fmt.Errorf("unknown run %q", args[0])
}

func report(name string, bytes, ops int64, d time.Duration) {
	fmt.Printf("iobench result name=%s bytes=%d ops=%d seconds=%.6f\n", name, bytes, ops, d.Seconds())
}

// alignedBuffer returns n bytes aligned for O_DIRECT (mmap: page aligned).
func alignedBuffer(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("buffer: %w", err)
	}
	return b, nil
}

func sequential(name, dev string, mib int) error {
	flags := unix.O_RDONLY
	if name == "seqwrite" {
		flags = unix.O_WRONLY
	}
	fd, err := unix.Open(dev, flags|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dev, err)
	}
	defer unix.Close(fd)
	buf, err := alignedBuffer(block)
	if err != nil {
		return err
	}
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	start := time.Now()
	for i := range mib {
		var n int
		if name == "seqwrite" {
			n, err = unix.Pwrite(fd, buf, int64(i)*block)
		} else {
			n, err = unix.Pread(fd, buf, int64(i)*block)
		}
		if err != nil || n != block {
			return fmt.Errorf("%s at %d MiB: %d bytes, %v", name, i, n, err)
		}
	}
	if name == "seqwrite" {
		if err := unix.Fdatasync(fd); err != nil {
			return fmt.Errorf("fdatasync: %w", err)
		}
	}
	report(name, int64(mib)*block, int64(mib), time.Since(start))
	return nil
}

func randomRead(dev string, mib int, d time.Duration, depth int) error {
	const size = 4096
	blocks := int64(mib) * block / size
	if blocks == 0 {
		return errors.New("randread: range too small")
	}
	var ops atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, depth)
	start := time.Now()
	deadline := start.Add(d)
	for w := range depth {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
			if err != nil {
				errs <- fmt.Errorf("open %s: %w", dev, err)
				return
			}
			defer unix.Close(fd)
			buf, err := alignedBuffer(size)
			if err != nil {
				errs <- err
				return
			}
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for time.Now().Before(deadline) {
				for range 64 {
					if _, err := unix.Pread(fd, buf, rng.Int64N(blocks)*size); err != nil {
						errs <- fmt.Errorf("randread: %w", err)
						return
					}
				}
				ops.Add(64)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return err
	default:
	}
	report("randread", ops.Load()*size, ops.Load(), elapsed)
	return nil
}

// dial retries while the host end of the link comes up.
func dial(addr string) (net.Conn, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tcpSend(addr string, mib int) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, block)
	start := time.Now()
	for range mib {
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("tcpsend: %w", err)
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	// The host closes once it has everything: that is the end.
	if _, err := discard(c, buf); err != nil {
		return err
	}
	report("tcpsend", int64(mib)*block, int64(mib), time.Since(start))
	return nil
}

// discard reads r to its end into buf, over and over, and returns how much
// it read. Not io.Copy to io.Discard: that reads 8 KiB at a time, and a
// receiver making a system call per 8 KiB spends on itself the guest CPU
// time the benchmark means to measure the network path with (iperf3 reads
// 128 KiB at a time).
func discard(r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func tcpRecv(addr string) error {
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, block)
	start := time.Now()
	n, err := discard(c, buf)
	if err != nil {
		return fmt.Errorf("tcprecv: %w", err)
	}
	report("tcprecv", n, n/block, time.Since(start))
	return nil
}
