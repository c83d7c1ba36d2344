// Package console connects the user's terminal to the guest's serial port:
// stdin in raw mode (so Ctrl-C, arrows and tab reach the guest), an escape
// sequence to leave (Ctrl-A x, as in QEMU), and the terminal restored on
// every way out. It works the same when stdin is a pipe, a file or
// /dev/null: no raw mode then, and end of input simply stops the reader.
package console

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/term"
)

// EscapeKey starts an escape sequence: Ctrl-A. Then 'x' quits, and a
// second Ctrl-A sends one Ctrl-A to the guest.
const (
	EscapeKey = 0x01
	QuitKey   = 'x'
)

// EscapeFilter removes escape sequences from what the user types.
type EscapeFilter struct {
	pending bool // the previous byte was EscapeKey
}

// Filter returns the bytes to pass to the guest and whether the user asked
// to quit. Bytes after a quit are dropped.
func (f *EscapeFilter) Filter(in []byte) (out []byte, quit bool) {
	out = make([]byte, 0, len(in))
	for _, b := range in {
		if f.pending {
			f.pending = false
			switch b {
			case QuitKey, 'X':
				return out, true
			case EscapeKey:
				out = append(out, EscapeKey)
			default:
				// Not an escape after all: pass both on, as typed.
				out = append(out, EscapeKey, b)
			}
			continue
		}
		if b == EscapeKey {
			f.pending = true
			continue
		}
		out = append(out, b)
	}
	return out, false
}

// Session is an attached console.
type Session struct {
	restoreOnce sync.Once
	restore     func() error
	restoreErr  error
}

// Attach starts forwarding in to send (the guest UART's input) until in
// ends or the user types Ctrl-A x, which calls quit. When in is a terminal
// it is put in raw mode; Restore puts it back and must be called on every
// exit path (it is safe to call more than once).
func Attach(in *os.File, send func([]byte), quit func()) (*Session, error) {
	s := &Session{restore: func() error { return nil }}
	interactive := term.IsTerminal(int(in.Fd()))
	if interactive {
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return nil, fmt.Errorf("console: put terminal in raw mode: %w", err)
		}
		s.restore = func() error { return term.Restore(int(in.Fd()), old) }
	}
	go func() {
		var f EscapeFilter
		buf := make([]byte, 256)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				out, q := f.Filter(buf[:n])
				if len(out) > 0 {
					send(out)
				}
				if q && interactive {
					quit()
					return
				}
			}
			if err != nil {
				// EOF (a pipe or /dev/null ran dry) or the terminal
				// went away: the guest keeps running, with no input.
				return
			}
		}
	}()
	return s, nil
}

// Restore returns the terminal to the mode it had before Attach.
func (s *Session) Restore() error {
	s.restoreOnce.Do(func() { s.restoreErr = s.restore() })
	return s.restoreErr
}
