// Package storetest is the contract suite every store.Store implementation
// must pass. A backend's test calls Run with a factory that returns a fresh,
// empty store reading time from the given clock.
package storetest

import (
	"context"
	"errors"
	"fmt"
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
