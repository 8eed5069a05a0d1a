package executor

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
)

// feed writes s to c in chunks of n bytes (all at once when n <= 0).
func feed(c *capture, s string, n int) {
	if n <= 0 {
		n = len(s) + 1
	}
	for len(s) > 0 {
		k := min(n, len(s))
		_, _ = c.Write([]byte(s[:k])) // capture.Write never fails
		s = s[k:]
	}
}

func TestCapture(t *testing.T) {
	t.Parallel()
	const R = execution.Redacted
	tests := []struct {
		name      string
		limit     int
		redact    []string
		in        string
		wantData  string
		wantTrunc bool
	}{
		{"plain", 100, nil, "hello", "hello", false},
		{"redact", 100, []string{"secret"}, "a secret b secret", "a " + R + " b " + R, false},
		{"adjacent", 100, []string{"ab"}, "ababab", R + R + R, false},
		{"longest at the same start", 100, []string{"pass", "password"}, "my password!", "my " + R + "!", false},
		{"leftmost wins", 100, []string{"bcd", "abc"}, "abcd", R + "d", false},
		{"overlap prefix", 100, []string{"aab"}, "aaab", "a" + R, false},
		{"partial at the end stays", 100, []string{"secret"}, "the secr", "the secr", false},
		{"truncated", 5, nil, "0123456789", "01234\n[autogate: output truncated: 5 of 10 bytes kept]", true},
		{"exactly the limit", 5, nil, "01234", "01234", false},
		{"redacted before the cut", 14, []string{"0123456789abcdef"}, "xx0123456789abcdefyyyy", "xx" + R + "yy\n[autogate: output truncated: 14 of 22 bytes kept]", true},
		{"cut inside the marker", 5, []string{"secret"}, "secret and more", "[REDA\n[autogate: output truncated: 5 of 15 bytes kept]", true},
		{"cut on a rune", 4, nil, "abcé", "abc\n[autogate: output truncated: 3 of 5 bytes kept]", true},
		{"zero limit", 0, []string{"x"}, "xyz", "\n[autogate: output truncated: 0 of 3 bytes kept]", true},
	}
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 2, 3, 7} {
			t.Run(tt.name+"/chunk="+string(rune('0'+chunk)), func(t *testing.T) {
				c := newCapture(tt.limit, tt.redact)
				feed(c, tt.in, chunk)
				got := c.output()
				if got.Data != tt.wantData || got.Truncated != tt.wantTrunc || got.Bytes != int64(len(tt.in)) {
					t.Errorf("got (%q, %v, %d) want (%q, %v, %d)", got.Data, got.Truncated, got.Bytes, tt.wantData, tt.wantTrunc, len(tt.in))
				}
			})
		}
	}
}

// FuzzCapture checks streaming redaction whatever the chunking: the kept
// data is a prefix, as long as the limit allows, of the stream redacted in
// one piece, which for a single pattern is bytes.ReplaceAll.
func FuzzCapture(f *testing.F) {
	f.Add([]byte("xx secret yy secret"), "secret", "", 3, 100)
	f.Add([]byte("aaaaab"), "aab", "", 1, 4)
	f.Add([]byte("ééé secret"), "secret", "", 2, 5)
	f.Add([]byte("my password is pass"), "pass", "password", 1, 100)
	f.Add([]byte("abcd"), "bcd", "abc", 2, 3)
	f.Fuzz(func(t *testing.T, data []byte, secret, secret2 string, chunk, limit int) {
		if secret == "" || limit < 0 || limit > 1<<16 || chunk < 0 {
			return
		}
		patterns := []string{secret, secret2}
		var want []byte
		if secret2 == "" {
			want = bytes.ReplaceAll(data, []byte(secret), []byte(execution.Redacted))
		} else {
			ref := newCapture(1<<30, patterns)
			_, _ = ref.Write(data) // never fails
			want = []byte(ref.output().Data)
		}
		c := newCapture(limit, patterns)
		feed(c, string(data), chunk)
		got := c.output()
		if got.Bytes != int64(len(data)) {
			t.Fatalf("Bytes: got %d want %d", got.Bytes, len(data))
		}
		kept := got.Data
		if got.Truncated {
			i := strings.LastIndex(kept, "\n[autogate: output truncated: ")
			if i < 0 {
				t.Fatalf("truncated without a marker: %q", kept)
			}
			kept = kept[:i]
			if len(want) <= limit {
				t.Fatalf("truncated although the redacted stream (%d bytes) fits in %d", len(want), limit)
			}
			if len(kept) < limit-utf8.UTFMax || len(kept) > limit {
				t.Fatalf("kept %d bytes with limit %d", len(kept), limit)
			}
		} else if len(kept) != len(want) {
			t.Fatalf("untruncated: got %q want %q", kept, want)
		}
		if !bytes.HasPrefix(want, []byte(kept)) {
			t.Fatalf("got %q, not a prefix of %q", kept, want)
		}
	})
}

