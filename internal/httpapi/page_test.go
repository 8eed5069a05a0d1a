package httpapi

import (
	"errors"
	"fmt"
	"testing"

	"github.com/autogate/autogate/internal/store"
)

func TestPageOf(t *testing.T) {
	var items []string
	for i := range 25 {
		items = append(items, fmt.Sprintf("u%02d", 24-i)) // unsorted on purpose
	}
	for _, limit := range []int{1, 7, 25, 100} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			var got []string
			in := PageInput{Limit: limit}
			for pages := 0; ; pages++ {
				if pages > 30 {
					t.Fatal("paging never ends")
				}
				p, err := PageOf(items, func(s string) string { return s }, in)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Items) > limit {
					t.Fatalf("page of %d, limit %d", len(p.Items), limit)
				}
				got = append(got, p.Items...)
				if p.NextPageToken == "" {
					break
				}
				if p.NextPageToken == in.PageToken {
					t.Fatal("the token did not move")
				}
				in.PageToken = p.NextPageToken
			}
			if len(got) != 25 || got[0] != "u00" || got[24] != "u24" {
				t.Errorf("got %v, want u00..u24 once each", got)
			}
		})
	}
	if _, err := PageOf(items, func(s string) string { return s }, PageInput{PageToken: "!!"}); !errors.Is(err, store.ErrBadPageToken) {
		t.Errorf("bad token: %v, want ErrBadPageToken", err)
	}
}
