package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/store"
)

// BenchmarkRetention (make bench-retention) measures, on DynamoDB Local with
// 100, 1,000 and 10,000 retained terminal executions and 2 queued ones, the
// DynamoDB calls, items read and read units of one sweep pass, and the
// latency of the status filter behind `GET /v1/executions?status=running`
// (Catalog.FindExecutions, p50 of 20). They must not grow with retention.
func BenchmarkRetention(b *testing.B) {
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	st, ddb := indexBackends[1].open(b, clk)
	g, _, _ := newIndexedGateway(b, st, clk, 0)
	ctx := b.Context()
	for range 2 {
		if _, err := g.Submit(ctx, RunRequest{Service: "s"}); err != nil {
			b.Fatal(err)
		}
	}
	fmt.Printf("retention  %9s  %11s  %10s  %10s  %19s  %14s  |  %s\n", "retained", "sweep calls", "items read", "read units",
		"?status=running p50", "items returned", "before the index: full listing calls, items, read units, time")
	have := 0
	for range b.N {
		have = 0
		for _, n := range []int{100, 1000, 10000} {
			seedTerminal(b, g.Catalog, clk, n-have)
			have = n
			ddb.reset()
			if _, _, err := sweepTimes(g, ctx, 2*time.Minute, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
			calls, items, units := ddb.calls.Load(), ddb.scanned.Load(), float64(ddb.readUnits.Load())/1000
			// Beside it, what the sweep and the filter read before the
			// index: every retained execution, 1,000 per Query.
			ddb.reset()
			t0 := time.Now()
			for tok := ""; ; {
				_, next, err := g.Catalog.ListExecutions(ctx, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
				if err != nil {
					b.Fatal(err)
				}
				if tok = next; tok == "" {
					break
				}
			}
			full := time.Since(t0)
			fullCalls, fullItems, fullUnits := ddb.calls.Load(), ddb.scanned.Load(), float64(ddb.readUnits.Load())/1000
			var lat []time.Duration
			var got int
			for range 50 { // warm DynamoDB Local's JIT before timing
				if _, _, err := g.Catalog.FindExecutions(ctx, catalog.ExecutionFilter{Status: execution.Running}, store.ListOptions{Limit: 100}); err != nil {
					b.Fatal(err)
				}
			}
			for range 20 {
				t0 := time.Now()
				es, _, err := g.Catalog.FindExecutions(ctx, catalog.ExecutionFilter{Status: execution.Running}, store.ListOptions{Limit: 100})
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				got = len(es)
			}
			slices.Sort(lat)
			fmt.Printf("retention  %9d  %11d  %10d  %10.1f  %19s  %14d  |  %d, %d, %.1f, %s\n", n, calls, items, units,
				lat[len(lat)/2].Round(10*time.Microsecond), got, fullCalls, fullItems, fullUnits, full.Round(100*time.Microsecond))
		}
	}
}
