package httpapi

import (
	"encoding/base64"
	"fmt"
	"sort"

	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/wire"
)

// PageInput is the paging of every list operation. It is exported because
// huma skips unexported embedded fields: embedded under a lower-case name
// it was silently ignored, and every page was 100 long.
type PageInput struct {
	Limit     int    `query:"limit" minimum:"0" maximum:"1000" doc:"at most this many items per page (default 100, max 1000); a filtered page may hold fewer while nextPageToken is set"`
	PageToken string `query:"pageToken" maxLength:"2048" doc:"the nextPageToken of the previous page; omit for the first page"`
}

// Options returns the store's list options for in.
func (in PageInput) Options() store.ListOptions {
	return store.ListOptions{Limit: in.Limit, PageToken: in.PageToken}
}

// PageOf pages a listing held in memory (users, nodes, clusters) the way
// the store pages records: items ordered by key, at most in's limit, and a
// token naming the last key given, absent on the last page.
func PageOf[T any](items []T, key func(T) string, in PageInput) (wire.Page[T], error) {
	after := ""
	if in.PageToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(in.PageToken)
		if err != nil || len(raw) == 0 {
			return wire.Page[T]{}, fmt.Errorf("%w: %w", resource.ErrInvalid, store.ErrBadPageToken)
		}
		after = string(raw)
	}
	sorted := append([]T(nil), items...)
	sort.SliceStable(sorted, func(i, j int) bool { return key(sorted[i]) < key(sorted[j]) })
	limit := in.Options().EffectiveLimit()
	page := wire.Page[T]{Items: []T{}}
	for _, it := range sorted {
		if after != "" && key(it) <= after {
			continue
		}
		if len(page.Items) == limit {
			page.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(key(page.Items[len(page.Items)-1])))
			break
		}
		page.Items = append(page.Items, it)
	}
	return page, nil
}
