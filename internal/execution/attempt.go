package execution

import (
	"errors"
	"fmt"
	"time"
)

// The rules around an attempt, in one place: the runner core, the Lambda
// runner and the gateway's reconciler ask these methods instead of deriving
// the rule themselves. Each one either changes the record through an edge of
// the state machine or returns ErrUnchanged, so a caller inside a
// version-conditional mutation simply returns its error.

// ErrUnchanged means a rule did not apply to the record as it is now (the
// attempt is no longer the caller's, the holder is still heartbeating…):
// nothing was changed and nothing needs writing.
var ErrUnchanged = errors.New("unchanged")

// ErrFinished means a cancel came after the execution ended.
var ErrFinished = errors.New("execution already finished")

// DefaultHeartbeat is how often a runner proves it still holds a running
// execution unless told otherwise (the gateway's local runner, `autogate
// runner` and the Lambda runner alike): 5 s, so a dead holder's attempt is
// stale StaleAfter(DefaultHeartbeat) = 15 s after its last beat and is
// declared lost (or re-queued) well under 30 s after the holder died, take-over
// included. Each beat costs one record write (and, on SQS, one
// ChangeMessageVisibility) per running execution: 12 of each per running
// minute.
const DefaultHeartbeat = 5 * time.Second

// StaleHeartbeats is how many heartbeat periods a running record may go
// without a heartbeat before its attempt is declared lost.
const StaleHeartbeats = 3

// StaleAfter is the one stale-after policy, used by the runner core (a
// redelivered message of a running execution) and by the gateway's sweeper
// alike: three heartbeat periods. Two heartbeats may be missed (a slow or
// failed store write, a busy host) before a live holder is wrongly declared
// lost; and it equals the runner's default message visibility (also three
// heartbeats), so the copy of the message that comes back when a holder dies
// already finds the attempt stale instead of being dropped as a duplicate.
func StaleAfter(heartbeat time.Duration) time.Duration {
	return StaleHeartbeats * heartbeat
}

// HeldBy reports whether attempt is e's current attempt, running on node:
// only then may that runner heartbeat it or record its result.
func (e *Execution) HeldBy(node string, attempt int) bool {
	return e.Status == Running && e.Node == node && e.Attempt == attempt
}

// Stale reports whether e is running and its holder has not heartbeated for
// after (see StaleAfter), or for StaleAfter of the holder's own heartbeat
// period when that is longer: a judge with a shorter setting than the
// holder's must not declare a live holder lost.
func (e *Execution) Stale(now time.Time, after time.Duration) bool {
	if e.Status != Running {
		return false
	}
	at := e.StaleAt(after)
	return at.IsZero() || !now.Before(at)
}

// StaleAt is when running e becomes Stale if its holder stays silent: its
// last heartbeat (or start) plus after, or plus StaleAfter of the holder's
// own heartbeat period when that is longer. It is zero when e is not
// running or records neither time (Stale at once). A sweeper wakes then,
// so a dead holder's attempt is declared lost when it becomes stale, not a
// sweep interval later.
func (e *Execution) StaleAt(after time.Duration) time.Time {
	if e.Status != Running {
		return time.Time{}
	}
	last := e.Heartbeat
	if last == nil {
		last = e.StartedAt
	}
	if last == nil {
		return time.Time{}
	}
	return last.Add(max(after, StaleAfter(e.HeartbeatEvery)))
}

// Start begins a queued execution as the next attempt on node, which
// heartbeats every heartbeat, or, when a cancel was requested (say, before a
// lost attempt was re-queued), cancels it instead. It returns ErrUnchanged
// when e is not queued (another runner claimed it, or it ended).
func (e *Execution) Start(node string, heartbeat time.Duration, now time.Time) error {
	switch {
	case e.Status != Queued:
		return fmt.Errorf("%w: execution %s is %s", ErrUnchanged, e.ID, e.Status)
	case e.CancelRequested:
		return e.Transition(Canceled, now, "canceled before it started")
	}
	if err := e.Claim(node, now); err != nil {
		return err
	}
	e.HeartbeatEvery = heartbeat
	return nil
}

