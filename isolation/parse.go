package isolation

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"path/filepath"
	"strconv"
	"strings"
)

// parseCPUList counts the CPUs in a kernel CPU list such as "0-3,5\n".
func parseCPUList(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty CPU list")
	}
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("CPU list %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil {
				return 0, fmt.Errorf("CPU list %q: %w", s, err)
			}
		}
		if first < 0 || last < first {
			return 0, fmt.Errorf("CPU list %q: bad range %q", s, part)
		}
		n += last - first + 1
	}
	return n, nil
}

// mountEntry is one parsed line of /proc/self/mountinfo.
type mountEntry struct {
	Mount
	root         string // the path inside the file system that is mounted
	superOptions string
}

// parseMountinfo parses /proc/self/mountinfo. Lines it cannot parse are
// left out and reported in the error, so one odd line costs only itself.
func parseMountinfo(data []byte) ([]mountEntry, error) {
	var mounts []mountEntry
	var errs []error
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseMountinfoLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("mountinfo line %d: %w", i+1, err))
			continue
		}
		mounts = append(mounts, m)
	}
	return mounts, errors.Join(errs...)
}

// parseMountinfoLine parses one mountinfo line (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// The optional fields before "-" vary in number, hence the search for it.
func parseMountinfoLine(line string) (mountEntry, error) {
	fields := strings.Fields(line)
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(fields) < sep+3 {
		return mountEntry{}, fmt.Errorf("malformed: %q", line)
	}
	m := mountEntry{
		Mount: Mount{
			Point:  unescapeMountPath(fields[4]),
			FSType: fields[sep+1],
			Source: unescapeMountPath(fields[sep+2]),
		},
		root: unescapeMountPath(fields[3]),
	}
	if len(fields) > sep+3 {
		m.superOptions = fields[sep+3]
	}
	m.ReadOnly = hasOption(fields[5], "ro") || hasOption(m.superOptions, "ro")
	return m, nil
}

// hasOption reports whether a comma-separated option list holds opt.
func hasOption(options, opt string) bool {
	for _, o := range strings.Split(options, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// unescapeMountPath undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134) in mountinfo paths.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for _, c := range s {
		if c < '0' || c > '7' {
			return false
		}
	}
	return true
}

// rootFSType returns the file system type of "/": the last mount on it,
// since a later mount hides an earlier one.
func rootFSType(mounts []mountEntry) (string, bool) {
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Point == "/" {
			return mounts[i].FSType, true
		}
	}
	return "", false
}

// parseStatus splits a "Key:\tvalue" file (/proc/self/status,
// /proc/meminfo) into a map.
func parseStatus(data []byte) map[string]string {
	fields := make(map[string]string)
	for _, line := range bytes.Split(data, []byte("\n")) {
		key, value, ok := bytes.Cut(line, []byte(":"))
		if ok {
			fields[string(key)] = string(bytes.TrimSpace(value))
		}
	}
	return fields
}

// statusField returns a field of parseStatus's map, or an error naming it.
func statusField(fields map[string]string, key string) (string, error) {
	v, ok := fields[key]
	if !ok {
		return "", fmt.Errorf("no %s field", key)
	}
	return v, nil
}

// statusBytes reads a size field such as "VmHWM:  1752 kB" as bytes.
func statusBytes(fields map[string]string, key string) (uint64, error) {
	v, err := statusField(fields, key)
	if err != nil {
		return 0, err
	}
	num, unit, _ := strings.Cut(v, " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", key, v, err)
	}
	switch strings.TrimSpace(unit) {
	case "kB":
		return n * 1024, nil
	case "":
		return n, nil
	default:
		return 0, fmt.Errorf("%s %q: unknown unit", key, v)
	}
}

// statusInt reads a numeric field such as "Seccomp:  2".
func statusInt(fields map[string]string, key string) (int, error) {
	v, err := statusField(fields, key)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return n, nil
}

// statusCaps reads a capability mask such as "CapEff:  000001ffffffffff"
// and counts the capabilities set in it.
func statusCaps(fields map[string]string, key string) (string, int, error) {
	v, err := statusField(fields, key)
	if err != nil {
		return "", 0, err
	}
	mask, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", key, err)
	}
	return v, bits.OnesCount64(mask), nil
}

// procCgroups is /proc/self/cgroup: the cgroup v2 path (the "0::" line)
// and the v1 path of each v1 controller.
type procCgroups struct {
	v2    string
	hasV2 bool
	v1    map[string]string // controller ("memory", "name=systemd") to path
}

// parseProcCgroup parses /proc/self/cgroup: "ID:CONTROLLERS:PATH" lines,
// where v2's single hierarchy has ID 0 and no controllers.
func parseProcCgroup(data []byte) (procCgroups, error) {
	cg := procCgroups{v1: make(map[string]string)}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return procCgroups{}, fmt.Errorf("cgroup line %q: want ID:CONTROLLERS:PATH", line)
		}
		if parts[0] == "0" && parts[1] == "" {
			cg.v2, cg.hasV2 = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			cg.v1[c] = parts[2]
		}
	}
	return cg, nil
}

// parseMemoryMax validates a cgroup v2 memory.max: "max" or bytes.
func parseMemoryMax(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return s, nil
	}
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return "", fmt.Errorf("memory.max %q: want \"max\" or bytes", s)
	}
	return s, nil
}

// v1Unlimited is where cgroup v1's memory.limit_in_bytes starts meaning "no
// limit": the kernel prints its page counter's maximum, 0x7ffffffffffff000
// on 4 KiB pages, for an unlimited cgroup.
const v1Unlimited = 1 << 62

// parseV1Limit reads a cgroup v1 memory.limit_in_bytes in memory.max's
// terms, so places on v1 and v2 hosts compare.
func parseV1Limit(s string) (string, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return "", fmt.Errorf("memory.limit_in_bytes %q: %w", s, err)
	}
	if n >= v1Unlimited {
		return "max", nil
	}
	return s, nil
}

// cgroupDir maps a cgroup path from /proc/self/cgroup to its directory under
// the hierarchy's mount. Without a cgroup namespace a container's mount
// shows only its own subtree (mount root /a/b), while /proc/self/cgroup
// still names the full path (/a/b/c): the mount root must be cut off.
func cgroupDir(m mountEntry, path string) (string, error) {
	if m.root == "/" {
		return filepath.Join(m.Point, path), nil
	}
	rel, ok := strings.CutPrefix(path, m.root)
	if !ok || (rel != "" && rel[0] != '/') {
		return "", fmt.Errorf("cgroup %s is outside the hierarchy mounted at %s (root %s)", path, m.Point, m.root)
	}
	return filepath.Join(m.Point, rel), nil
}

// parseCmdline joins the NUL-separated arguments of /proc/PID/cmdline.
func parseCmdline(data []byte) string {
	data = bytes.TrimRight(data, "\x00")
	return string(bytes.ReplaceAll(data, []byte{0}, []byte(" ")))
}
