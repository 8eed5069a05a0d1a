package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/store/dynamo"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// countingStore counts the records the store hands out, whichever call
// reads them: the measure of what a sweep or a filter costs.
type countingStore struct {
	store.Store
	read atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, k store.Key) (store.Record, error) {
	r, err := s.Store.Get(ctx, k)
	if err == nil {
		s.read.Add(1)
	}
	return r, err
}

func (s *countingStore) List(ctx context.Context, c string, k resource.Kind, o store.ListOptions) ([]store.Record, string, error) {
	recs, next, err := s.Store.List(ctx, c, k, o)
	s.read.Add(int64(len(recs)))
	return recs, next, err
}

func (s *countingStore) ListIndex(ctx context.Context, c string, k resource.Kind, ix store.Index, term string, o store.ListOptions) ([]store.Record, string, error) {
	recs, next, err := s.Store.ListIndex(ctx, c, k, ix, term, o)
	s.read.Add(int64(len(recs)))
	return recs, next, err
}

// countingDDB counts DynamoDB calls, the items DynamoDB read (ScannedCount)
// and the read units it charged, which the store's own counts cannot show.
type countingDDB struct {
	dynamo.DynamoDBAPI
	calls, scanned atomic.Int64
	readUnits      atomic.Int64 // in thousandths
}

func (c *countingDDB) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.calls.Add(1)
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.DynamoDBAPI.Query(ctx, in, opts...)
	if err == nil {
		c.scanned.Add(int64(out.ScannedCount))
		if out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
			c.readUnits.Add(int64(*out.ConsumedCapacity.CapacityUnits * 1000))
		}
	}
	return out, err
}

func (c *countingDDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.calls.Add(1)
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.DynamoDBAPI.GetItem(ctx, in, opts...)
	if err == nil {
		c.scanned.Add(1)
		if out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
			c.readUnits.Add(int64(*out.ConsumedCapacity.CapacityUnits * 1000))
		}
	}
	return out, err
}

func (c *countingDDB) reset() { c.calls.Store(0); c.scanned.Store(0); c.readUnits.Store(0) }

// indexBackend is one store under test: bolt, or DynamoDB Local with its
// calls counted (ddb nil for bolt).
type indexBackend struct {
	name string
	open func(t testing.TB, clk clock.Clock) (store.Store, *countingDDB)
}

