// Package storetest is the contract suite every store.Store implementation
// must pass. A backend's test calls Run with a factory that returns a fresh,
// empty store reading time from the given clock.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// Factory returns an empty store whose notion of "now" comes from clk. Two
// calls in one test may share a backing table (two clusters on one table);
// they must still be isolated by cluster ID, which Run chooses per test.
type Factory func(t *testing.T, clk clock.Clock) store.Store

// Run runs the contract suite against the stores newStore makes.
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	// Now, not a fixed date: DynamoDB Local deletes items whose TTL is in the
	// real past, so expiry must be driven by the fake clock from the present.
	start := time.Now().UTC().Truncate(time.Second)
	seq := 0
	cluster := func(t *testing.T) string {
		t.Helper()
		seq++
		// Unique per subtest so stores backed by one shared table start empty.
		return fmt.Sprintf("c%d-%d", time.Now().UnixNano()%1_000_000_000, seq)
	}
	data := func(s string) []byte { return []byte(fmt.Sprintf(`{"v":%q}`, s)) }
	key := func(c string, name string) store.Key {
		return store.Key{Cluster: c, Kind: resource.KindService, Name: name}
	}

	t.Run("CreateGet", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		got, err := s.Create(t.Context(), store.Record{Key: key(c, "a"), Data: data("1")})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if got.Version != 1 {
			t.Errorf("Create version = %d, want 1", got.Version)
		}
		r, err := s.Get(t.Context(), key(c, "a"))
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if string(r.Data) != string(data("1")) || r.Version != 1 || r.Key != key(c, "a") {
			t.Errorf("Get = %+v (data %s), want version 1 data %s", r, r.Data, data("1"))
		}
	})

	t.Run("CreateDuplicate", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		mustCreate(t, s, store.Record{Key: key(c, "a"), Data: data("1")})
		_, err := s.Create(t.Context(), store.Record{Key: key(c, "a"), Data: data("2")})
		if !errors.Is(err, store.ErrExists) {
			t.Fatalf("second Create err = %v, want ErrExists", err)
		}
		r := mustGet(t, s, key(c, "a"))
		if string(r.Data) != string(data("1")) {
			t.Errorf("duplicate Create changed data to %s", r.Data)
		}
	})

	t.Run("GetMissing", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		if _, err := s.Get(t.Context(), key(c, "nope")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get missing err = %v, want ErrNotFound", err)
		}
	})

	t.Run("UpdateVersions", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		r := mustCreate(t, s, store.Record{Key: key(c, "a"), Data: data("1")})
		for i := 2; i <= 4; i++ {
			r.Data = data(fmt.Sprint(i))
			var err error
			r, err = s.Update(t.Context(), r)
			if err != nil {
				t.Fatalf("Update %d: %v", i, err)
			}
			if r.Version != int64(i) {
				t.Fatalf("Update %d version = %d, want %d", i, r.Version, i)
			}
		}
		if got := mustGet(t, s, key(c, "a")); got.Version != 4 || string(got.Data) != string(data("4")) {
			t.Errorf("after updates Get = v%d %s, want v4 %s", got.Version, got.Data, data("4"))
		}
	})

	t.Run("StaleUpdateRejected", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		r := mustCreate(t, s, store.Record{Key: key(c, "a"), Data: data("1")})
		a, b := r, r
		a.Data = data("a")
		if _, err := s.Update(t.Context(), a); err != nil {
			t.Fatalf("first Update: %v", err)
		}
		b.Data = data("b")
		if _, err := s.Update(t.Context(), b); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("stale Update err = %v, want ErrConflict", err)
		}
		if got := mustGet(t, s, key(c, "a")); string(got.Data) != string(data("a")) || got.Version != 2 {
			t.Errorf("after stale update Get = v%d %s, want v2 %s", got.Version, got.Data, data("a"))
		}
	})

	t.Run("UpdateMissing", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		_, err := s.Update(t.Context(), store.Record{Key: key(c, "a"), Version: 1, Data: data("1")})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Update missing err = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(t.Context(), key(c, "a")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Update of a missing record created it (Get err = %v)", err)
		}
	})

	t.Run("ConcurrentUpdatesOneWins", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		r := mustCreate(t, s, store.Record{Key: key(c, "a"), Data: data("0")})
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := r
				u.Data = data(fmt.Sprint(i))
				_, err := s.Update(context.WithoutCancel(t.Context()), u)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict):
					conflicts++
				default:
					t.Errorf("Update: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 || conflicts != n-1 {
			t.Errorf("%d racing updates of one version: %d won, %d conflicted; want 1 and %d", n, wins, conflicts, n-1)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		r := mustCreate(t, s, store.Record{Key: key(c, "a"), Data: data("1")})
		if err := s.Delete(t.Context(), key(c, "a"), r.Version+1); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("Delete wrong version err = %v, want ErrConflict", err)
		}
		mustGet(t, s, key(c, "a"))
		if err := s.Delete(t.Context(), key(c, "a"), r.Version); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if _, err := s.Get(t.Context(), key(c, "a")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get after Delete err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(t.Context(), key(c, "a"), 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delete missing err = %v, want ErrNotFound", err)
		}
		// The name can be used again, starting over at version 1.
		if r := mustCreate(t, s, store.Record{Key: key(c, "a"), Data: data("2")}); r.Version != 1 {
			t.Errorf("re-Create version = %d, want 1", r.Version)
		}
	})

	t.Run("ListPagination", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		const n = 25
		for i := range n {
			mustCreate(t, s, store.Record{Key: key(c, fmt.Sprintf("svc-%02d", n-1-i)), Data: data(fmt.Sprint(i))})
		}
		// Another kind and another cluster must not show up.
		mustCreate(t, s, store.Record{Key: store.Key{Cluster: c, Kind: resource.KindDecorator, Name: "svc-99"}, Data: data("x")})
		mustCreate(t, s, store.Record{Key: key(c+"x", "svc-98"), Data: data("x")})
		var names []string
		token := ""
		pages := 0
		for {
			recs, next, err := s.List(t.Context(), c, resource.KindService, store.ListOptions{Limit: 10, PageToken: token})
			if err != nil {
				t.Fatalf("List page %d: %v", pages, err)
			}
			pages++
			if len(recs) > 10 {
				t.Fatalf("page %d has %d records, limit 10", pages, len(recs))
			}
			for _, r := range recs {
				names = append(names, r.Name)
			}
			if next == "" {
				break
			}
			if pages > n {
				t.Fatal("List never ends")
			}
			token = next
		}
		if len(names) != n {
			t.Fatalf("List returned %d records, want %d: %v", len(names), n, names)
		}
		for i, name := range names {
			if want := fmt.Sprintf("svc-%02d", i); name != want {
				t.Fatalf("List[%d] = %s, want %s (ascending order)", i, name, want)
			}
		}
		if pages < 3 {
			t.Errorf("25 records at limit 10 came in %d pages, want at least 3", pages)
		}
	})

	t.Run("ListPrefix", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		for _, n := range []string{"a1", "b1", "b2", "c1"} {
			mustCreate(t, s, store.Record{Key: key(c, n), Data: data(n)})
		}
		recs, _, err := s.List(t.Context(), c, resource.KindService, store.ListOptions{Prefix: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 2 || recs[0].Name != "b1" || recs[1].Name != "b2" {
			t.Errorf("List prefix b = %v, want [b1 b2]", names(recs))
		}
	})

	t.Run("BadPageToken", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		for _, tok := range []string{"garbage", "%%%", "eyJ4IjoxfQ"} {
			if _, _, err := s.List(t.Context(), c, resource.KindService, store.ListOptions{PageToken: tok}); !errors.Is(err, store.ErrBadPageToken) {
				t.Errorf("List with token %q err = %v, want ErrBadPageToken", tok, err)
			}
		}
	})

	t.Run("ClustersIsolated", func(t *testing.T) {
		clk := clock.NewFake(start)
		s1, s2 := newStore(t, clk), newStore(t, clk)
		c1, c2 := cluster(t), cluster(t)
		mustCreate(t, s1, store.Record{Key: key(c1, "same"), Data: data("one")})
		mustCreate(t, s2, store.Record{Key: key(c2, "same"), Data: data("two")})
		if got := mustGet(t, s1, key(c1, "same")); string(got.Data) != string(data("one")) {
			t.Errorf("cluster 1 sees %s", got.Data)
		}
		if got := mustGet(t, s2, key(c2, "same")); string(got.Data) != string(data("two")) {
			t.Errorf("cluster 2 sees %s", got.Data)
		}
		if err := s2.Delete(t.Context(), key(c2, "same"), 0); err != nil {
			t.Fatal(err)
		}
		mustGet(t, s1, key(c1, "same"))
		recs, _, err := s1.List(t.Context(), c2, resource.KindService, store.ListOptions{})
		if err != nil || len(recs) != 0 {
			t.Errorf("cluster 2 after delete lists %v (err %v), want none", names(recs), err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		clk := clock.NewFake(start)
		s, c := newStore(t, clk), cluster(t)
		k := store.Key{Cluster: c, Kind: resource.KindExecution, Name: "e1"}
		r := mustCreate(t, s, store.Record{Key: k, Data: data("1"), ExpiresAt: start.Add(time.Hour)})
		mustCreate(t, s, store.Record{Key: store.Key{Cluster: c, Kind: resource.KindExecution, Name: "e2"}, Data: data("2"), ExpiresAt: start.Add(3 * time.Hour)})
		if got := mustGet(t, s, k); !got.ExpiresAt.Equal(start.Add(time.Hour)) {
			t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, start.Add(time.Hour))
		}
		clk.Advance(2 * time.Hour)
		if _, err := s.Get(t.Context(), k); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get expired err = %v, want ErrNotFound", err)
		}
		r.Data = data("late")
		if _, err := s.Update(t.Context(), r); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Update expired err = %v, want ErrNotFound", err)
		}
		recs, _, err := s.List(t.Context(), c, resource.KindExecution, store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].Name != "e2" {
			t.Errorf("List after expiry = %v, want [e2]", names(recs))
		}
		// An expired name can be created again.
		mustCreate(t, s, store.Record{Key: k, Data: data("new")})
	})

	t.Run("InvalidKey", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		for _, k := range []store.Key{
			{Cluster: c, Kind: resource.KindService, Name: ""},
			{Cluster: "", Kind: resource.KindService, Name: "a"},
			{Cluster: c, Kind: "", Name: "a"},
		} {
			if _, err := s.Create(t.Context(), store.Record{Key: k, Data: data("1")}); err == nil {
				t.Errorf("Create with key %+v succeeded, want an error", k)
			}
		}
	})

	t.Run("LargeRecord", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		big := make([]byte, 0, 1<<20)
		big = append(big, `{"v":"`...)
		for len(big) < 1<<20-10 {
			big = append(big, "0123456789abcdef"...)
		}
		big = append(big, `"}`...)
		r, err := s.Create(t.Context(), store.Record{Key: key(c, "big"), Data: big})
		if err != nil {
			if errors.Is(err, store.ErrTooLarge) {
				t.Fatalf("a 1 MiB record was refused (%v); stores must split or offload large records", err)
			}
			t.Fatalf("Create 1 MiB: %v", err)
		}
		got := mustGet(t, s, key(c, "big"))
		if string(got.Data) != string(big) {
			t.Fatalf("1 MiB record read back as %d bytes, want %d identical", len(got.Data), len(big))
		}
		r.Data = data("small")
		if _, err := s.Update(t.Context(), r); err != nil {
			t.Fatalf("shrink Update: %v", err)
		}
		if got := mustGet(t, s, key(c, "big")); string(got.Data) != string(data("small")) {
			t.Errorf("after shrink Get = %d bytes", len(got.Data))
		}
	})

	runIndex(t, newStore, start, cluster, data)
}

