package execution

import (
	"errors"
	"fmt"
	"time"
)

// ErrBacklogFull means the cluster already holds as many accepted,
// unfinished runs as it may: the submission is refused, nothing is
// recorded, and the submitter should come back later (HTTP 429 with
// Retry-After). Errors matching it are *BacklogFullError.
var ErrBacklogFull = errors.New("backlog full")

// BacklogFullError is the refusal of one submission.
type BacklogFullError struct {
	// Open is how many runs are waiting (or an upper bound of it); Limit
	// the most that may.
	Open, Limit int
	// After is when the backlog is worth asking again.
	After time.Duration
}

func (e *BacklogFullError) Error() string {
	return fmt.Sprintf("backlog full: %d runs accepted and not finished, the limit is %d; nothing was recorded, retry after %v",
		e.Open, e.Limit, e.After)
}

// Is makes errors.Is(err, ErrBacklogFull) hold.
func (e *BacklogFullError) Is(target error) bool { return target == ErrBacklogFull }

// RetryAfter is how long the submitter should wait before trying again.
func (e *BacklogFullError) RetryAfter() time.Duration { return e.After }
