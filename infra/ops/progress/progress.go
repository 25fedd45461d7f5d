// Package progress shows how far a command has got: a progress bar when
// standard error is a terminal, plain lines otherwise (CI, logs, a pipe),
// so that logs do not fill with carriage returns.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Bar is a progress display; max -1 means unknown (a count, no total).
type Bar interface {
	Set(n int) error
	Add(n int) error
	Describe(description string)
	Finish() error
}

// New returns a bar on a terminal, plain lines elsewhere.
func New(max int64, description string) Bar {
	if term.IsTerminal(int(os.Stderr.Fd())) {
		return progressbar.Default(max, description)
	}
	return Lines(os.Stderr, max, description, 5*time.Second)
}

// Lines reports progress as a line to w at most once per every (and when
// it finishes): "description: 40/100 (40%)".
func Lines(w io.Writer, max int64, description string, every time.Duration) Bar {
	return &lines{w: w, max: max, desc: description, every: every}
}

type lines struct {
	mu    sync.Mutex
	w     io.Writer
	max   int64
	n     int64
	desc  string
	every time.Duration
	last  time.Time
	done  bool
	// shown is the last line printed: Finish prints it again only if it
	// would say something new.
	shown string
}

func (l *lines) Set(n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n = int64(n)
	l.maybe()
	return nil
}

func (l *lines) Add(n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n += int64(n)
	l.maybe()
	return nil
}

func (l *lines) Describe(description string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.desc = description
}

func (l *lines) Finish() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		l.print()
	}
	return nil
}

// maybe prints a line if the last one is older than every.
func (l *lines) maybe() {
	if now := time.Now(); now.Sub(l.last) >= l.every {
		l.last = now
		l.print()
	}
}

func (l *lines) print() {
	line := fmt.Sprintf("%s: %d\n", l.desc, l.n)
	if l.max > 0 {
		line = fmt.Sprintf("%s: %d/%d (%d%%)\n", l.desc, l.n, l.max, l.n*100/l.max)
	}
	if line == l.shown {
		return
	}
	l.shown = line
	io.WriteString(l.w, line)
}
