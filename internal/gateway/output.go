package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/resource"
)

// LiveSource gives the live output of the runs this process is running
// (runner.Core does): with in-process execution a follower reads the
// executor's capture, not the record.
type LiveSource interface {
	Live(id string) (*executor.Live, bool)
}

// Following a run held elsewhere: the record is re-read every FollowPoll,
// and marked followed for FollowTTL (renewed at half of it), so its runner
// flushes output about every second (runner.Config.FollowFlush).
const (
	FollowPoll = time.Second
	FollowTTL  = 30 * time.Second
	// liveCoalesce gathers a chatty service's writes into one chunk.
	liveCoalesce = 50 * time.Millisecond
)

// Offsets is where a follower is in a run's output: how many bytes of the
// stored (redacted) stdout and stderr it has. Its text form is
// "<stdout>.<stderr>", the SSE event ID.
type Offsets struct{ Stdout, Stderr int }

func (o Offsets) String() string { return fmt.Sprintf("%d.%d", o.Stdout, o.Stderr) }

// ParseOffsets reads "<stdout>.<stderr>"; "" is the start.
func ParseOffsets(s string) (Offsets, error) {
	if s == "" {
		return Offsets{}, nil
	}
	a, b, ok := strings.Cut(s, ".")
	o, err1 := strconv.Atoi(a)
	e, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || o < 0 || e < 0 || len(s) > 41 {
		return Offsets{}, fmt.Errorf("%w output offset %q: want <stdout bytes>.<stderr bytes>, e.g. 120.0", resource.ErrInvalid, s)
	}
	return Offsets{Stdout: o, Stderr: e}, nil
}

// Chunk is new output of one stream ("stdout" or "stderr"); At is where the
// follower is after it.
type Chunk struct {
	Stream string
	Text   string
	At     Offsets
}

// FollowOutput sends the output of execution id from `from` on as the
// service writes it, then returns the execution once it has ended and all
// its output is sent (or ctx's error). The output is what is stored: the
// executor redacts and bounds it before anyone can see it. With the run in
// this process it comes from the executor's live view, at once; otherwise
// from the record, which its runner flushes about every second while it is
// marked followed. A retried execution's new attempt starts again at 0.
// send errors end the follow and are returned.
func (g *Gateway) FollowOutput(ctx context.Context, id string, from Offsets, send func(Chunk) error) (*execution.Execution, error) {
	at, attempt := from, -1
	for {
		ended := g.addWaiter(id)
		e, err := g.Catalog.Execution(ctx, id)
		if err != nil {
			g.dropWaiter(id, ended)
			return nil, err
		}
		if attempt >= 0 && e.Attempt != attempt {
			at = Offsets{}
		}
		attempt = e.Attempt
		stdout, stderr := e.Stdout.Data, e.Stderr.Data
		var changed <-chan struct{}
		if !e.Status.Terminal() {
			if l, ok := g.liveOf(id); ok {
				changed = l.Changed() // before reading, so no change is missed
				o, er := l.Output()
				stdout, stderr = o.Data, er.Data
			} else {
				g.markFollowed(ctx, e)
			}
		}
		for _, s := range []struct {
			name string
			data string
			off  *int
		}{{"stdout", stdout, &at.Stdout}, {"stderr", stderr, &at.Stderr}} {
			if len(s.data) > *s.off {
				text := s.data[*s.off:]
				*s.off = len(s.data)
				if err := send(Chunk{Stream: s.name, Text: text, At: at}); err != nil {
					g.dropWaiter(id, ended)
					return e, err
				}
			}
		}
		if e.Status.Terminal() {
			g.dropWaiter(id, ended)
			return e, nil
		}
		select {
		case <-changed:
			select { // let a burst of writes gather
			case <-g.Clock.After(liveCoalesce):
			case <-ctx.Done():
			}
		case <-ended:
		case <-g.Clock.After(FollowPoll):
		case <-ctx.Done():
		}
		g.dropWaiter(id, ended)
		if ctx.Err() != nil {
			return e, ctx.Err()
		}
	}
}

func (g *Gateway) liveOf(id string) (*executor.Live, bool) {
	if g.Live == nil {
		return nil, false
	}
	return g.Live.Live(id)
}

// markFollowed tells e's runner someone follows (one write per FollowTTL/2
// at most, however many follow).
func (g *Gateway) markFollowed(ctx context.Context, e *execution.Execution) {
	now := g.Clock.Now()
	if e.Follow(now, FollowTTL) != nil {
		return // ended, or marked recently enough
	}
	if _, err := g.Catalog.MutateExecution(ctx, e.ID, func(x *execution.Execution) error {
		return x.Follow(now, FollowTTL)
	}); err != nil && ctx.Err() == nil && !errors.Is(err, execution.ErrUnchanged) {
		g.Logger.Warn("mark execution followed", "execution_id", e.ID, "error", err)
	}
}
