package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/autogate/autogate/internal/metrics"
	"github.com/autogate/autogate/internal/store"
)

// Group commit of fenced writes. Every fenced write is a transaction with
// one ConditionCheck on the lease item, so writes fenced on the same term
// can share it: a lone write is sent at once, as before; writes that arrive
// while one is in flight wait for it and then go together, as one
// TransactWriteItems of their puts and deletes plus the one check. Under
// load (many submissions at the active gateway) that is one call for many
// records; on DynamoDB each item still costs what it did alone (a
// transactional write), so it saves calls and round trips, not write units.
// Unfenced writes are plain conditional PutItems and are not grouped: a
// transaction would double their write units.
//
// The transaction is all or nothing. When it is cancelled because one
// write's own condition failed, that write gets its answer (the item
// DynamoDB returned) and the others, not applied, are each made again
// alone; a failed lease check fences them all. A write whose context ends
// while it waits is dropped before it is sent.

const (
	// maxBatchItems writes share a transaction, with the lease check 25
	// items: the limit of every DynamoDB release, DynamoDB Local included.
	maxBatchItems = 24
	// maxBatchBytes bounds the items' size in one transaction, under the
	// 4 MB DynamoDB allows (one inline record may be 380 kB).
	maxBatchBytes = 3 << 20
	// batchCallTimeout bounds a shared call, which no one caller's context
	// may cancel for the others.
	batchCallTimeout = 30 * time.Second
)

// batcher groups fenced writes by term and by metrics scope (a shared call
// is counted once, in the scope of the writes it carries).
type batcher struct {
	mu     sync.Mutex
	groups map[batchKey]*batchGroup
}

type batchKey struct {
	fence fence
	scope string
}

// batchGroup is one term's (and scope's) writes: at most one call in flight.
type batchGroup struct {
	queue []*batchWrite
}

// batchWrite is one fenced write waiting for, or carried by, a call.
type batchWrite struct {
	ctx   context.Context
	o     op
	k     store.Key
	w     types.TransactWriteItem
	size  int
	taken bool // sent (or being sent): its outcome must be awaited
	done  chan batchOutcome
}

// batchOutcome is what a call found for one write.
type batchOutcome struct {
	failed bool                            // the write's own condition failed
	item   map[string]types.AttributeValue // with failed: the item as DynamoDB returned it
	err    error
	solo   bool // not applied, through no fault of its own: write it alone
}

// do makes fenced write bw, alone or with others.
func (b *batcher) do(s *Store, bw *batchWrite) (*item, bool, error) {
	bw.done = make(chan batchOutcome, 1)
	key := batchKey{fence: *s.fence, scope: metrics.ScopeOf(bw.ctx)}
	b.mu.Lock()
	if g, busy := b.groups[key]; busy {
		g.queue = append(g.queue, bw)
		b.mu.Unlock()
		select {
		case out := <-bw.done:
			return s.resolve(bw, out)
		case <-bw.ctx.Done():
			b.mu.Lock()
			if !bw.taken {
				g.queue = slices.DeleteFunc(g.queue, func(x *batchWrite) bool { return x == bw })
				b.mu.Unlock()
				return nil, false, Translate("TransactWriteItems", bw.k.String(), bw.ctx.Err()) // never sent
			}
			b.mu.Unlock()
			return s.resolve(bw, <-bw.done)
		}
	}
	if b.groups == nil {
		b.groups = map[batchKey]*batchGroup{}
	}
	b.groups[key] = &batchGroup{}
	bw.taken = true
	b.mu.Unlock()
	// The lone writer's own call, as if there were no batcher; writes that
	// arrive meanwhile queue behind it.
	out := s.transact(bw.ctx, []*batchWrite{bw})[0]
	b.next(s, key)
	return s.resolve(bw, out)
}

// next sends the writes queued behind a finished call as the next call, or
// marks the group idle.
func (b *batcher) next(s *Store, key batchKey) {
	b.mu.Lock()
	g := b.groups[key]
	if len(g.queue) == 0 {
		delete(b.groups, key)
		b.mu.Unlock()
		return
	}
	var batch []*batchWrite
	var keys []store.Key
	size := 0
	g.queue = slices.DeleteFunc(g.queue, func(x *batchWrite) bool {
		// One transaction may not name an item twice; those wait a call.
		if len(batch) == maxBatchItems || (len(batch) > 0 && size+x.size > maxBatchBytes) || slices.Contains(keys, x.k) {
			return false
		}
		batch, keys, size = append(batch, x), append(keys, x.k), size+x.size
		x.taken = true
		return true
	})
	b.mu.Unlock()
	go func() {
		s.sendBatch(batch)
		b.next(s, key)
	}()
}

