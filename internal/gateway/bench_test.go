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
	fmt.Printf("retention  %9s  %11s  %10s  %10s  %18s  %14s\n", "retained", "sweep calls", "items read", "read units", "?status=running p50", "items returned")
	have := 0
	for range b.N {
		have = 0
		for _, n := range []int{100, 1000, 10000} {
			seedTerminal(b, g.Catalog, clk, n-have)
			have = n
			ddb.reset()
			if _, _, err := g.Sweep(ctx, 2*time.Minute, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
			calls, items, units := ddb.calls.Load(), ddb.scanned.Load(), float64(ddb.readUnits.Load())/1000
			var lat []time.Duration
			var got int
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
			fmt.Printf("retention  %9d  %11d  %10d  %10.1f  %18s  %14d\n", n, calls, items, units, lat[len(lat)/2].Round(10*time.Microsecond), got)
		}
	}
}
