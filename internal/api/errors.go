package api

import (
	"net/http"

	"github.com/autogate/autogate/internal/decorator"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/gateway"
	"github.com/autogate/autogate/internal/httpapi"
	"github.com/autogate/autogate/internal/resource"
)

// gatewayErrors extends the shared error → status table with the
// gateway's own sentinels.
var gatewayErrors = []httpapi.ErrorStatus{
	{Err: decorator.ErrInputs, Status: http.StatusUnprocessableEntity},
	{Err: resource.ErrBadValue, Status: http.StatusUnprocessableEntity},
	{Err: gateway.ErrTimeoutTooLong, Status: http.StatusUnprocessableEntity},
	{Err: gateway.ErrWrongType, Status: http.StatusBadRequest},
	{Err: execution.ErrTransition, Status: http.StatusBadRequest},
	{Err: gateway.ErrNoDLQ, Status: http.StatusBadRequest},
	{Err: gateway.ErrFinished, Status: http.StatusConflict},
	{Err: gateway.ErrInUse, Status: http.StatusConflict},
	{Err: gateway.ErrRequestKeyReused, Status: http.StatusConflict},
}