// runIndex is the part of the contract about ListIndex and Terms.
func runIndex(t *testing.T, newStore Factory, start time.Time, cluster func(*testing.T) string, data func(string) []byte) {
	t.Helper()
	exec := func(c, name string) store.Key { return store.Key{Cluster: c, Kind: resource.KindExecution, Name: name} }
	status := func(term string) map[store.Index]string { return map[store.Index]string{store.IndexStatus: term} }

	t.Run("IndexTerms", func(t *testing.T) {
		clk := clock.NewFake(start)
		s, c := newStore(t, clk), cluster(t)
		r := mustCreate(t, s, store.Record{Key: exec(c, "a"), Data: data("a"),
			Terms: map[store.Index]string{store.IndexStatus: "queued", store.IndexService: "svc#1"}})
		if got := mustGet(t, s, exec(c, "a")); got.Terms[store.IndexStatus] != "queued" || got.Terms[store.IndexService] != "svc#1" || len(got.Terms) != 2 {
			t.Errorf("Get terms = %v, want status queued, service svc#1", got.Terms)
		}
		for _, n := range []string{"b", "c"} {
			mustCreate(t, s, store.Record{Key: exec(c, n), Data: data(n), Terms: status("queued")})
		}
		mustCreate(t, s, store.Record{Key: exec(c, "d"), Data: data("d"), Terms: status("succeeded")})
		mustCreate(t, s, store.Record{Key: exec(c, "e"), Data: data("e")})
		// The same term on another kind or cluster must not show up.
		mustCreate(t, s, store.Record{Key: store.Key{Cluster: c, Kind: resource.KindService, Name: "a2"}, Data: data("x"), Terms: status("queued")})
		mustCreate(t, s, store.Record{Key: exec(c+"x", "a3"), Data: data("x"), Terms: status("queued")})
		eventually(t, s, c, store.IndexStatus, "queued", []string{"a", "b", "c"})
		eventually(t, s, c, store.IndexStatus, "succeeded", []string{"d"})
		eventually(t, s, c, store.IndexService, "svc#1", []string{"a"})

		// An update moves the record to its new term, and one without
		// terms takes it out of every index.
		r.Data, r.Terms = data("a2"), status("running")
		if _, err := s.Update(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		eventually(t, s, c, store.IndexStatus, "queued", []string{"b", "c"})
		eventually(t, s, c, store.IndexStatus, "running", []string{"a"})
		eventually(t, s, c, store.IndexService, "svc#1", nil)
		recs := eventually(t, s, c, store.IndexStatus, "running", []string{"a"})
		if string(recs[0].Data) != string(data("a2")) || recs[0].Version != 2 || recs[0].Terms[store.IndexStatus] != "running" {
			t.Errorf("ListIndex record = v%d %s terms %v, want v2 %s running", recs[0].Version, recs[0].Data, recs[0].Terms, data("a2"))
		}
		b := mustGet(t, s, exec(c, "b"))
		b.Terms = nil
		if _, err := s.Update(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, s, exec(c, "b")); len(got.Terms) != 0 {
			t.Errorf("terms after an update without terms = %v, want none", got.Terms)
		}
		eventually(t, s, c, store.IndexStatus, "queued", []string{"c"})
		if err := s.Delete(t.Context(), exec(c, "c"), 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, s, c, store.IndexStatus, "queued", nil)

		// Expired records leave the index with the record; a record
		// created again in an expired one's place is indexed afresh.
		mustCreate(t, s, store.Record{Key: exec(c, "f"), Data: data("f"), Terms: status("failed"), ExpiresAt: start.Add(time.Hour)})
		eventually(t, s, c, store.IndexStatus, "failed", []string{"f"})
		clk.Advance(2 * time.Hour)
		eventually(t, s, c, store.IndexStatus, "failed", nil)
		mustCreate(t, s, store.Record{Key: exec(c, "f"), Data: data("f2"), Terms: status("queued")})
		eventually(t, s, c, store.IndexStatus, "queued", []string{"f"})
		eventually(t, s, c, store.IndexStatus, "failed", nil)
	})

	t.Run("IndexPagination", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		const n = 25
		for i := range n {
			term := "running"
			if i%2 == 1 {
				term = "succeeded"
			}
			mustCreate(t, s, store.Record{Key: exec(c, fmt.Sprintf("e-%02d", i)), Data: data(fmt.Sprint(i)), Terms: status(term)})
		}
		var want []string
		for i := 0; i < n; i += 2 {
			want = append(want, fmt.Sprintf("e-%02d", i))
		}
		eventually(t, s, c, store.IndexStatus, "running", want)
		var got []string
		token, pages := "", 0
		for {
			recs, next, err := s.ListIndex(t.Context(), c, resource.KindExecution, store.IndexStatus, "running", store.ListOptions{Limit: 5, PageToken: token})
			if err != nil {
				t.Fatalf("ListIndex page %d: %v", pages, err)
			}
			pages++
			if len(recs) > 5 {
				t.Fatalf("page %d has %d records, limit 5", pages, len(recs))
			}
			got = append(got, names(recs)...)
			if next == "" {
				break
			}
			if pages > n {
				t.Fatal("ListIndex never ends")
			}
			token = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || pages != 3 {
			t.Errorf("ListIndex in pages of 5 = %v in %d pages, want %v in 3", got, pages, want)
		}
		recs, _, err := s.ListIndex(t.Context(), c, resource.KindExecution, store.IndexStatus, "running", store.ListOptions{Prefix: "e-1"})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(names(recs)) != "[e-10 e-12 e-14 e-16 e-18]" {
			t.Errorf("ListIndex prefix e-1 = %v, want [e-10 e-12 e-14 e-16 e-18]", names(recs))
		}
		// A token of one term's listing is no good for another's (bolt's
		// tokens are bare positions; they may be accepted, never widen).
		_, next, err := s.ListIndex(t.Context(), c, resource.KindExecution, store.IndexStatus, "running", store.ListOptions{Limit: 5})
		if err != nil || next == "" {
			t.Fatalf("ListIndex first page: next %q, err %v", next, err)
		}
		other, _, err := s.ListIndex(t.Context(), c, resource.KindExecution, store.IndexStatus, "succeeded", store.ListOptions{PageToken: next})
		if err == nil {
			for _, r := range other {
				if r.Terms[store.IndexStatus] != "succeeded" {
					t.Errorf("a running page's token listed %s with terms %v under succeeded", r.Name, r.Terms)
				}
			}
		} else if !errors.Is(err, store.ErrBadPageToken) {
			t.Errorf("foreign token err = %v, want ErrBadPageToken or a listing of the asked term", err)
		}
		for _, tok := range []string{"garbage", "%%%"} {
			if _, _, err := s.ListIndex(t.Context(), c, resource.KindExecution, store.IndexStatus, "running", store.ListOptions{PageToken: tok}); !errors.Is(err, store.ErrBadPageToken) {
				t.Errorf("ListIndex with token %q err = %v, want ErrBadPageToken", tok, err)
			}
		}
	})

	t.Run("IndexInvalid", func(t *testing.T) {
		s, c := newStore(t, clock.NewFake(start)), cluster(t)
		for name, terms := range map[string]map[store.Index]string{
			"unknown index": {"nope": "x"},
			"empty term":    {store.IndexStatus: ""},
			"NUL in term":   {store.IndexStatus: "a\x00b"},
			"long term":     {store.IndexStatus: strings.Repeat("x", store.MaxTermBytes+1)},
		} {
			if _, err := s.Create(t.Context(), store.Record{Key: exec(c, "bad"), Data: data("1"), Terms: terms}); !errors.Is(err, resource.ErrInvalid) {
				t.Errorf("Create with %s err = %v, want resource.ErrInvalid", name, err)
			}
		}
		if _, err := s.Get(t.Context(), exec(c, "bad")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused Create left a record (Get err = %v)", err)
		}
		if _, _, err := s.ListIndex(t.Context(), c, resource.KindExecution, "nope", "x", store.ListOptions{}); !errors.Is(err, resource.ErrInvalid) {
			t.Errorf("ListIndex of an unknown index err = %v, want resource.ErrInvalid", err)
		}
		if _, _, err := s.ListIndex(t.Context(), c, resource.KindExecution, store.IndexStatus, "", store.ListOptions{}); !errors.Is(err, resource.ErrInvalid) {
			t.Errorf("ListIndex of an empty term err = %v, want resource.ErrInvalid", err)
		}
	})
}

// indexWait bounds how long eventually waits for an index to catch up
// (DynamoDB's global secondary indexes lag the table; DynamoDB Local's and
// bolt's do not).
const indexWait = 5 * time.Second

// eventually polls one term's listing until it names exactly want, in
// order, and returns its records.
func eventually(t *testing.T, s store.Store, c string, ix store.Index, term string, want []string) []store.Record {
	t.Helper()
	deadline := time.Now().Add(indexWait)
	for {
		recs, _, err := s.ListIndex(t.Context(), c, resource.KindExecution, ix, term, store.ListOptions{})
		if err != nil {
			t.Fatalf("ListIndex %s=%s: %v", ix, term, err)
		}
		if fmt.Sprint(names(recs)) == fmt.Sprint(want) && len(recs) == len(want) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListIndex %s=%s = %v, want %v", ix, term, names(recs), want)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func mustCreate(t *testing.T, s store.Store, r store.Record) store.Record {
	t.Helper()
	got, err := s.Create(t.Context(), r)
	if err != nil {
		t.Fatalf("Create %s: %v", r.Key, err)
	}
	return got
}

func mustGet(t *testing.T, s store.Store, k store.Key) store.Record {
	t.Helper()
	got, err := s.Get(t.Context(), k)
	if err != nil {
		t.Fatalf("Get %s: %v", k, err)
	}
	return got
}

func names(recs []store.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Name
	}
	return out
}
