package container

import (
	"os/exec"
	"testing"
)

func execCommand(t *testing.T, script string) error {
	t.Helper()
	return exec.Command("sh", "-c", script).Run()
}