func TestRedactPatternsForms(t *testing.T) {
	t.Parallel()
	const secret = "p@ss word/+?&=é-x"
	pem := "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\r\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\nab\n-----END KEY-----"
	enc := []byte(secret)
	tests := []struct{ name, out string }{
		{"exact", secret},
		{"base64", base64.StdEncoding.EncodeToString(enc)},
		{"base64 raw", base64.RawStdEncoding.EncodeToString(enc)},
		{"base64 url", base64.URLEncoding.EncodeToString(enc)},
		{"base64 url raw", base64.RawURLEncoding.EncodeToString(enc)},
		{"base64 with a newline (echo | base64)", base64.StdEncoding.EncodeToString(append(enc, '\n'))},
		{"base64 inside a stream, offset 1", base64.StdEncoding.EncodeToString([]byte("x" + secret + "tail"))},
		{"base64 inside a stream, offset 2", base64.StdEncoding.EncodeToString([]byte("xy" + secret + "tail"))},
		{"hex", hex.EncodeToString(enc)},
		{"HEX", strings.ToUpper(hex.EncodeToString(enc))},
		{"query escaped", url.QueryEscape(secret)},
		{"path escaped", url.PathEscape(secret)},
		{"one PEM line", "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu"},
		{"last PEM line", "KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ=="},
		{"whole PEM", pem},
	}
	pats := redactPatterns([]string{secret, pem, "abc"})
	for _, tt := range tests {
		for _, chunk := range []int{0, 1, 5} {
			c := newCapture(1<<20, pats)
			feed(c, "before "+tt.out+" after", chunk)
			got := c.output().Data
			if !strings.Contains(got, execution.Redacted) || strings.Contains(got, tt.out) {
				t.Errorf("%s, chunk %d: got %q, want %q redacted", tt.name, chunk, got, tt.out)
			}
		}
	}
	// Too short to be redacted on its own: a value, or a line of a value.
	c := newCapture(1<<20, pats)
	feed(c, "abc ab", 1)
	if got := c.output().Data; got != "abc ab" {
		t.Errorf("short strings: got %q want them untouched", got)
	}
	if got := redactPatterns([]string{"abc", ""}); len(got) != 0 {
		t.Errorf("patterns of values shorter than %d bytes: got %q want none", resource.MinRedactBytes, got)
	}
}

// TestCaptureHoldsBackOnlyAPossibleSecret: with a secret to redact, output
// that cannot begin it is emitted at once (a follower sees the line), and
// only a tail that could still grow into it is held back.
func TestCaptureHoldsBackOnlyAPossibleSecret(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-value-0123456789"
	tests := []struct{ name, in, wantNow string }{
		{"a line that cannot start it", "line 1\n", "line 1\n"},
		{"a tail that could", "line 1\ns3cr", "line 1\n"},
		{"a whole secret then text", "a " + secret + " b\n", "a " + execution.Redacted + " b\n"},
		{"a partial secret that went wrong", "s3crex\n", "s3crex\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLive()
			c, e := newCapture(1<<10, []string{secret}), newCapture(1<<10, nil)
			l.bind(c, e)
			feed(c, tt.in, 1)
			if got, _ := l.Output(); got.Data != tt.wantNow || got.Bytes != int64(len(tt.in)) {
				t.Errorf("live: got (%q, %d) want (%q, %d)", got.Data, got.Bytes, tt.wantNow, len(tt.in))
			}
		})
	}
}

// TestLive: the view is redacted and bounded like the result, never ends
// on half a character, wakes waiters, and is the result once finished.
func TestLive(t *testing.T) {
	t.Parallel()
	l := NewLive()
	out, errs := newCapture(8, []string{"topsecret"}), newCapture(100, nil)
	l.bind(out, errs)
	ch := l.Changed()
	feed(errs, "é"[:1], 0)
	select {
	case <-ch:
	default:
		t.Fatal("a write did not close the Changed channel")
	}
	if _, e := l.Output(); e.Data != "" || e.Bytes != 1 {
		t.Errorf("half a character: got %q (%d bytes) want it held back", e.Data, e.Bytes)
	}
	feed(errs, "é"[1:], 0)
	feed(out, "a topsecret and more", 3)
	o, e := l.Output()
	if e.Data != "é" || o.Data != "a [REDAC" || o.Bytes != 20 {
		t.Errorf("got stdout %q (%d) stderr %q; want the redacted, capped prefix", o.Data, o.Bytes, e.Data)
	}
	if l.Ended() {
		t.Error("ended before finish")
	}
	l.finish(out.output(), errs.output())
	if o, _ := l.Output(); !o.Truncated || !strings.HasPrefix(o.Data, "a [REDAC\n[autogate: output truncated") || !l.Ended() {
		t.Errorf("after finish: got %+v, want the result with its marker", o)
	}
}
