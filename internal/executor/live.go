package executor

import (
	"sync"
	"unicode/utf8"

	"github.com/autogate/autogate/internal/execution"
)

// Live shows a run's output while it runs: what each stream's capture has
// kept so far, after redaction and within the output limit, so a follower
// never sees a byte the Result would not hold. A caller makes one with
// NewLive, passes it in Job.Live and reads it from any goroutine.
type Live struct {
	mu             sync.Mutex
	stdout, stderr *capture
	final          *[2]execution.Output // set when the run ended
	changed        chan struct{}        // closed and replaced on each change
}

// NewLive returns an empty view.
func NewLive() *Live { return &Live{changed: make(chan struct{})} }

// Output returns the output so far. While the run goes on, Data is what the
// captures emitted, less a trailing partial UTF-8 character, so it is a
// prefix of the final Data (which may add a truncation marker); Bytes
// counts what the service wrote. Once the run has ended it is the Result's.
func (l *Live) Output() (stdout, stderr execution.Output) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.final != nil {
		return l.final[0], l.final[1]
	}
	return snapshot(l.stdout), snapshot(l.stderr)
}

// Changed returns a channel closed at the next change of Output.
func (l *Live) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Ended reports whether the run has ended (Output is then the Result's).
func (l *Live) Ended() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.final != nil
}

func (l *Live) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// bind makes l show the two captures of a run.
func (l *Live) bind(stdout, stderr *capture) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stdout, l.stderr = stdout, stderr
	stdout.live, stderr.live = l, l
	l.notifyLocked()
}

// finish fixes the output at the Result's.
func (l *Live) finish(stdout, stderr execution.Output) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.final = &[2]execution.Output{stdout, stderr}
	l.notifyLocked()
}

// snapshot is c's output so far; the caller holds the Live's lock, which
// capture.Write takes too.
func snapshot(c *capture) execution.Output {
	if c == nil {
		return execution.Output{}
	}
	out := c.out
	// Hold back a character whose first bytes are out but not its last.
	for n := 1; n < utf8.UTFMax && n <= len(out); n++ {
		if utf8.RuneStart(out[len(out)-n]) {
			if !utf8.FullRune(out[len(out)-n:]) {
				out = out[:len(out)-n]
			}
			break
		}
	}
	return execution.Output{Data: string(out), Bytes: c.total}
}
