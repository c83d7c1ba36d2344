package isolation

import (
	"io"
	"testing"
)

// FuzzParseReport: a report arrives from a guest's console, which a hostile
// guest writes; neither parsing it nor drawing the table from it may panic.
// The procfs parsers read files a container or guest controls just as
// little.
func FuzzParseReport(f *testing.F) {
	line, err := FormatReport(Collect(Options{}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(line)
	f.Add([]byte("noise\r\n" + ReportPrefix + `{"kernel":{"boot_id":"x"},"devices":{"names":null},"mounts":{"list":[{}]}}` + "\r\n"))
	f.Add([]byte(ReportPrefix + "{"))
	f.Add([]byte("0-3,5,7-\n"))
	f.Add([]byte("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ParseReport(data); err == nil {
			WriteTable(io.Discard, []Place{{Name: "a", Report: &r}, {Name: "b", Report: &r}, {Name: "c", Error: string(data)}})
		}
		_, _ = parseCPUList(string(data))
		_, _ = parseMountinfo(data)
		_, _ = parseProcCgroup(data)
		_ = parseStatus(data)
		_, _ = parseMemoryMax(string(data))
	})
}
