package gateway

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/autogate/autogate/internal/catalog"
	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
)

// Backlog counts the runs that were accepted and have not finished, for
// Submit's admission check (Gateway.MaxBacklog).
type Backlog interface {
	// Admit returns how many accepted runs wait (or an upper bound of it)
	// and whether that is under limit; if so it counts the run about to be
	// accepted, so concurrent submissions cannot all take the last place.
	Admit(ctx context.Context, limit int) (open int, ok bool, err error)
}

// backlogRetryAfter is what a refused submitter is told to wait.
const backlogRetryAfter = time.Second

// admit refuses a submission when the backlog is at its limit. It reads
// nothing when no limit is set.
func (g *Gateway) admit(ctx context.Context) error {
	if g.MaxBacklog <= 0 || g.Backlog == nil {
		return nil
	}
	n, ok, err := g.Backlog.Admit(ctx, g.MaxBacklog)
	if err != nil {
		return fmt.Errorf("count the backlog: %w", err)
	}
	if !ok {
		return &execution.BacklogFullError{Open: n, Limit: g.MaxBacklog, After: backlogRetryAfter}
	}
	return nil
}

// Depther is a queue that knows how many messages wait in it.
type Depther interface{ Depth() int }

// QueueBacklog is the backlog of all-in-one execution: the runs waiting in
// the in-process queue (exact and free to read). Submissions in flight
// between the check and their send may pass it together: the queue can
// exceed the limit by at most the number of concurrent submitters.
type QueueBacklog struct{ Queue Depther }

// Admit compares the queue's depth with limit.
func (b QueueBacklog) Admit(_ context.Context, limit int) (int, bool, error) {
	n := b.Queue.Depth()
	return n, n < limit, nil
}

// OpenRuns is the backlog of a distributed cluster: its open (queued or
// running) executions, counted through the store's status index, which
// reads only what is open. Counting on every submission would cost a read
// of the whole backlog each time, so OpenRuns keeps an upper bound instead:
// the last count plus the runs accepted since (the active gateway accepts
// every run of its cluster). Runs that finished since are not subtracted,
// so the bound only errs high; it is recounted when it reaches the limit,
// at most once per Every, and at the start of every term (Reset).
type OpenRuns struct {
	Catalog *catalog.Catalog
	Clock   clock.Clock
	// Every is the least time between two counts; 0 means 250 ms.
	Every time.Duration

	mu        sync.Mutex
	counted   bool
	count     int       // open runs at the last count
	since     int       // runs accepted since
	countedAt time.Time // Clock time of the last count
}

// Admit compares the bound with limit, recounting first when the bound
// has reached it and the last count is older than Every, and counts the
// admitted run into the bound.
func (o *OpenRuns) Admit(ctx context.Context, limit int) (int, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	every := o.Every
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	now := o.Clock.Now()
	if !o.counted || (o.count+o.since >= limit && now.Sub(o.countedAt) >= every) {
		n, err := o.Catalog.CountOpenExecutions(ctx)
		if err != nil {
			return 0, false, err
		}
		o.counted, o.count, o.since, o.countedAt = true, n, 0, now
	}
	n := o.count + o.since
	if n >= limit {
		return n, false, nil
	}
	o.since++
	return n, true, nil
}

// Reset forgets the bound, so the next Open counts: a new term may follow
// another gateway's.
func (o *OpenRuns) Reset() {
	o.mu.Lock()
	o.counted = false
	o.mu.Unlock()
}
