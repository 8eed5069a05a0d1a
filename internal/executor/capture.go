package executor

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
)

// capture is an io.Writer that keeps the first limit bytes of a stream after
// replacing every redaction pattern by execution.Redacted, and counts the
// whole stream. It redacts while streaming: the last maxLen-1 bytes are
// held back until it is known whether a pattern starts there, so a secret
// split across writes is still found. Memory is bounded by limit plus the
// longest pattern plus one write.
//
// Matching is leftmost first and, among patterns starting at the same
// byte, longest first. A capture is not safe for concurrent writes; exec
// gives each stream its own goroutine.
type capture struct {
	limit    int
	patterns [][]byte // longest first
	maxLen   int

	pending []byte // not yet emitted: may start a pattern
	out     []byte // redacted, at most limit bytes
	total   int64  // bytes written, before redaction
	dropped bool   // some redacted output did not fit

	live *Live // nil, or shows out while the run goes on (guards out)
}

var redactedMarker = []byte(execution.Redacted)

func newCapture(limit int, redact []string) *capture {
	c := &capture{limit: limit}
	for _, s := range redact {
		if s != "" && !slices.ContainsFunc(c.patterns, func(p []byte) bool { return string(p) == s }) {
			c.patterns = append(c.patterns, []byte(s))
			c.maxLen = max(c.maxLen, len(s))
		}
	}
	slices.SortStableFunc(c.patterns, func(a, b []byte) int { return len(b) - len(a) })
	return c
}

func (c *capture) full() bool { return len(c.out) >= c.limit }

// Write never fails: the child must never see EPIPE because of the cap.
func (c *capture) Write(p []byte) (int, error) {
	if c.live != nil {
		c.live.mu.Lock()
		defer c.live.mu.Unlock()
		before, total := len(c.out), c.total
		defer func() {
			if len(c.out) != before || c.total != total {
				c.live.notifyLocked()
			}
		}()
	}
	c.total += int64(len(p))
	switch {
	case c.full():
		c.dropped = c.dropped || len(p) > 0
	case c.maxLen == 0:
		c.emit(p)
	default:
		c.pending = append(c.pending, p...)
		c.scan(false)
	}
	return len(p), nil
}

// emit appends b to out up to limit.
func (c *capture) emit(b []byte) {
	room := c.limit - len(c.out)
	if len(b) > room {
		c.dropped = true
		b = b[:room]
	}
	c.out = append(c.out, b...)
}

// scan redacts and emits pending as far as it is decidable: everything when
// final, else up to where the rest of pending could still begin a pattern
// (see hold). A match before that point is certain: a longer pattern
// starting at or before it would either be found whole or make the rest a
// proper prefix of it.
func (c *capture) scan(final bool) {
	buf := c.pending
	next := make([]int, len(c.patterns)) // next match of each pattern at or after i; -1 none
	for k := range next {
		next[k] = -2 // unknown
	}
	i := 0
	for i < len(buf) && !c.full() {
		h := len(buf)
		if !final {
			h = c.hold(buf, i)
		}
		j, k := -1, -1
		for idx, pat := range c.patterns {
			if next[idx] == -2 || next[idx] >= 0 && next[idx] < i {
				if n := bytes.Index(buf[i:], pat); n >= 0 {
					next[idx] = i + n
				} else {
					next[idx] = -1
				}
			}
			if next[idx] >= 0 && (j < 0 || next[idx] < j) {
				j, k = next[idx], idx
			}
		}
		if j >= 0 && j < h {
			c.emit(buf[i:j])
			c.emit(redactedMarker)
			i = j + len(c.patterns[k])
			continue
		}
		if h > i {
			c.emit(buf[i:h])
			i = h
		}
		break
	}
	if c.full() {
		c.dropped = c.dropped || i < len(buf)
		c.pending = c.pending[:0]
		return
	}
	n := copy(buf, buf[i:])
	c.pending = buf[:n]
}

// hold is where the undecided tail of buf begins, at or after i: the first
// position from which the rest of buf is a proper prefix of some pattern,
// so more bytes could complete a secret there; len(buf) if there is none.
// Holding back only such a tail, not always the longest pattern's length,
// lets a line that cannot start a secret out at once, which is what a
// follower of live output sees.
func (c *capture) hold(buf []byte, i int) int {
	for at := max(i, len(buf)-(c.maxLen-1)); at < len(buf); at++ {
		rest := buf[at:]
		for _, p := range c.patterns {
			if len(p) > len(rest) && bytes.HasPrefix(p, rest) {
				return at
			}
		}
	}
	return len(buf)
}

// output flushes the capture and returns it as recorded in an execution.
func (c *capture) output() execution.Output {
	if c.live != nil {
		c.live.mu.Lock()
		defer c.live.mu.Unlock()
	}
	c.scan(true)
	o := execution.Output{Bytes: c.total}
	if !c.dropped {
		o.Data = string(c.out)
		return o
	}
	kept := c.out
	// Do not end on half a UTF-8 character.
	for n := 1; n < utf8.UTFMax && n <= len(kept); n++ {
		if r, size := utf8.DecodeLastRune(kept); r != utf8.RuneError || size != 1 {
			break
		}
		if utf8.RuneStart(kept[len(kept)-n]) {
			kept = kept[:len(kept)-n]
			break
		}
	}
	o.Data = string(kept) + fmt.Sprintf("\n[autogate: output truncated: %d of %d bytes kept]", len(kept), c.total)
	o.Truncated = true
	return o
}

// redactPatterns expands secret values into the byte patterns a capture
// replaces. A value shorter than resource.MinRedactBytes is skipped: it
// would mangle ordinary output and, by doing so, reveal itself. Each value
// is caught as it is and in the forms a service most often prints it in:
//   - base64, standard and URL alphabets, padded and not; inside a longer
//     base64 stream the characters that depend on the value alone, at each
//     of the three byte alignments (when they cover at least 6 bytes);
//   - hex, lower and upper case;
//   - URL-encoded, as a query value ('+' for space) and as a path (%20);
//   - each line of a multi-line value (a PEM key, say) that is at least
//     resource.MinRedactBytes long, as it is, so printing one line is
//     caught too (not its encodings: that would multiply the patterns).
//
// Other transformations (compression, encryption, reversing, a substring)
// are not caught: a service that prints its secret that way leaks it.
func redactPatterns(values []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if len(s) >= resource.MinRedactBytes && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, v := range values {
		if len(v) < resource.MinRedactBytes {
			continue
		}
		forms := func(v string) {
			add(v)
			b := []byte(v)
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				add(enc.EncodeToString(b))
			}
			// In a longer stream, the value starts at some offset mod 3; the
			// base64 characters of its whole 3-byte groups do not depend on
			// the bytes around it.
			for skip := range 3 {
				if rest := b[min(skip, len(b)):]; len(rest) >= 6 {
					whole := rest[:len(rest)/3*3]
					add(base64.RawStdEncoding.EncodeToString(whole))
					add(base64.RawURLEncoding.EncodeToString(whole))
				}
			}
			add(hex.EncodeToString(b))
			add(strings.ToUpper(hex.EncodeToString(b)))
			add(url.QueryEscape(v))
			add(url.PathEscape(v))
		}
		forms(v)
		if strings.Contains(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				line = strings.TrimSuffix(line, "\r")
				add(line)
			}
		}
	}
	return out
}
