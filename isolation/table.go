package isolation

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// A Place is one column of the comparison: where the probe ran, and its
// report or why there is none.
type Place struct {
	Name   string  `json:"place"`
	Report *Report `json:"report,omitempty"`
	Error  string  `json:"error,omitempty"`
}

const (
	// cellMax keeps columns narrow enough for four places side by side.
	cellMax = 40
	// listMax is how many names a list cell shows after its count.
	listMax = 4
)

// row is one fact of the table. value renders it from a report; first is
// the first place's report (nil when it has none). A row with keys shows
// the first of those Report.Errors it finds instead of its value.
type row struct {
	label string
	keys  []string
	value func(r, first *Report) string
}

var rows = []row{
	{"kernel release", []string{ErrRelease}, func(r, _ *Report) string { return r.Kernel.Release }},
	{"kernel version", []string{ErrVersion}, func(r, _ *Report) string { return r.Kernel.Version }},
	{"boot id", []string{ErrBootID}, func(r, _ *Report) string { return shortID(r.Kernel.BootID) }},
	{"same kernel as first", []string{ErrBootID}, sameKernel},
	{"hostname", []string{ErrHostname}, func(r, _ *Report) string { return r.Hostname }},
	{"PID 1", []string{ErrPID1Cmdline}, func(r, _ *Report) string { return r.Processes.PID1Cmdline }},
	{"own pid", nil, func(r, _ *Report) string { return strconv.Itoa(r.Processes.PID) }},
	{"processes visible", []string{ErrVisibleCount}, func(r, _ *Report) string { return strconv.Itoa(r.Processes.VisibleCount) }},
	{"CPUs online", []string{ErrCPUsOnline}, func(r, _ *Report) string { return strconv.Itoa(r.Resources.CPUsOnline) }},
	{"CPUs in affinity", []string{ErrCPUsAffinity}, func(r, _ *Report) string { return strconv.Itoa(r.Resources.CPUsAffinity) }},
	{"memory total", []string{ErrMemTotal}, func(r, _ *Report) string { return mib(r.Resources.MemTotalBytes) }},
	{"cgroup memory.max", []string{ErrCgroupMemory}, cgroupMemory},
	{"cgroup", []string{ErrCgroupPath}, func(r, _ *Report) string { return r.Resources.CgroupPath }},
	{"root fs type", []string{ErrMounts}, func(r, _ *Report) string { return r.Mounts.RootFSType }},
	{"mounts", []string{ErrMounts}, mountList},
	{"devices", []string{ErrDevices}, func(r, _ *Report) string { return list(r.Devices.Names) }},
	{"interfaces", []string{ErrInterfaces}, func(r, _ *Report) string { return list(r.Interfaces) }},
	{"uid", nil, func(r, _ *Report) string { return strconv.Itoa(r.Identity.UID) }},
	{"capabilities", []string{ErrCapEff}, capabilities},
	{"no_new_privs", []string{ErrNoNewPrivs}, func(r, _ *Report) string { return yesNo(r.Identity.NoNewPrivs) }},
	{"seccomp", []string{ErrSeccomp}, func(r, _ *Report) string { return seccompMode(r.Identity.Seccomp) }},
	{"host pid visible", nil, func(r, _ *Report) string { return checkCell(r.Visibility.HostPID) }},
	{"host file visible", nil, func(r, _ *Report) string { return checkCell(r.Visibility.HostFile) }},
	{"host tcp reachable", nil, func(r, _ *Report) string { return checkCell(r.Visibility.HostTCP) }},
	{"load kernel module", nil, func(r, _ *Report) string { return checkCell(r.Privileged.LoadModule) }},
	{"kexec", nil, func(r, _ *Report) string { return checkCell(r.Privileged.Kexec) }},
	{"ptrace-read host pid", nil, ptraceRead},
	{"raw I/O ports", nil, func(r, _ *Report) string { return checkCell(r.Privileged.IOPorts) }},
	{"mknod block device", nil, func(r, _ *Report) string { return checkCell(r.Privileged.MknodBlock) }},
	{"mount tmpfs", nil, func(r, _ *Report) string { return checkCell(r.Privileged.Mount) }},
	{"probe peak RSS", []string{ErrPeakRSS}, func(r, _ *Report) string { return mib(r.PeakRSSBytes) }},
}