// sendBatch makes one call for batch and hands each write its outcome.
func (s *Store) sendBatch(batch []*batchWrite) {
	ctx := batch[0].ctx
	if len(batch) > 1 {
		// The first write's context carries the metrics scope; no one
		// write's cancellation may cancel the others'.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), batchCallTimeout)
		defer cancel()
	}
	for i, out := range s.transact(ctx, batch) {
		batch[i].done <- out
	}
}

// transact makes one TransactWriteItems of ws's writes and the lease check
// and returns each write's outcome. A write whose own condition failed is
// failed (resolve reads its item); a lease check that failed fences all;
// in a cancelled transaction of several writes, the others were not
// applied and are solo, as are all of them when DynamoDB refused the
// request as a whole (a limit the group broke). Otherwise each gets the
// call's error, as it would alone.
func (s *Store) transact(ctx context.Context, ws []*batchWrite) []batchOutcome {
	out := make([]batchOutcome, len(ws))
	all := func(o func(bw *batchWrite) batchOutcome) []batchOutcome {
		for i, bw := range ws {
			out[i] = o(bw)
		}
		return out
	}
	check, err := s.leaseCheck()
	if err != nil {
		return all(func(*batchWrite) batchOutcome { return batchOutcome{err: err} })
	}
	items := make([]types.TransactWriteItem, 0, len(ws)+1)
	for _, bw := range ws {
		items = append(items, bw.w)
	}
	_, callErr := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: append(items, check)})
	var tce *types.TransactionCanceledException
	switch {
	case callErr == nil:
		return out
	case errors.As(callErr, &tce):
		code := func(i int) string {
			if i < len(tce.CancellationReasons) {
				return aws.ToString(tce.CancellationReasons[i].Code)
			}
			return ""
		}
		lease := code(len(ws))
		for i, bw := range ws {
			switch c := code(i); {
			case lease == "ConditionalCheckFailed":
				out[i] = batchOutcome{err: s.fencedErr(bw.o, bw.k)}
			case c == "ConditionalCheckFailed":
				out[i] = batchOutcome{failed: true, item: tce.CancellationReasons[i].Item}
			case c == "TransactionConflict" || lease == "TransactionConflict":
				out[i] = batchOutcome{err: fmt.Errorf("%s %s: a concurrent transaction wrote it: %w", bw.o, bw.k, store.ErrConflict)}
			case len(ws) > 1: // not applied because another write failed
				out[i] = batchOutcome{solo: true}
			default:
				out[i] = batchOutcome{err: Translate("TransactWriteItems", bw.k.String(), callErr)}
			}
		}
		return out
	case len(ws) > 1 && errors.Is(Translate("TransactWriteItems", "", callErr), ErrRequest):
		return all(func(*batchWrite) batchOutcome { return batchOutcome{solo: true} })
	default: // throttled, unavailable, timed out: outcome unknown, as alone
		return all(func(bw *batchWrite) batchOutcome {
			return batchOutcome{err: Translate("TransactWriteItems", bw.k.String(), callErr)}
		})
	}
}

// resolve turns a call's outcome into bw's answer, with bw's own context:
// a failed condition's item is decoded (or read), and a write that was not
// applied is made again, alone.
func (s *Store) resolve(bw *batchWrite, out batchOutcome) (*item, bool, error) {
	switch {
	case out.solo:
		return s.resolve(bw, s.transact(bw.ctx, []*batchWrite{bw})[0]) // alone: never solo again
	case out.failed:
		return s.failedOld(bw.ctx, bw.k, out.item)
	}
	return nil, false, out.err
}

// itemSize estimates a write's share of a transaction's size: its
// attribute names and values.
func itemSize(m map[string]types.AttributeValue) int {
	n := 0
	for k, v := range m {
		n += len(k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		case *types.AttributeValueMemberM:
			n += itemSize(v.Value)
		default:
			n += 64 // numbers, booleans, small sets and lists
		}
	}
	return n
}
