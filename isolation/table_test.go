package isolation

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tableReports are four places as the comparison sees them: the host, a
// container sharing its kernel, a guest on another kernel, and a guest
// that did not report.
func tablePlaces() []Place {
	host := sampleReport("11111111-aaaa-bbbb-cccc-000000000001")
	host.Devices = Devices{Count: 6, Names: []string{"console", "kvm", "null", "pts", "vda", "zero"}}
	host.Interfaces = []string{"eth0", "lo"}
	host.Identity = Identity{CapEff: "000001ffffffffff", CapEffCount: 41}
	host.Resources = Resources{CPUsOnline: 4, CPUsAffinity: 4, MemTotalBytes: 8 << 30, CgroupPath: "/user.slice", CgroupMemoryMax: "max"}
	host.Privileged.LoadModule = Check{Allowed: true, Result: "EBADF: bad file descriptor"}
	host.Privileged.PtracePID = 42 // the probe itself
	host.Privileged.PtraceRead = Check{Allowed: true, Result: "EFAULT: bad address"}
	host.Visibility.HostTCP = Check{Result: "skipped"}

	container := sampleReport(host.Kernel.BootID)
	container.Devices = Devices{Count: 4, Names: []string{"console", "null", "pts", "zero"}}
	container.Resources = Resources{CgroupMemoryMax: "536870912", CgroupMemoryFile: "/sys/fs/cgroup/memory.max"}
	container.Identity = Identity{CapEff: "00000000a80425fb", CapEffCount: 14, NoNewPrivs: true, Seccomp: 2}
	container.Privileged.PtracePID = 7
	container.Privileged.PtraceRead = Check{Result: "ESRCH: no such process"}
	container.Visibility.HostPID = Check{Result: "ESRCH: no such process"}

	guest := sampleReport("22222222-aaaa-bbbb-cccc-000000000002")
	guest.Errors = map[string]string{ErrPID1Cmdline: "open /proc/1/cmdline: permission denied"}

	return []Place{
		{Name: "host", Report: &host},
		{Name: "runc on host", Report: &container},
		{Name: "govmm guest", Report: &guest},
		{Name: "runc in guest", Error: "guest did not boot: timeout after 30s"},
	}
}

// tableRow returns the line of the table whose label is label.
func tableRow(t *testing.T, table, label string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, label+"  ") {
			return line
		}
	}
	require.Failf(t, "no such row", "%q in:\n%s", label, table)
	return ""
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	WriteTable(&buf, tablePlaces())
	table := buf.String()
	t.Logf("\n%s", table)

	rowCells := func(label string) []string {
		return strings.Fields(strings.TrimPrefix(tableRow(t, table, label), label))
	}
	tests := []struct {
		label string
		want  []string // whitespace-separated words after the label
	}{
		{"same kernel as first", []string{"(reference)", "yes", "no", "-"}},
		{"boot id", []string{"11111111", "11111111", "22222222", "-"}},
		{"own pid", []string{"42", "42", "42", "-"}},
		{"capabilities", []string{"41", "(1ffffffffff)", "14", "(a80425fb)", "0", "(0)", "-"}},
		{"no_new_privs", []string{"no", "yes", "no", "-"}},
		{"cgroup memory.max", []string{"max", "512", "MiB", "\"\"", "-"}},
		{"host pid visible", []string{"no", "no", "(ESRCH)", "no", "-"}},
		{"host tcp reachable", []string{"skipped", "no", "no", "-"}},
		{"load kernel module", []string{"yes", "(EBADF)", "no", "(EPERM)", "no", "(EPERM)", "-"}},
		{"ptrace-read host pid", []string{"yes", "(EFAULT)", "[pid", "42", "=", "self]", "no", "(ESRCH)", "[pid", "7]", "no", "[pid", "0]", "-"}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, rowCells(tt.label), tt.label)
	}

	// Lists: a count and the first few names.
	devices := tableRow(t, table, "devices")
	assert.Contains(t, devices, "6: console kvm null pts ...")
	assert.Contains(t, devices, "4: console null pts zero ")

	// A fact that could not be read shows its error in its cell.
	assert.Contains(t, tableRow(t, table, "PID 1"), "error: open /proc/1/cmdline")

	// A place without a report shows its error once, then "-".
	first := tableRow(t, table, "kernel release")
	assert.Contains(t, first, "error: guest did not boot")
	assert.True(t, strings.HasSuffix(strings.TrimSpace(tableRow(t, table, "hostname")), "  -"))
}

func TestWriteTableAlignsColumns(t *testing.T) {
	var buf bytes.Buffer
	WriteTable(&buf, tablePlaces())
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	require.Equal(t, len(rows)+1, len(lines), "a header and one line per fact")

	header := lines[0]
	col := strings.Index(header, "runc on host")
	require.Positive(t, col)
	for _, line := range lines[1:] {
		require.Greater(t, len(line), col, line)
		assert.Equal(t, byte(' '), line[col-1], "column 2 starts at %d in %q", col, line)
		assert.NotEqual(t, byte(' '), line[col], "column 2 starts at %d in %q", col, line)
	}
}

func TestWriteTableFirstPlaceWithoutReport(t *testing.T) {
	places := tablePlaces()
	places[0] = Place{Name: "host", Error: "probe failed"}
	var buf bytes.Buffer
	WriteTable(&buf, places)
	row := tableRow(t, buf.String(), "same kernel as first")
	assert.Equal(t, []string{"-", "-", "-", "-"}, strings.Fields(strings.TrimPrefix(row, "same kernel as first")))
}

func TestWriteTableShortensLongCells(t *testing.T) {
	r := sampleReport("id")
	r.Kernel.Version = strings.Repeat("x", 300)
	r.Processes.PID1Cmdline = "init\twith\ttabs\nand a newline"
	var buf bytes.Buffer
	WriteTable(&buf, []Place{{Name: "p", Report: &r}})
	table := buf.String()
	version := tableRow(t, table, "kernel version")
	assert.Contains(t, version, strings.Repeat("x", cellMax-3)+"...")
	assert.NotContains(t, version, strings.Repeat("x", cellMax))
	assert.Contains(t, tableRow(t, table, "PID 1"), "init with tabs and a newline")
}

func TestCheckCell(t *testing.T) {
	tests := []struct {
		check Check
		want  string
	}{
		{Check{Allowed: true, Result: "ok"}, "yes"},
		{Check{Allowed: true, Result: "EBADF: bad file descriptor"}, "yes (EBADF)"},
		{Check{Result: "EPERM: operation not permitted"}, "no (EPERM)"},
		{Check{Result: "skipped"}, "skipped"},
		{Check{Result: "skipped: no writable directory (EROFS: read-only file system)"}, "skipped"},
		{Check{Result: "timeout: dial tcp 10.0.0.1:80: i/o timeout"}, "no (timeout: dial tcp 10.0.0.1:80: i/o timeout)"},
		{Check{Allowed: true, Result: "ok, but removing it failed: EBUSY: device or resource busy"}, "yes (ok, but removing it failed: EBUSY: device or resource busy)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, checkCell(tt.check), tt.check.Result)
	}
}

func TestList(t *testing.T) {
	assert.Equal(t, "0", list(nil))
	assert.Equal(t, "2: lo eth0", list([]string{"lo", "eth0"}))
	assert.Equal(t, "5: a b c d ...", list([]string{"a", "b", "c", "d", "e"}))
}
