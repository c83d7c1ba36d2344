package isolation

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "0", want: 1},
		{in: "0\n", want: 1},
		{in: "0-3", want: 4},
		{in: "0-3,5", want: 5},
		{in: "0-1,4-7,9\n", want: 7},
		{in: "", wantErr: true},
		{in: "\n", wantErr: true},
		{in: "a-b", wantErr: true},
		{in: "3-1", wantErr: true},
		{in: "0-", wantErr: true},
		{in: "0,,1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseCPUList(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseMountinfoLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want mountEntry
	}{
		{
			name: "proc(5) example with an optional field",
			line: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
			want: mountEntry{Mount: Mount{Point: "/mnt2", FSType: "ext3", Source: "/dev/root"}, root: "/mnt1", superOptions: "rw,errors=continue"},
		},
		{
			name: "no optional fields",
			line: "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard",
			want: mountEntry{Mount: Mount{Point: "/", FSType: "ext4", Source: "/dev/vda"}, root: "/", superOptions: "rw,discard"},
		},
		{
			name: "read-only mount",
			line: "28 27 0:25 / /mnt/x ro,nosuid,nodev,relatime - tmpfs none ro,size=4k",
			want: mountEntry{Mount: Mount{Point: "/mnt/x", FSType: "tmpfs", Source: "none", ReadOnly: true}, root: "/", superOptions: "ro,size=4k"},
		},
		{
			name: "read-only superblock under a rw mount",
			line: "40 27 7:0 / /snap rw,relatime shared:5 master:2 - squashfs /dev/loop0 ro",
			want: mountEntry{Mount: Mount{Point: "/snap", FSType: "squashfs", Source: "/dev/loop0", ReadOnly: true}, root: "/", superOptions: "ro"},
		},
		{
			name: "escaped space in the mount point",
			line: `50 27 0:40 / /mnt/my\040disk rw - vfat /dev/sdb1 rw`,
			want: mountEntry{Mount: Mount{Point: "/mnt/my disk", FSType: "vfat", Source: "/dev/sdb1"}, root: "/", superOptions: "rw"},
		},
		{
			name: "cgroup2 mounted from a subtree",
			line: "41 31 0:38 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw,nsdelegate",
			want: mountEntry{Mount: Mount{Point: "/sys/fs/cgroup", FSType: "cgroup2", Source: "cgroup2", ReadOnly: true}, root: "/docker/abc", superOptions: "rw,nsdelegate"},
		},
		{
			name: "no super options",
			line: "22 27 0:21 / /proc rw - proc proc",
			want: mountEntry{Mount: Mount{Point: "/proc", FSType: "proc", Source: "proc"}, root: "/"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfoLine(tt.line)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseMountinfoLineMalformed(t *testing.T) {
	for _, line := range []string{
		"garbage",
		"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw", // no separator
		"36 35 98:0 /mnt1 /mnt2 rw - ext3",                             // no source
		"36 35 98:0 - /mnt2 rw ext3 /dev/root rw",                      // separator too early
	} {
		_, err := parseMountinfoLine(line)
		assert.Error(t, err, line)
	}
}

func TestParseMountinfoKeepsGoodLines(t *testing.T) {
	data := []byte("22 27 0:21 / /proc rw - proc proc rw\n" +
		"broken line\n" +
		"27 1 254:0 / / rw - ext4 /dev/vda rw\n" +
		"\n")
	mounts, err := parseMountinfo(data)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2")
	require.Len(t, mounts, 2)
	assert.Equal(t, "/proc", mounts[0].Point)
	assert.Equal(t, "/", mounts[1].Point)
}

func TestUnescapeMountPath(t *testing.T) {
	tests := map[string]string{
		"/plain":             "/plain",
		`/a\040b`:            "/a b",
		`/tab\011nl\012`:     "/tab\tnl\n",
		`/back\134slash`:     `/back\slash`,
		`/not\08octal`:       `/not\08octal`,
		`/short\04`:          `/short\04`,
		`/too\777big`:        `/too\777big`,
		`/two\040spaces\040`: "/two spaces ",
	}
	for in, want := range tests {
		assert.Equal(t, want, unescapeMountPath(in), in)
	}
}

func TestRootFSType(t *testing.T) {
	mounts := []mountEntry{
		{Mount: Mount{Point: "/", FSType: "rootfs"}},
		{Mount: Mount{Point: "/proc", FSType: "proc"}},
		{Mount: Mount{Point: "/", FSType: "overlay"}}, // mounted over the first
	}
	fs, ok := rootFSType(mounts)
	require.True(t, ok)
	assert.Equal(t, "overlay", fs)

	_, ok = rootFSType(mounts[1:2])
	assert.False(t, ok)
}

const statusSample = `Name:	probe
Umask:	0022
Pid:	4242
VmHWM:	    1752 kB
CapEff:	000001fffeffffff
NoNewPrivs:	1
Seccomp:	2
Seccomp_filters:	1
Odd:	12 MB
`

func TestStatusFields(t *testing.T) {
	status := parseStatus([]byte(statusSample))

	hwm, err := statusBytes(status, "VmHWM")
	require.NoError(t, err)
	assert.Equal(t, uint64(1752*1024), hwm)

	caps, count, err := statusCaps(status, "CapEff")
	require.NoError(t, err)
	assert.Equal(t, "000001fffeffffff", caps)
	assert.Equal(t, 40, count)

	nnp, err := statusInt(status, "NoNewPrivs")
	require.NoError(t, err)
	assert.Equal(t, 1, nnp)

	seccomp, err := statusInt(status, "Seccomp")
	require.NoError(t, err)
	assert.Equal(t, 2, seccomp)

	pid, err := statusBytes(status, "Pid") // a number without a unit
	require.NoError(t, err)
	assert.Equal(t, uint64(4242), pid)
}

func TestStatusFieldErrors(t *testing.T) {
	status := parseStatus([]byte(statusSample))
	tests := []struct {
		name string
		get  func() error
		want string
	}{
		{"missing field", func() error { _, err := statusInt(status, "Missing"); return err }, "no Missing field"},
		{"not a number", func() error { _, err := statusInt(status, "Name"); return err }, "Name"},
		{"unknown unit", func() error { _, err := statusBytes(status, "Odd"); return err }, "unknown unit"},
		{"not hex", func() error { _, _, err := statusCaps(status, "Name"); return err }, "Name"},
		{"missing caps", func() error { _, _, err := statusCaps(status, "CapBnd"); return err }, "no CapBnd field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.get()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestMeminfoTotal(t *testing.T) {
	meminfo := "MemTotal:       24684096 kB\nMemFree:        23815788 kB\n"
	total, err := statusBytes(parseStatus([]byte(meminfo)), "MemTotal")
	require.NoError(t, err)
	assert.Equal(t, uint64(24684096*1024), total)
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		v2     string
		hasV2  bool
		memory string
	}{
		{name: "v2 only", in: "0::/user.slice/session-1.scope\n", v2: "/user.slice/session-1.scope", hasV2: true},
		{name: "v2 in a cgroup namespace", in: "0::/\n", v2: "/", hasV2: true},
		{
			name: "hybrid",
			in:   "9:name=systemd:/\n4:memory:/process_api/d597\n1:cpu,cpuacct:/\n0::/\n",
			v2:   "/", hasV2: true, memory: "/process_api/d597",
		},
		{name: "v1 only", in: "5:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n", memory: "/docker/abc"},
		{name: "path with colons", in: "0::/a:b\n", v2: "/a:b", hasV2: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cg, err := parseProcCgroup([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.v2, cg.v2)
			assert.Equal(t, tt.hasV2, cg.hasV2)
			assert.Equal(t, tt.memory, cg.v1["memory"])
		})
	}
	_, err := parseProcCgroup([]byte("nonsense\n"))
	assert.Error(t, err)
}

func TestParseMemoryLimits(t *testing.T) {
	tests := []struct {
		name    string
		parse   func(string) (string, error)
		in      string
		want    string
		wantErr bool
	}{
		{name: "v2 max", parse: parseMemoryMax, in: "max\n", want: "max"},
		{name: "v2 bytes", parse: parseMemoryMax, in: "536870912\n", want: "536870912"},
		{name: "v2 garbage", parse: parseMemoryMax, in: "lots\n", wantErr: true},
		{name: "v2 empty", parse: parseMemoryMax, in: "", wantErr: true},
		{name: "v1 unlimited", parse: parseV1Limit, in: "9223372036854771712\n", want: "max"},
		{name: "v1 bytes", parse: parseV1Limit, in: "536870912\n", want: "536870912"},
		{name: "v1 garbage", parse: parseV1Limit, in: "max\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCgroupDir(t *testing.T) {
	at := func(point, root string) mountEntry {
		return mountEntry{Mount: Mount{Point: point, FSType: "cgroup2"}, root: root}
	}
	tests := []struct {
		name    string
		mount   mountEntry
		path    string
		want    string
		wantErr bool
	}{
		{name: "root cgroup", mount: at("/sys/fs/cgroup", "/"), path: "/", want: "/sys/fs/cgroup"},
		{name: "nested", mount: at("/sys/fs/cgroup", "/"), path: "/user.slice/a.scope", want: "/sys/fs/cgroup/user.slice/a.scope"},
		{name: "hybrid unified", mount: at("/sys/fs/cgroup/unified", "/"), path: "/x", want: "/sys/fs/cgroup/unified/x"},
		{name: "subtree mount, own cgroup", mount: at("/sys/fs/cgroup", "/docker/abc"), path: "/docker/abc", want: "/sys/fs/cgroup"},
		{name: "subtree mount, child", mount: at("/sys/fs/cgroup", "/docker/abc"), path: "/docker/abc/sub", want: "/sys/fs/cgroup/sub"},
		{name: "outside the subtree", mount: at("/sys/fs/cgroup", "/docker/abc"), path: "/other", wantErr: true},
		{name: "prefix is not a parent", mount: at("/sys/fs/cgroup", "/docker/abc"), path: "/docker/abcdef", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cgroupDir(tt.mount, tt.path)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseCmdline(t *testing.T) {
	assert.Equal(t, "/sbin/init splash", parseCmdline([]byte("/sbin/init\x00splash\x00")))
	assert.Equal(t, "init", parseCmdline([]byte("init")))
	assert.Equal(t, "", parseCmdline(nil))
}

func TestTruncate(t *testing.T) {
	assert.Equal(t, "short", truncate("short", 10))
	assert.Equal(t, "exactly10!", truncate("exactly10!", 10))
	assert.Equal(t, "abcdefg...", truncate("abcdefghijklmnop", 10))
	assert.Len(t, truncate(string(make([]byte, 500)), CmdlineMax), CmdlineMax)
}
