package dynamo

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, tc := range []struct{ cluster, prefix, after string }{
		{"prod", "", "svc-01"},
		{"prod", "b", "b2"},
		{"c-1", "", "name with spaces and ünïcode"},
	} {
		tok := encodeToken(tc.cluster, resource.KindService, tc.prefix, tc.after)
		got, err := decodeToken(tok, tc.cluster, resource.KindService, tc.prefix)
		if err != nil || got != tc.after {
			t.Errorf("decode(encode(%q)) = %q, %v", tc.after, got, err)
		}
	}
}

func FuzzDecodeToken(f *testing.F) {
	f.Add(encodeToken("prod", resource.KindService, "", "a"))
	f.Add(encodeToken("prod", resource.KindService, "p", "pa"))
	f.Add("garbage")
	f.Add("eyJ4IjoxfQ")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		after, err := decodeToken(tok, "prod", resource.KindService, "p")
		if err != nil {
			if !errors.Is(err, store.ErrBadPageToken) {
				t.Fatalf("decode(%q) err = %v, want ErrBadPageToken", tok, err)
			}
			return
		}
		if !strings.HasPrefix(after, "p") {
			t.Fatalf("decode(%q) = %q outside the listing's prefix", tok, after)
		}
	})
}

func TestExpiresAt(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		in   time.Time
		want int64
	}{
		{"Zero", time.Time{}, 0},
		{"WholeSecond", base, base.Unix()},
		{"RoundsUp", base.Add(time.Millisecond), base.Unix() + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := expiresAt(tc.in); got != tc.want {
				t.Errorf("expiresAt(%v) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
	if !expired(base.Unix(), base) || expired(base.Unix(), base.Add(-time.Nanosecond)) || expired(0, base) {
		t.Error("expired: an item is gone exactly at its expiresAt, not before, and never without one")
	}
}
