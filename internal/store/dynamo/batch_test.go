package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/dynamo"
)

// gatedClient is DynamoDB Local with TransactWriteItems counted (items per
// call) and, once armed, its next call held until released: writes made
// meanwhile queue in the store's batcher.
type gatedClient struct {
	*dynamodb.Client
	mu    sync.Mutex
	calls []int
	hold  chan struct{} // armed: the next call waits for it to close
}

func (c *gatedClient) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.mu.Lock()
	c.calls = append(c.calls, len(in.TransactItems))
	hold := c.hold
	c.hold = nil
	c.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return c.Client.TransactWriteItems(ctx, in, opts...)
}

// arm holds the next call; the returned func releases it.
func (c *gatedClient) arm() func() {
	ch := make(chan struct{})
	c.mu.Lock()
	c.hold = ch
	c.calls = nil
	c.mu.Unlock()
	return sync.OnceFunc(func() { close(ch) })
}

func (c *gatedClient) callSizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.calls...)
}

// TestFencedGroupCommit: fenced writes queued behind a call in flight go
// together in the next one (their items and one lease check), and each
// still gets the answer it would have had alone.
func TestFencedGroupCommit(t *testing.T) {
	client := &gatedClient{Client: newClient(t)}
	table := newTable(t, client.Client)
	base := newStore(t, client, table, clock.NewFake(now()))
	key := func(c, n string) store.Key { return store.Key{Cluster: c, Kind: resource.KindExecution, Name: n} }
	rec := func(c, n string) store.Record { return store.Record{Key: key(c, n), Data: []byte(`{"n":"` + n + `"}`)} }

	// held starts first (its call is held), then each of writes once the
	// previous one is queued behind it; it releases the call and returns
	// every write's error, first's at index 0.
	held := func(t *testing.T, f *dynamo.Store, first func() error, writes ...func() error) []error {
		t.Helper()
		release := client.arm()
		defer release()
		errs := make([]error, len(writes)+1)
		var wg sync.WaitGroup
		wg.Go(func() { errs[0] = first() })
		waitFor(t, func() bool { return len(client.callSizes()) == 1 }) // first's call is in flight
		for i, w := range writes {
			wg.Go(func() { errs[i+1] = w() })
			waitFor(t, func() bool { return dynamo.QueuedWrites(f) == i+1 })
		}
		release()
		wg.Wait()
		return errs
	}
	create := func(f *dynamo.Store, r store.Record) func() error {
		return func() error { _, err := f.Create(t.Context(), r); return err }
	}

	t.Run("QueuedWritesShareOneCall", func(t *testing.T) {
		c := unique("c")
		putLease(t, client.Client, table, c, "gw-a", 1)
		f := base.Fenced(c, lease.Term{Holder: "gw-a", Epoch: 1})
		var writes []func() error
		for i := range 10 {
			writes = append(writes, create(f, rec(c, fmt.Sprint("q", i))))
		}
		for i, err := range held(t, f, create(f, rec(c, "first")), writes...) {
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}
		// first alone (its item and the check), then all ten and one check.
		if got := client.callSizes(); fmt.Sprint(got) != "[2 11]" {
			t.Errorf("TransactWriteItems sizes = %v, want [2 11]", got)
		}
		recs, _, err := base.List(t.Context(), c, resource.KindExecution, store.ListOptions{})
		if err != nil || len(recs) != 11 {
			t.Errorf("List = %d records, %v; want 11", len(recs), err)
		}
	})

	t.Run("OneFailedConditionFailsOnlyItsWrite", func(t *testing.T) {
		c := unique("c")
		putLease(t, client.Client, table, c, "gw-a", 1)
		f := base.Fenced(c, lease.Term{Holder: "gw-a", Epoch: 1})
		if _, err := f.Create(t.Context(), rec(c, "dup")); err != nil {
			t.Fatal(err)
		}
		errs := held(t, f, create(f, rec(c, "first")),
			create(f, rec(c, "a")), create(f, rec(c, "dup")), create(f, rec(c, "b")))
		for i, want := range []error{nil, nil, store.ErrExists, nil} {
			if (want == nil && errs[i] != nil) || !errors.Is(errs[i], want) {
				t.Errorf("write %d: err = %v, want %v", i, errs[i], want)
			}
		}
		// The shared call was cancelled by "dup"; a and b went again alone.
		if got := client.callSizes(); fmt.Sprint(got) != "[2 4 2 2]" {
			t.Errorf("TransactWriteItems sizes = %v, want [2 4 2 2]", got)
		}
		for _, n := range []string{"first", "a", "b"} {
			if _, err := base.Get(t.Context(), key(c, n)); err != nil {
				t.Errorf("Get %s: %v", n, err)
			}
		}
	})

	t.Run("LostLeaseFencesTheWholeCall", func(t *testing.T) {
		c := unique("c")
		putLease(t, client.Client, table, c, "gw-a", 1)
		f := base.Fenced(c, lease.Term{Holder: "gw-a", Epoch: 1})
		putLease(t, client.Client, table, c, "gw-b", 2) // taken over
		errs := held(t, f, create(f, rec(c, "first")), create(f, rec(c, "a")), create(f, rec(c, "b")))
		for i, err := range errs {
			if !errors.Is(err, store.ErrFenced) {
				t.Errorf("write %d: err = %v, want ErrFenced", i, err)
			}
		}
		if got := client.callSizes(); fmt.Sprint(got) != "[2 3]" {
			t.Errorf("TransactWriteItems sizes = %v, want [2 3]", got)
		}
		recs, _, err := base.List(t.Context(), c, resource.KindExecution, store.ListOptions{})
		if err != nil || len(recs) != 0 {
			t.Errorf("List = %d records, %v; want none", len(recs), err)
		}
	})

	t.Run("CanceledWhileQueuedIsNotSent", func(t *testing.T) {
		c := unique("c")
		putLease(t, client.Client, table, c, "gw-a", 1)
		f := base.Fenced(c, lease.Term{Holder: "gw-a", Epoch: 1})
		ctx, cancel := context.WithCancel(t.Context())
		canceled := func() error {
			_, err := f.Create(ctx, rec(c, "gone"))
			return err
		}
		release := client.arm()
		var wg sync.WaitGroup
		var firstErr, gotErr error
		wg.Go(func() { firstErr = create(f, rec(c, "first"))() })
		waitFor(t, func() bool { return len(client.callSizes()) == 1 })
		wg.Go(func() { gotErr = canceled() })
		waitFor(t, func() bool { return dynamo.QueuedWrites(f) == 1 })
		cancel()
		waitFor(t, func() bool { return dynamo.QueuedWrites(f) == 0 })
		release()
		wg.Wait()
		if firstErr != nil || !errors.Is(gotErr, context.Canceled) {
			t.Errorf("first: %v; canceled write: %v, want context.Canceled", firstErr, gotErr)
		}
		if _, err := base.Get(t.Context(), key(c, "gone")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get of the canceled write: %v, want ErrNotFound", err)
		}
		if got := client.callSizes(); fmt.Sprint(got) != "[2]" {
			t.Errorf("TransactWriteItems sizes = %v, want [2]", got)
		}
	})

	t.Run("SameRecordTwiceGoesInTwoCalls", func(t *testing.T) {
		c := unique("c")
		putLease(t, client.Client, table, c, "gw-a", 1)
		f := base.Fenced(c, lease.Term{Holder: "gw-a", Epoch: 1})
		r, err := f.Create(t.Context(), rec(c, "r"))
		if err != nil {
			t.Fatal(err)
		}
		update := func(v string) func() error {
			return func() error {
				u := r
				u.Data = []byte(`{"v":"` + v + `"}`)
				_, err := f.Update(t.Context(), u)
				return err
			}
		}
		errs := held(t, f, create(f, rec(c, "first")), update("x"), update("y"), create(f, rec(c, "z")))
		if errs[0] != nil || errs[3] != nil {
			t.Errorf("creates: %v, %v", errs[0], errs[3])
		}
		// One update wins; the other, at the same version, conflicts.
		if (errs[1] == nil) == (errs[2] == nil) || !errors.Is(errors.Join(errs[1], errs[2]), store.ErrConflict) {
			t.Errorf("updates at one version: %v, %v; want one ErrConflict", errs[1], errs[2])
		}
		// x and z together; y, naming r again, in the call after.
		if got := client.callSizes(); fmt.Sprint(got) != "[2 3 2]" {
			t.Errorf("TransactWriteItems sizes = %v, want [2 3 2]", got)
		}
	})
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
	}
}