// Beat records a heartbeat of attempt on node, or returns ErrUnchanged when
// the attempt is no longer the holder's (declared lost, ended elsewhere).
func (e *Execution) Beat(node string, attempt int, now time.Time) error {
	if !e.HeldBy(node, attempt) {
		return fmt.Errorf("%w: attempt %d on %s no longer holds execution %s", ErrUnchanged, attempt, node, e.ID)
	}
	t := now.UTC()
	e.Heartbeat = &t
	return nil
}

// Finish records the outcome of attempt on node: status to with reason,
// unless a cancel was requested (canceled, or CancelRequested on the
// record), which wins over whatever the service did. It returns
// ErrUnchanged when the attempt no longer holds e: whoever declared it lost
// has the last word.
func (e *Execution) Finish(node string, attempt int, now time.Time, to Status, reason string, canceled bool) error {
	if !e.HeldBy(node, attempt) {
		return fmt.Errorf("%w: attempt %d on %s no longer holds execution %s", ErrUnchanged, attempt, node, e.ID)
	}
	if canceled || e.CancelRequested {
		to, reason = Canceled, "canceled on request"
	}
	return e.Transition(to, now, reason)
}

// LoseAttempt marks the running attempt lost (its runner died or shut down
// under it) and re-queues the execution when its service is retryable and
// has attempts left. It reports whether it re-queued.
func (e *Execution) LoseAttempt(now time.Time, reason string) (requeued bool, err error) {
	if err := e.Transition(Lost, now, reason); err != nil {
		return false, err
	}
	return e.Retry(now), nil
}

// LoseStale is LoseAttempt for a holder that stopped heartbeating: it
// returns ErrUnchanged unless e is Stale (so a racing heartbeat or a new
// attempt wins over a sweeper that read an older record).
func (e *Execution) LoseStale(now time.Time, after time.Duration) (requeued bool, err error) {
	if !e.Stale(now, after) {
		return false, fmt.Errorf("%w: execution %s is %s and not stale", ErrUnchanged, e.ID, e.Status)
	}
	return e.LoseAttempt(now, fmt.Sprintf("runner %s stopped heartbeating during attempt %d", e.Node, e.Attempt))
}

// Progress records the output attempt on node has kept so far (the
// executor's live view: redacted and bounded like the result), or returns
// ErrUnchanged when the attempt no longer holds e or nothing is new.
func (e *Execution) Progress(node string, attempt int, stdout, stderr Output) error {
	if !e.HeldBy(node, attempt) {
		return fmt.Errorf("%w: attempt %d on %s no longer holds execution %s", ErrUnchanged, attempt, node, e.ID)
	}
	if e.Stdout == stdout && e.Stderr == stderr {
		return fmt.Errorf("%w: no new output of execution %s", ErrUnchanged, e.ID)
	}
	e.Stdout, e.Stderr = stdout, stderr
	return nil
}

// Follow marks e as followed until now+ttl, so its holder flushes output
// often (see FollowedUntil). It returns ErrUnchanged when e has ended or is
// already marked for more than half of ttl: a follower renews the mark at
// most every ttl/2, one write however often it polls.
func (e *Execution) Follow(now time.Time, ttl time.Duration) error {
	if e.Status.Terminal() {
		return fmt.Errorf("%w: execution %s is %s", ErrUnchanged, e.ID, e.Status)
	}
	if e.FollowedUntil != nil && e.FollowedUntil.Sub(now) > ttl/2 {
		return fmt.Errorf("%w: execution %s is followed until %v", ErrUnchanged, e.ID, e.FollowedUntil)
	}
	t := now.Add(ttl).UTC()
	e.FollowedUntil = &t
	return nil
}

// Followed reports whether someone follows e's output at now.
func (e *Execution) Followed(now time.Time) bool {
	return e.FollowedUntil != nil && now.Before(*e.FollowedUntil)
}

