package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// EnvelopeVersion is the envelope format this build writes. Readers reject
// versions they do not know rather than guess.
const EnvelopeVersion = 1

// Envelope is the body of one queue message: enough to find the execution
// record, never the inputs themselves (those stay in the record, where they
// are redacted and sealed).
type Envelope struct {
	V              int       `json:"v"`
	ExecutionID    string    `json:"executionId"`
	Cluster        string    `json:"cluster"`
	Service        string    `json:"service"`
	ServiceVersion int64     `json:"serviceVersion"`
	Epoch          int64     `json:"epoch"`
	Deadline       time.Time `json:"deadline"`
	// TimeoutSeconds is the service's run timeout, so a runner can refuse
	// work it cannot finish (a Lambda near its own deadline) before claiming.
	TimeoutSeconds int    `json:"timeoutSeconds,omitempty"`
	TraceID        string `json:"traceId,omitempty"`
	// Execution is the execution record as the gateway wrote it, version
	// included (catalog.Snapshot), so a runner's first delivery claims it
	// without reading it first; absent when the record is large. It is a
	// copy: the claim is conditional on its version, so a record changed
	// since (a cancel) fails that write and is read then. It carries what
	// the record carries: sensitive inputs only sealed.
	Execution json.RawMessage `json:"execution,omitempty"`
}

// Check validates an envelope read off a queue.
func (e Envelope) Check() error {
	switch {
	case e.V != EnvelopeVersion:
		return fmt.Errorf("envelope version %d, this build reads %d", e.V, EnvelopeVersion)
	case e.ExecutionID == "" || e.Cluster == "":
		return errors.New("envelope lacks execution ID or cluster")
	}
	return nil
}

// Message is one delivery of an envelope.
type Message struct {
	Envelope Envelope
	// Receipt identifies this delivery for Extend, Ack and Release.
	Receipt string
	// ReceiveCount is how many times the message has been delivered, this
	// time included.
	ReceiveCount int
}

// ErrClosed is returned by a closed queue.
var ErrClosed = errors.New("queue closed")

// Local is an in-process queue. It is not durable: after a restart the
// gateway re-sends every queued execution from the store.
type Local struct {
	mu     sync.Mutex
	items  []Message
	wake   chan struct{}
	seq    int
	closed bool
}

// NewLocal returns an empty in-process queue.
func NewLocal() *Local { return &Local{wake: make(chan struct{}, 1)} }

// Send enqueues env.
func (q *Local) Send(ctx context.Context, env Envelope) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	q.seq++
	q.items = append(q.items, Message{Envelope: env, Receipt: fmt.Sprint(q.seq)})
	q.signal()
	return nil
}

func (q *Local) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Receive returns up to max messages, waiting up to wait for the first.
func (q *Local) Receive(ctx context.Context, max int, wait time.Duration) ([]Message, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, ErrClosed
		}
		if n := min(max, len(q.items)); n > 0 {
			out := make([]Message, n)
			copy(out, q.items[:n])
			q.items = q.items[n:]
			if len(q.items) > 0 {
				q.signal()
			}
			q.mu.Unlock()
			for i := range out {
				out[i].ReceiveCount++
			}
			return out, nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			return nil, nil
		case <-q.wake:
		}
	}
}

// Extend is a no-op: an in-process message is invisible until released.
func (q *Local) Extend(ctx context.Context, m Message, d time.Duration) error { return nil }

// Ack is a no-op: Receive already removed the message.
func (q *Local) Ack(ctx context.Context, m Message) error { return nil }

// Release puts m back at the end of the queue after delay.
func (q *Local) Release(ctx context.Context, m Message, delay time.Duration) error {
	put := func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.closed {
			return
		}
		q.items = append(q.items, m)
		q.signal()
	}
	if delay <= 0 {
		put()
		return nil
	}
	time.AfterFunc(delay, put)
	return nil
}

// Depth reports how many messages wait.
func (q *Local) Depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Purge drops every waiting message and returns how many there were (a
// gateway empties its in-process queue when a term ends: the next active
// re-sends what is still queued).
func (q *Local) Purge() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items)
	q.items = nil
	return n
}

// Close makes every call fail with ErrClosed and wakes blocked receivers.
func (q *Local) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	close(q.wake)
}
