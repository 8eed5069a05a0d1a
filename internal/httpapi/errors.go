package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// ErrorStatus maps errors matching Err (errors.Is) to Status.
type ErrorStatus struct {
	Err    error
	Status int
}

// baseErrors are the statuses every server shares; a server's own entries
// (Config.Errors) are consulted first.
var baseErrors = []ErrorStatus{
	{resource.ErrInvalid, http.StatusBadRequest},
	{store.ErrBadPageToken, http.StatusBadRequest},
	{store.ErrNotFound, http.StatusNotFound},
	{store.ErrExists, http.StatusConflict},
	{store.ErrConflict, http.StatusConflict},
	{store.ErrTooLarge, http.StatusRequestEntityTooLarge},
	{auth.ErrUnauthenticated, http.StatusUnauthorized},
	{auth.ErrForbidden, http.StatusForbidden},
	{execution.ErrBacklogFull, http.StatusTooManyRequests},
	{auth.ErrLastAdmin, http.StatusConflict},
	{store.ErrFenced, http.StatusServiceUnavailable},
	{lease.ErrNotLeader, http.StatusServiceUnavailable},
	{context.DeadlineExceeded, http.StatusGatewayTimeout},
}

// StatusOf maps an error to an HTTP status: the one place where that
// happens. Unknown errors are 500.
func (a *API) StatusOf(err error) int {
	for _, tab := range [][]ErrorStatus{a.cfg.Errors, baseErrors} {
		for _, e := range tab {
			if errors.Is(err, e.Err) {
				return e.Status
			}
		}
	}
	return http.StatusInternalServerError
}

// retryAfter is an error that says when to try again: its answer carries
// a Retry-After header (whole seconds, at least 1).
type retryAfter interface{ RetryAfter() time.Duration }

// retryHeaders returns the Retry-After header err asks for, or nil.
func retryHeaders(err error) http.Header {
	var ra retryAfter
	if !errors.As(err, &ra) {
		return nil
	}
	secs := max(1, int((ra.RetryAfter()+time.Second-1)/time.Second))
	return http.Header{"Retry-After": {strconv.Itoa(secs)}}
}