// RequestCancel asks for e to be canceled: a queued execution is canceled at
// once; a running one is flagged for its runner, which stops the service
// (ErrUnchanged if it already was). An ended one gives ErrFinished.
func (e *Execution) RequestCancel(now time.Time) error {
	switch {
	case e.Status.Terminal():
		return fmt.Errorf("%w: execution %s is %s", ErrFinished, e.ID, e.Status)
	case e.Status == Queued:
		e.CancelRequested = true
		return e.Transition(Canceled, now, "canceled before it started")
	case e.CancelRequested:
		return fmt.Errorf("%w: cancel of execution %s already requested", ErrUnchanged, e.ID)
	}
	e.CancelRequested = true
	return nil
}

// FailUnstarted fails a queued execution that no runner started in time,
// with reason saying why. It returns ErrUnchanged if e is no longer queued.
func (e *Execution) FailUnstarted(now time.Time, reason string) error {
	if e.Status != Queued {
		return fmt.Errorf("%w: execution %s is %s", ErrUnchanged, e.ID, e.Status)
	}
	return e.Transition(Failed, now, reason)
}

// MarkDeadLettered flags a waiting execution whose message sits in the
// dead-letter queue, with a reason saying what to do; a successful Claim
// clears the flag. It returns ErrUnchanged if e ended or is flagged already.
func (e *Execution) MarkDeadLettered() error {
	if e.Status.Terminal() || e.DeadLettered {
		return fmt.Errorf("%w: execution %s", ErrUnchanged, e.ID)
	}
	e.DeadLettered = true
	e.Reason = "its message failed repeatedly and is in the dead-letter queue; fix the cause, then `autogate redrive`"
	return nil
}

// StartDeadline is when e must have started: StartBy, or Deadline for a
// record written before start windows existed.
func (e *Execution) StartDeadline() time.Time {
	if !e.StartBy.IsZero() {
		return e.StartBy
	}
	return e.Deadline
}

// LastSent is when e's message was last sent: its last re-send, else its
// submission.
func (e *Execution) LastSent() time.Time {
	if e.ResentAt != nil {
		return *e.ResentAt
	}
	return e.CreatedAt
}

// Resend records that e's message, presumed lost, is sent again at now. It
// returns ErrUnchanged if e is no longer waiting (queued and not
// dead-lettered) or its start-by time has passed (see ExpireUnstarted).
func (e *Execution) Resend(now time.Time) error {
	if e.Status != Queued || e.DeadLettered {
		return fmt.Errorf("%w: execution %s is %s", ErrUnchanged, e.ID, e.Status)
	}
	if sb := e.StartDeadline(); !sb.IsZero() && !now.Before(sb) {
		return fmt.Errorf("%w: execution %s is past its start-by time", ErrUnchanged, e.ID)
	}
	t := now.UTC()
	e.Resends++
	e.ResentAt = &t
	return nil
}

// ExpireUnstarted fails a queued execution whose start-by time has passed:
// no re-send can start it in time any more. The reason says what happened.
// It returns ErrUnchanged if e is not queued or still has time.
func (e *Execution) ExpireUnstarted(now time.Time) error {
	sb := e.StartDeadline()
	if e.Status != Queued || sb.IsZero() || now.Before(sb) {
		return fmt.Errorf("%w: execution %s is %s, start by %v", ErrUnchanged, e.ID, e.Status, sb)
	}
	sent := "its message was never presumed lost, so it waited in the queue"
	if e.Resends > 0 {
		sent = fmt.Sprintf("its message was re-sent %d time(s) after being presumed lost", e.Resends)
	}
	return e.FailUnstarted(now, fmt.Sprintf("not started by its start-by time %s (%s after submission): no runner claimed it; %s (are runners up? see `autogate get nodes`)",
		sb.UTC().Format(time.RFC3339), sb.Sub(e.CreatedAt).Round(time.Second), sent))
}
