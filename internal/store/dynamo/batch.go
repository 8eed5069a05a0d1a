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
	old    *item // with failed: the item as DynamoDB had it
	failed bool  // the write's own condition failed
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
	old, failed, err := s.transactOne(bw.ctx, bw.o, bw.k, bw.w)
	b.next(s, key)
	return old, failed, err
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
	if len(batch) == 1 {
		bw := batch[0]
		old, failed, err := s.transactOne(bw.ctx, bw.o, bw.k, bw.w)
		bw.done <- batchOutcome{old: old, failed: failed, err: err}
		return
	}
	// The first write's context carries the metrics scope; no one write's
	// cancellation may cancel the others'.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), batchCallTimeout)
	defer cancel()
	items := make([]types.TransactWriteItem, 0, len(batch)+1)
	for _, bw := range batch {
		items = append(items, bw.w)
	}
	check, err := s.leaseCheck()
	if err != nil {
		for _, bw := range batch {
			bw.done <- batchOutcome{err: err}
		}
		return
	}
	items = append(items, check)
	_, callErr := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tce *types.TransactionCanceledException
	reasons := func(i int) (string, map[string]types.AttributeValue) {
		if tce != nil && i < len(tce.CancellationReasons) {
			return aws.ToString(tce.CancellationReasons[i].Code), tce.CancellationReasons[i].Item
		}
		return "", nil
	}
	switch {
	case callErr == nil:
		for _, bw := range batch {
			bw.done <- batchOutcome{}
		}
	case errors.As(callErr, &tce):
		if code, _ := reasons(len(batch)); code == "ConditionalCheckFailed" {
			for _, bw := range batch {
				bw.done <- batchOutcome{err: s.fencedErr(bw.o, bw.k)}
			}
			return
		}
		for i, bw := range batch {
			switch code, m := reasons(i); code {
			case "ConditionalCheckFailed":
				old, failed, err := s.failedOld(bw.ctx, bw.k, m)
				bw.done <- batchOutcome{old: old, failed: failed, err: err}
			case "TransactionConflict":
				bw.done <- batchOutcome{err: fmt.Errorf("%s %s: a concurrent transaction wrote it: %w", bw.o, bw.k, store.ErrConflict)}
			default: // not applied because another write failed
				bw.done <- batchOutcome{solo: true}
			}
		}
	case errors.Is(Translate("TransactWriteItems", "", callErr), ErrRequest):
		// Refused as a whole (a limit this batch broke): each alone, as
		// they would have been without the batcher.
		for _, bw := range batch {
			bw.done <- batchOutcome{solo: true}
		}
	default: // throttled, unavailable, timed out: outcome unknown, as alone
		for _, bw := range batch {
			bw.done <- batchOutcome{err: Translate("TransactWriteItems", bw.k.String(), callErr)}
		}
	}
}

// resolve turns a call's outcome into write's answer; a write that was
// not applied is made again, alone.
func (s *Store) resolve(bw *batchWrite, out batchOutcome) (*item, bool, error) {
	if out.solo {
		return s.transactOne(bw.ctx, bw.o, bw.k, bw.w)
	}
	return out.old, out.failed, out.err
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