var indexBackends = []indexBackend{
	{"bolt", func(t testing.TB, clk clock.Clock) (store.Store, *countingDDB) {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), clk)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, nil
	}},
	{"dynamodb", func(t testing.TB, clk clock.Clock) (store.Store, *countingDDB) {
		client := dynamo.NewClient(emulator.AWSConfig(t, emulator.DynamoDB(t)), dynamo.ClientOptions{MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond})
		table := fmt.Sprintf("index-%d", time.Now().UnixNano())
		if err := dynamo.CreateTable(t.Context(), client, table); err != nil {
			t.Fatal(err)
		}
		ddb := &countingDDB{DynamoDBAPI: client}
		st, err := dynamo.New(ddb, dynamo.Config{Table: table, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return st, ddb
	}},
}

// newIndexedGateway returns a gateway on st (counted) with service s and
// retained terminal executions of it, written straight to the catalog.
func newIndexedGateway(t testing.TB, st store.Store, clk *clock.Fake, retained int) (*Gateway, *countingStore, *recorder) {
	t.Helper()
	cs := &countingStore{Store: st}
	kr, _ := secret.NewKeyring(make([]byte, 32))
	cat := &catalog.Catalog{Store: cs, Cluster: fmt.Sprintf("c%d", time.Now().UnixNano()%1_000_000_000), Keyring: kr, Clock: clk}
	rec := &recorder{}
	g := &Gateway{Catalog: cat, Queue: rec, Clock: clk, Logger: slog.New(slog.DiscardHandler), Node: "gw", Redriver: rec}
	ctx := t.Context()
	if err := g.Create(ctx, &resource.Repository{Meta: resource.Meta{Name: "r"}, URL: "/srv/r"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Create(ctx, &resource.Service{Meta: resource.Meta{Name: "s"}, Type: resource.Executable, Repository: "r", Filename: "x", TimeoutSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	seedTerminal(t, cat, clk, retained)
	return g, cs, rec
}

// seedTerminal writes n finished executions of service s, 8 at a time.
func seedTerminal(t testing.TB, cat *catalog.Catalog, clk clock.Clock, n int) {
	t.Helper()
	statuses := []execution.Status{execution.Succeeded, execution.Failed, execution.Canceled}
	sem := make(chan struct{}, 8)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			now := clk.Now().Add(-time.Duration(n-i) * time.Second)
			e := &execution.Execution{ID: execution.NewID(now), Cluster: cat.Cluster, Service: "s", Status: statuses[i%len(statuses)], CreatedAt: now}
			errs <- cat.CreateExecution(context.WithoutCancel(t.Context()), e)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

// TestSweepAndFilterReadOnlyIndexed holds a sweep pass and status filters
// to what they select: with thousands of retained terminal runs, a pass
// reads the few open ones, on bolt and on DynamoDB Local.
func TestSweepAndFilterReadOnlyIndexed(t *testing.T) {
	const retained = 2000
	for _, b := range indexBackends {
		t.Run(b.name, func(t *testing.T) {
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			st, ddb := b.open(t, clk)
			g, cs, rec := newIndexedGateway(t, st, clk, retained)
			ctx := t.Context()
			var open []*execution.Execution
			for range 3 {
				e, err := g.Submit(ctx, RunRequest{Service: "s"})
				if err != nil {
					t.Fatal(err)
				}
				open = append(open, e)
			}
			rec.sent = nil
			clk.Advance(3 * time.Minute) // old enough to be re-sent
			cs.read.Store(0)
			if ddb != nil {
				ddb.reset()
			}
			// DynamoDB's index may lag the table: poll until the pass sees
			// the open runs (DynamoDB Local's does not lag).
			deadline := time.Now().Add(5 * time.Second)
			var resent int
			for {
				var err error
				resent, _, err = sweepTimes(g, ctx, 2*time.Minute, 5*time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if resent == len(open) || time.Now().After(deadline) {
					break
				}
				cs.read.Store(0)
				rec.sent = nil
			}
			if resent != len(open) || len(rec.sent) != len(open) {
				t.Fatalf("sweep re-sent %d (%d messages), want the %d open runs", resent, len(rec.sent), len(open))
			}
			// Each open run is listed once and, being re-sent, read once more
			// by the conditional update that records the re-send; nothing of
			// the history is read.
			if got := cs.read.Load(); got > int64(2*len(open)) {
				t.Errorf("sweep pass read %d records with %d retained and %d open, want at most %d", got, retained, len(open), 2*len(open))
			}
			if ddb != nil {
				t.Logf("sweep pass: %d DynamoDB calls, %d items read, %.1f read units", ddb.calls.Load(), ddb.scanned.Load(), float64(ddb.readUnits.Load())/1000)
				// One Query per open status, one GetItem per re-sent run.
				if maxCalls := int64(2 + len(open)); ddb.scanned.Load() > int64(2*len(open)) || ddb.calls.Load() > maxCalls {
					t.Errorf("sweep pass: %d DynamoDB calls read %d items, want at most %d calls and %d items", ddb.calls.Load(), ddb.scanned.Load(), maxCalls, 2*len(open))
				}
			}

			for _, tc := range []struct {
				filter catalog.ExecutionFilter
				want   int
			}{
				{catalog.ExecutionFilter{Status: execution.Running}, 0},
				{catalog.ExecutionFilter{Status: execution.Queued}, len(open)},
				{catalog.ExecutionFilter{Status: execution.Queued, Service: "s"}, len(open)},
			} {
				cs.read.Store(0)
				es, next, err := g.Catalog.FindExecutions(ctx, tc.filter, store.ListOptions{Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				if len(es) != tc.want || next != "" {
					t.Errorf("filter %+v: %d executions (next %q), want %d", tc.filter, len(es), next, tc.want)
				}
				if got := cs.read.Load(); got > int64(tc.want) {
					t.Errorf("filter %+v read %d records with %d retained, want at most %d", tc.filter, got, retained, tc.want)
				}
			}
			// A terminal status pages through its index: a page of 100
			// reads 100 records, all of that status.
			cs.read.Store(0)
			es, next, err := g.Catalog.FindExecutions(ctx, catalog.ExecutionFilter{Status: execution.Failed}, store.ListOptions{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 100 || next == "" || cs.read.Load() != 100 {
				t.Errorf("failed filter: %d executions, next %q, %d records read; want 100, a token, 100", len(es), next, cs.read.Load())
			}
			for _, e := range es {
				if e.Status != execution.Failed {
					t.Fatalf("failed filter listed %s %s", e.ID, e.Status)
				}
			}
		})
	}
}

// TestReconcileIndexesOlderRecords: executions written without index terms
// (by an older release) are indexed by the first Reconcile, once, and then
// found by the sweep; later passes read only what is open.
func TestReconcileIndexesOlderRecords(t *testing.T) {
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	st, _ := indexBackends[0].open(t, clk)
	g, cs, rec := newIndexedGateway(t, st, clk, 50)
	ctx := t.Context()
	e, err := g.Submit(ctx, RunRequest{Service: "s"})
	if err != nil {
		t.Fatal(err)
	}
	// Strip every execution's terms, as an older release wrote them.
	for tok := ""; ; {
		recs, next, err := st.List(ctx, g.Catalog.Cluster, resource.KindExecution, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			r.Terms = nil
			if _, err := st.Update(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if tok = next; tok == "" {
			break
		}
	}
	if es, _, _ := g.Catalog.ListOpenExecutions(ctx, store.ListOptions{}); len(es) != 0 {
		t.Fatalf("before indexing the open listing holds %d executions, want none (terms stripped)", len(es))
	}
	rec.sent = nil
	if n, err := g.Reconcile(ctx); err != nil || n != 1 || len(rec.sent) != 1 || rec.sent[0].ExecutionID != e.ID {
		t.Fatalf("first Reconcile = %d, %v, sent %v; want the one queued run %s re-sent", n, err, rec.sent, e.ID)
	}
	es, _, err := g.Catalog.FindExecutions(ctx, catalog.ExecutionFilter{Status: execution.Succeeded}, store.ListOptions{Limit: 100})
	if err != nil || len(es) != 17 { // 50 seeded, every third succeeded
		t.Errorf("succeeded after indexing: %d (err %v), want 17", len(es), err)
	}
	cs.read.Store(0)
	if n, err := g.Reconcile(ctx); err != nil || n != 1 {
		t.Fatalf("second Reconcile = %d, %v; want 1", n, err)
	}
	if got := cs.read.Load(); got != 2 { // the marker and the open run
		t.Errorf("second Reconcile read %d records, want 2 (marker, open run)", got)
	}
}