// WriteTable writes the places side by side: one row per fact, one column
// per place. A place without a report shows its error in its first row
// and "-" below it.
func WriteTable(w io.Writer, places []Place) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"fact"}
	for _, p := range places {
		header = append(header, cell(p.Name))
	}
	writeRow(tw, header)
	var first *Report
	if len(places) > 0 {
		first = places[0].Report
	}
	for i, rw := range rows {
		line := []string{rw.label}
		for _, p := range places {
			line = append(line, placeCell(rw, p, first, i == 0))
		}
		writeRow(tw, line)
	}
	tw.Flush()
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// placeCell renders one fact of one place.
func placeCell(rw row, p Place, first *Report, firstRow bool) string {
	if p.Report == nil {
		if firstRow && p.Error != "" {
			return cell("error: " + p.Error)
		}
		return "-"
	}
	for _, k := range rw.keys {
		if msg, ok := p.Report.Errors[k]; ok {
			return cell("error: " + msg)
		}
	}
	return cell(rw.value(p.Report, first))
}

// cell makes a value fit a column: one line, at most cellMax bytes.
func cell(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if s == "" {
		return `""`
	}
	return truncate(s, cellMax)
}

// sameKernel compares boot IDs: the only fact that tells two boots of the
// same kernel build apart.
func sameKernel(r, first *Report) string {
	switch {
	case first == nil || first.Kernel.BootID == "":
		return "-"
	case r == first:
		return "(reference)"
	default:
		return yesNo(r.Kernel.BootID == first.Kernel.BootID)
	}
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func cgroupMemory(r, _ *Report) string {
	limit := r.Resources.CgroupMemoryMax
	if n, err := strconv.ParseUint(limit, 10, 64); err == nil {
		limit = mib(n)
	}
	if strings.HasSuffix(r.Resources.CgroupMemoryFile, "memory.limit_in_bytes") {
		limit += " (v1)"
	}
	return limit
}

func mountList(r, _ *Report) string {
	points := make([]string, len(r.Mounts.List))
	for i, m := range r.Mounts.List {
		points[i] = m.Point
	}
	return list(points)
}

func capabilities(r, _ *Report) string {
	mask := strings.TrimLeft(r.Identity.CapEff, "0")
	if mask == "" {
		mask = "0"
	}
	return fmt.Sprintf("%d (%s)", r.Identity.CapEffCount, mask)
}

func ptraceRead(r, _ *Report) string {
	pid := r.Privileged.PtracePID
	target := "pid " + strconv.Itoa(pid)
	if pid == r.Processes.PID {
		target += " = self"
	}
	return checkCell(r.Privileged.PtraceRead) + " [" + target + "]"
}

// list summarises a list as its count and its first few names.
func list(names []string) string {
	s := strconv.Itoa(len(names))
	if len(names) == 0 {
		return s
	}
	shown := names[:min(len(names), listMax)]
	s += ": " + strings.Join(shown, " ")
	if len(names) > listMax {
		s += " ..."
	}
	return s
}

// checkCell renders a Check as "yes"/"no" and its errno's name, which
// says why ("no (EPERM)", "yes (EBADF)").
func checkCell(c Check) string {
	if strings.HasPrefix(c.Result, "skipped") {
		return "skipped"
	}
	verdict := yesNo(c.Allowed)
	if c.Result == "ok" || c.Result == "" {
		return verdict
	}
	return verdict + " (" + shortResult(c.Result) + ")"
}

// shortResult keeps only the errno's name of a Result such as
// "EPERM: operation not permitted".
func shortResult(result string) string {
	name, _, ok := strings.Cut(result, ": ")
	if ok && name != "" && strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == "" {
		return name
	}
	return result
}

func seccompMode(mode int) string {
	switch mode {
	case 0:
		return "0 (disabled)"
	case 1:
		return "1 (strict)"
	case 2:
		return "2 (filter)"
	default:
		return strconv.Itoa(mode)
	}
}

func mib(bytes uint64) string {
	return strconv.FormatUint(bytes>>20, 10) + " MiB"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
