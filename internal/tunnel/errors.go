package tunnel

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/coder/websocket"
)

// Errors callers branch on.
var (
	// ErrUnauthorized: the manager did not accept the cluster credential.
	ErrUnauthorized = errors.New("cluster credential refused")
	// ErrWrongCluster: the credential belongs to another cluster than the
	// hello names.
	ErrWrongCluster = errors.New("credential belongs to another cluster")
	// ErrStaleEpoch: the manager has seen a newer lease epoch for the
	// cluster; the connecting gateway has been deposed.
	ErrStaleEpoch = errors.New("epoch older than the newest the manager has seen")
	// ErrReplaced: a connection at the same or a newer epoch took over.
	ErrReplaced = errors.New("replaced by another connection of the cluster")
	// ErrNotActive: the manager is a standby (or stopping) and takes no
	// connections; try another manager address.
	ErrNotActive = errors.New("manager is not active")
	// ErrHeartbeat: nothing arrived from the peer for too long.
	ErrHeartbeat = errors.New("peer missed its heartbeats")
	// ErrFrameTooLarge: a frame exceeded the size limit.
	ErrFrameTooLarge = errors.New("frame exceeds the size limit")
	// ErrBadFrame: a message could not be decoded or broke the protocol.
	ErrBadFrame = errors.New("malformed tunnel frame")
	// ErrClosed: the connection is gone (a request in flight may or may
	// not have run on the gateway).
	ErrClosed = errors.New("tunnel closed")
	// ErrResponseTooLarge: a response body exceeded the response limit.
	ErrResponseTooLarge = errors.New("response exceeds the tunnel's size limit")
	// ErrBusy: too many requests are in flight on the connection.
	ErrBusy = errors.New("too many requests in flight on the tunnel")
)

// Close codes: the refusal reasons travel as WebSocket close codes in the
// private range (4000–4999), mirroring HTTP statuses where one fits.
const (
	CloseBadHello     websocket.StatusCode = 4400
	CloseUnauthorized websocket.StatusCode = 4401
	CloseWrongCluster websocket.StatusCode = 4403
	CloseHeartbeat    websocket.StatusCode = 4408
	CloseStaleEpoch   websocket.StatusCode = 4409
	CloseReplaced     websocket.StatusCode = 4410
	CloseNotActive    websocket.StatusCode = 4503
)

var closeCodes = []struct {
	code websocket.StatusCode
	err  error
}{
	{CloseBadHello, ErrBadFrame},
	{CloseUnauthorized, ErrUnauthorized},
	{CloseWrongCluster, ErrWrongCluster},
	{CloseHeartbeat, ErrHeartbeat},
	{CloseStaleEpoch, ErrStaleEpoch},
	{CloseReplaced, ErrReplaced},
	{CloseNotActive, ErrNotActive},
	{websocket.StatusMessageTooBig, ErrFrameTooLarge},
	{websocket.StatusGoingAway, ErrClosed},
}

// codeOf returns the close code for err, 1011 (internal error) if none fits.
func codeOf(err error) websocket.StatusCode {
	for _, c := range closeCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return websocket.StatusInternalError
}

// fromClose turns the peer's close status into one of the errors above,
// with the peer's reason; other errors are wrapped in ErrClosed.
func fromClose(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		for _, c := range closeCodes {
			if c.code == ce.Code {
				return fmt.Errorf("%w: %s", c.err, ce.Reason)
			}
		}
		return fmt.Errorf("%w: peer closed with %d %q", ErrClosed, ce.Code, ce.Reason)
	}
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return fmt.Errorf("%w: %v", ErrFrameTooLarge, err)
	}
	return fmt.Errorf("%w: %v", ErrClosed, err)
}

// reason trims s to what a close frame can carry (123 bytes).
func reason(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// FrameTooLargeError says how large a frame would have been.
type FrameTooLargeError struct {
	Size, Limit int
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the %d-byte limit", e.Size, e.Limit)
}

// Unwrap makes errors.Is(err, ErrFrameTooLarge) hold.
func (e *FrameTooLargeError) Unwrap() error { return ErrFrameTooLarge }

// Secret is a cluster credential. Its String and LogValue redact it, so it
// can sit in configs and log records without leaking.
type Secret string

// String redacts.
func (Secret) String() string { return "[REDACTED]" }

// LogValue redacts.
func (Secret) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }
