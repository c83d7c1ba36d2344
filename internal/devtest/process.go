package devtest

import (
	"fmt"
	"os"
	"strings"
)

// Exited reports whether process pid has ended: gone from /proc, or a
// zombie that whoever inherited it has not reaped yet. For tests that check
// that something they started did not outlive its parent.
func Exited(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, so the
	// state follows the last ')'. A malformed line counts as running.
	s := string(data)
	end := strings.LastIndexByte(s, ')')
	return end >= 0 && end+2 < len(s) && s[end+2] == 'Z'
}
