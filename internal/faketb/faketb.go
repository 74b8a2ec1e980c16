// Package faketb is a stand-in for the *testing.T that the test helpers of
// outboxtest and its subpackages take: their tests check what a helper
// reports, and their examples, which get no *testing.T, run helpers with it.
package faketb

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// TB records what a helper reports instead of failing the test. It
// implements Helper, Fatalf, Cleanup and TempDir; any other method of
// testing.TB panics (the embedded TB is nil).
type TB struct {
	testing.TB

	// Panic makes Fatalf panic with the message, for examples, which must
	// not go on after a failure.
	Panic bool

	mu       sync.Mutex
	Helpers  int      // calls of Helper
	Fatals   []string // messages of Fatalf, in order
	Cleanups []func() // functions passed to Cleanup, in order
}

// Helper counts the call.
func (f *TB) Helper() {
	f.mu.Lock()
	f.Helpers++
	f.mu.Unlock()
}

// Fatalf records the message, or panics with it when Panic is set.
func (f *TB) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if f.Panic {
		panic(msg)
	}
	f.mu.Lock()
	f.Fatals = append(f.Fatals, msg)
	f.mu.Unlock()
}

// Cleanup records fn; Finish runs it.
func (f *TB) Cleanup(fn func()) {
	f.mu.Lock()
	f.Cleanups = append(f.Cleanups, fn)
	f.mu.Unlock()
}

// TempDir returns a new temporary directory, removed by Finish.
func (f *TB) TempDir() string {
	dir, err := os.MkdirTemp("", "outboxtest")
	if err != nil {
		f.Fatalf("faketb: %v", err)
		return ""
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Finish runs the cleanups, last first, as the testing package does when a
// test ends.
func (f *TB) Finish() {
	f.mu.Lock()
	fns := f.Cleanups
	f.Cleanups = nil
	f.mu.Unlock()
	for _, fn := range slices.Backward(fns) {
		fn()
	}
}
