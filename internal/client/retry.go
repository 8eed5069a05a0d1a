package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/autogate/autogate/internal/clock"
)

// Retry says how a Client retries a call. Every call is retried on 429
// (the server recorded nothing: its backlog is full), after the answer's
// Retry-After. An idempotent call — a GET, or a run that carries a request
// key — is also retried on 503 (a standby, or an active that just lost its
// lease, or a load balancer with no healthy target), on 502 and 504 (a
// load balancer whose target died or hung: it keeps routing to a dead
// task until its health check fails, 2 × 5 s with the stacks' settings)
// and on a failed connection (the active died), as during a failover.
// Other calls are never repeated: the first try may have acted.
type Retry struct {
	// Busy bounds the time one call spends waiting between 429 answers;
	// 0 never retries them.
	Busy time.Duration
	// Failover bounds the time one idempotent call spends waiting between
	// 502, 503 and 504 answers and failed connections; 0 never retries
	// them.
	Failover time.Duration
	// Backoff is the first pause, doubled after each retry up to
	// MaxBackoff; pauses are jittered (up to +50%) so many clients do not
	// come back at once. A Retry-After longer than the pause is honoured.
	Backoff, MaxBackoff time.Duration
	// Notify, if set, is told about every retry before its pause (the CLI
	// writes it to stderr).
	Notify func(RetryEvent)
	// Clock times the pauses; nil means clock.Real{}.
	Clock clock.Clock
}

// DefaultRetry is what New sets: a minute of patience for a full backlog,
// ten seconds for a failover (the lease moves in about 2.4 s).
var DefaultRetry = Retry{Busy: time.Minute, Failover: 10 * time.Second, Backoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}

// RetryEvent is one retry of a call.
type RetryEvent struct {
	Method, Path string
	// Status is the answer that is retried; 0 for a failed connection.
	Status int
	Err    error
	// Attempt is the try that failed, from 1; Wait the pause before the next.
	Attempt int
	Wait    time.Duration
}

func (e RetryEvent) String() string {
	why := fmt.Sprintf("connection failed (%v)", e.Err)
	switch e.Status {
	case 0:
	case http.StatusTooManyRequests:
		why = fmt.Sprintf("server busy (429: %v)", e.Err)
	default:
		why = fmt.Sprintf("server unavailable (%d: %v)", e.Status, e.Err)
	}
	return fmt.Sprintf("%s %s: %s; retrying in %v (attempt %d)", e.Method, e.Path, why, e.Wait.Round(time.Millisecond), e.Attempt+1)
}

// WithRetry returns a copy of c that retries as r says.
func (c *Client) WithRetry(r Retry) *Client {
	cc := *c
	cc.retry = r
	return &cc
}

// retrier is the state of one call's retries.
type retrier struct {
	r               Retry
	backoff         time.Duration
	busy, failovers time.Duration // waited so far
}

func newRetrier(r Retry) *retrier {
	if r.Clock == nil {
		r.Clock = clock.Real{}
	}
	if r.Backoff <= 0 {
		r.Backoff = 100 * time.Millisecond
	}
	r.MaxBackoff = max(r.MaxBackoff, r.Backoff)
	return &retrier{r: r, backoff: r.Backoff}
}

// next decides whether try attempt (status st, err; retryAfter from the
// answer, transport when no answer came) is retried, and waits if so. It
// returns false when the call should end with err.
func (t *retrier) next(ctx context.Context, method, path string, attempt, st int, retryAfter time.Duration, transport, idempotent bool, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	pause := t.backoff + rand.N(t.backoff/2+1)
	var spent *time.Duration
	var limit time.Duration
	switch {
	case st == http.StatusTooManyRequests:
		spent, limit, pause = &t.busy, t.r.Busy, max(pause, retryAfter+rand.N(retryAfter/2+1))
	case idempotent && (failoverStatus(st) || transport):
		spent, limit = &t.failovers, t.r.Failover
	default:
		return false
	}
	if limit <= 0 {
		return false
	}
	pause = min(pause, limit-*spent)
	if pause <= 0 {
		return false
	}
	*spent += pause
	t.backoff = min(2*t.backoff, t.r.MaxBackoff)
	if t.r.Notify != nil {
		t.r.Notify(RetryEvent{Method: method, Path: path, Status: st, Err: err, Attempt: attempt, Wait: pause})
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.r.Clock.After(pause):
		return true
	}
}

// failoverStatus reports whether st is an answer a failover produces: 503
// from a standby or a load balancer without healthy targets, 502 and 504
// from a load balancer whose target died or hung.
func failoverStatus(st int) bool {
	switch st {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter reads a Retry-After header in seconds (the form Autogate
// sends); anything else is 0.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
