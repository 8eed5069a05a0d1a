package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/autogate/autogate/internal/auth"
	"github.com/autogate/autogate/internal/decorator"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// statusOf maps a domain error to an HTTP status; the one place where that
// happens. Unknown errors are internal, and their text never reaches clients.
func statusOf(err error) int {
	switch {
	case errors.Is(err, decorator.ErrInputs), errors.Is(err, resource.ErrBadValue):
		return http.StatusUnprocessableEntity
	case errors.Is(err, resource.ErrInvalid), errors.Is(err, store.ErrBadPageToken),
		errors.Is(err, gateway.ErrWrongType), errors.Is(err, execution.ErrTransition), errors.Is(err, gateway.ErrNoDLQ):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrConflict), errors.Is(err, gateway.ErrFinished):
		return http.StatusConflict
	case errors.Is(err, store.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, auth.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, store.ErrFenced), errors.Is(err, lease.ErrNotLeader):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// problem converts err into a huma error with a status from statusOf.
func (s *Server) problem(ctx context.Context, op string, err error) error {
	var se huma.StatusError
	if errors.As(err, &se) {
		return err
	}
	st := statusOf(err)
	if st >= 500 && st != http.StatusServiceUnavailable {
		s.Logger.ErrorContext(ctx, "request failed", "operation", op, "error", err)
		return huma.NewError(st, "internal error; see the gateway log")
	}
	s.Logger.DebugContext(ctx, "request rejected", "operation", op, "status", st, "error", err)
	return huma.NewError(st, err.Error())
}
