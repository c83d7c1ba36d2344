package threadsched

import (
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    Policy
		wantErr bool
	}{
		{"", Batch, false},
		{"batch", Batch, false},
		{"normal", Normal, false},
		{"fifo", 0, true},
		{"Batch", 0, true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv(Env, tc.value)
			got, err := FromEnv()
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), Env, "the error names the variable")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSetAndGetThisThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := Get(0)
	require.NoError(t, err)
	defer func() { assert.NoError(t, Set(0, before)) }()
	for _, p := range []Policy{Batch, Normal, Batch} {
		require.NoError(t, Set(0, p))
		got, err := Get(0)
		require.NoError(t, err)
		assert.Equal(t, p, got)
	}
}

// threadPolicies returns the policy of every thread of this process.
func threadPolicies(t *testing.T) map[int]Policy {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	out := map[int]Policy{}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		require.NoError(t, err)
		if p, err := Get(tid); err == nil { // one may have exited
			out[tid] = p
		}
	}
	return out
}

// TestSetAllReachesEveryThreadAndItsChildren: after SetAll, every thread of
// the process has the policy, and so do threads started afterwards.
func TestSetAllReachesEveryThreadAndItsChildren(t *testing.T) {
	require.NoError(t, SetAll(Batch))
	t.Cleanup(func() { assert.NoError(t, SetAll(Normal)) })
	before := threadPolicies(t)
	for tid, p := range before {
		assert.Equal(t, Batch, p, "thread %d", tid)
	}

	// More threads than there are: locked goroutines, all blocked at once,
	// each on a thread of its own.
	n := len(before) + 4
	var started, release sync.WaitGroup
	started.Add(n)
	release.Add(1)
	tids := make(chan int, n)
	for range n {
		go func() {
			runtime.LockOSThread()
			tids <- unix.Gettid()
			started.Done()
			release.Wait()
		}()
	}
	started.Wait()
	close(tids)
	after := threadPolicies(t)
	fresh := 0
	for tid := range tids {
		if _, old := before[tid]; !old {
			fresh++
		}
		assert.Equal(t, Batch, after[tid], "thread %d", tid)
	}
	assert.Positive(t, fresh, "some of the goroutines ran on threads started after SetAll")
	release.Done()
}
