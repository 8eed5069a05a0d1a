package execution

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/autogate/autogate/internal/resource"
)

// Status is where an execution is in its life.
type Status string

// The statuses.
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	TimedOut  Status = "timed_out"
	Canceled  Status = "canceled"
	Lost      Status = "lost"
)

// Statuses lists every status.
var Statuses = []Status{Queued, Running, Succeeded, Failed, TimedOut, Canceled, Lost}

// ParseStatus validates s.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("%w status %q: want one of %v", resource.ErrInvalid, s, Statuses)
}

// Terminal reports whether s is final.
func (s Status) Terminal() bool {
	switch s {
	case Succeeded, Failed, TimedOut, Canceled, Lost:
		return true
	}
	return false
}

// ErrTransition is returned for a move the state machine forbids.
var ErrTransition = errors.New("illegal execution transition")

var edges = map[Status][]Status{
	Queued:  {Running, Canceled, Failed},
	Running: {Succeeded, Failed, TimedOut, Canceled, Lost},
	// The one edge out of a terminal state: a lost attempt of a retryable
	// service with attempts left goes back to queued (Transition checks the
	// guard; see Retry).
	Lost: {Queued},
}

// CanTransition reports whether from → to is an edge of the state machine.
// An edge may carry a guard on the record (lost → queued needs a retryable
// service with attempts left); Transition checks it.
func CanTransition(from, to Status) bool {
	for _, s := range edges[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Output is a captured stream, bounded by the executor.
type Output struct {
	Data string `json:"data,omitempty"`
	// Truncated is set when the stream was cut at the cap; Data then ends with
	// a marker saying how many bytes were dropped.
	Truncated bool `json:"truncated,omitempty"`
	// Bytes is the full length the stream had before any cut.
	Bytes int64 `json:"bytes,omitempty"`
}

// Execution is the record of one run of a service.
type Execution struct {
	ID string `json:"id"`
	// Version is the store record version; writes name it to win races.
	Version int64  `json:"version,omitempty"`
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	// ServiceType and ServiceVersion pin what was asked for; Spec is the
	// service as it was at submission, so an edit mid-run changes nothing.
	ServiceType    resource.ServiceType `json:"serviceType"`
	ServiceVersion int64                `json:"serviceVersion"`
	Spec           *resource.Service    `json:"spec,omitempty"`
	// Repository is the Spec's repository as it was at submission, so the
	// runner that claims the record reads no repository record (absent on
	// records of older releases: the runner reads it then).
	Repository *resource.Repository `json:"repository,omitempty"`
	// Inputs are as submitted, with sensitive values replaced by Redacted.
	Inputs map[string]any `json:"inputs,omitempty"`
	// SealedInputs holds the unredacted inputs encrypted, present only when
	// something was redacted; runners open it with the cluster keyring.
	SealedInputs []byte `json:"sealedInputs,omitempty"`
	// RequestKey makes submission idempotent: the same run again with the
	// same key returns the first execution; the key is bound to the service
	// and the inputs, and another reuse is refused.
	RequestKey string `json:"requestKey,omitempty"`
	Status     Status `json:"status"`
	// Reason explains a failed, lost or canceled state in words.
	Reason          string `json:"reason,omitempty"`
	ExitCode        *int   `json:"exitCode,omitempty"`
	Stdout          Output `json:"stdout,omitzero"`
	Stderr          Output `json:"stderr,omitzero"`
	Commit          string `json:"commit,omitempty"`
	Node            string `json:"node,omitempty"`
	Attempt         int    `json:"attempt,omitempty"`
	CancelRequested bool   `json:"cancelRequested,omitempty"`
	// DeadLettered is set while the execution's message sits in the
	// dead-letter queue after repeated failed deliveries; a redrive and a
	// successful claim clear it.
	DeadLettered bool   `json:"deadLettered,omitempty"`
	Submitter    string `json:"submitter,omitempty"`
	// Apply asks an opentofu-plan service to apply its plan.
	Apply     bool       `json:"apply,omitempty"`
	Epoch     int64      `json:"epoch,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	StartedAt *time.Time `json:"startedAt,omitempty"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
	// Deadline is when the run must be over (submission + timeout + slack).
	Deadline time.Time `json:"deadline,omitzero"`
	// StartBy is when the run must have started (submission + the start
	// window; moved on a retry); a queued run past it is failed unstarted.
	// Separate from Deadline: a short timeout must not fail a run whose
	// message was lost before the queue could deliver it again.
	StartBy time.Time `json:"startBy,omitzero"`
	// Resends counts the times the gateway re-sent the message of this run
	// because it was presumed lost; ResentAt is the last of them.
	Resends  int        `json:"resends,omitempty"`
	ResentAt *time.Time `json:"resentAt,omitempty"`
	// Heartbeat is the last time the runner holding it proved it was alive.
	Heartbeat *time.Time `json:"heartbeat,omitempty"`
	// HeartbeatEvery is the holder's heartbeat period, recorded at Start, so
	// whoever judges it stale uses the holder's period, not its own setting.
	HeartbeatEvery time.Duration `json:"heartbeatEvery,omitempty"`
	// FollowedUntil is set by a gateway streaming the output of a run it
	// does not hold (see Follow): until then the holder flushes the output
	// to the record about every second instead of at heartbeats only.
	FollowedUntil *time.Time `json:"followedUntil,omitempty"`
}

// Redacted replaces sensitive values in recorded inputs and output.
const Redacted = "[REDACTED]"

// Transition moves e to status to at now, or returns ErrTransition. It sets
// StartedAt on running and EndedAt on terminal states.
func (e *Execution) Transition(to Status, now time.Time, reason string) error {
	if !CanTransition(e.Status, to) {
		return fmt.Errorf("%w: %s → %s (execution %s)", ErrTransition, e.Status, to, e.ID)
	}
	if e.Status == Lost && to == Queued && !e.retryable() {
		return fmt.Errorf("%w: %s → %s (execution %s): not retryable or no attempts left", ErrTransition, e.Status, to, e.ID)
	}
	e.Status = to
	if reason != "" {
		e.Reason = reason
	}
	t := now.UTC()
	if to == Running {
		e.StartedAt = &t
		e.Heartbeat = &t
	}
	if to.Terminal() {
		e.EndedAt = &t
	}
	return nil
}

// Claim moves a queued execution to running on node as attempt n.
func (e *Execution) Claim(node string, now time.Time) error {
	if err := e.Transition(Running, now, ""); err != nil {
		return err
	}
	e.Node = node
	e.Attempt++
	if e.DeadLettered {
		e.DeadLettered, e.Reason = false, ""
	}
	return nil
}

// MaxAttempts bounds how often a retryable service is started for one
// execution: the first attempt plus one retry after a lost runner.
const MaxAttempts = 2

// retryable is the guard of lost → queued.
func (e *Execution) retryable() bool {
	return e.Spec != nil && e.Spec.Retryable && e.Attempt < MaxAttempts
}

// Retry re-queues a lost execution when its service is retryable and it has
// attempts left. It reports whether it did.
func (e *Execution) Retry(now time.Time) bool {
	if e.Status != Lost || !e.retryable() {
		return false
	}
	if err := e.Transition(Queued, now, ""); err != nil {
		return false // cannot happen: the guard was checked above
	}
	e.EndedAt = nil
	e.StartedAt = nil
	e.ExitCode = nil
	// The lost attempt's output is not the next one's: a follower's offsets
	// start again from 0 with the new attempt.
	e.Stdout, e.Stderr = Output{}, Output{}
	e.Reason = fmt.Sprintf("re-queued after attempt %d was lost", e.Attempt)
	// The retry is sent now and gets the same start window as the first try.
	t := now.UTC()
	if !e.StartBy.IsZero() {
		e.StartBy = t.Add(e.StartBy.Sub(e.CreatedAt))
	}
	e.ResentAt = &t
	return true
}

// Duration is how long the run took, or 0 if it has not ended.
func (e *Execution) Duration() time.Duration { return RunDuration(e.StartedAt, e.EndedAt) }

// RunDuration is the time between a start and an end, or 0 if either is
// missing; views of an execution (package wire) share it.
func RunDuration(started, ended *time.Time) time.Duration {
	if started == nil || ended == nil {
		return 0
	}
	return ended.Sub(*started)
}

// NewID returns a new execution ID: 48 bits of milliseconds then 80 random
// bits, in Crockford base32 (a ULID), so IDs sort by creation time.
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never returns an error since Go 1.24
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var sb strings.Builder
	// 128 bits → 26 base32 characters, most significant first.
	var acc uint64
	var bits uint
	// Prefix with two zero bits so 128 bits fill 26×5 = 130 bits.
	bits = 2
	for _, c := range b {
		acc = acc<<8 | uint64(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			sb.WriteByte(alphabet[(acc>>bits)&31])
		}
	}
	return sb.String()
}

// ValidateID checks that id looks like an ID NewID made.
func ValidateID(id string) error {
	if len(id) != 26 {
		return fmt.Errorf("%w execution ID %q: want 26 characters", resource.ErrInvalid, id)
	}
	for _, r := range id {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", r) {
			return fmt.Errorf("%w execution ID %q: character %q", resource.ErrInvalid, id, r)
		}
	}
	return nil
}
