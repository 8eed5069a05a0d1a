// Package logtest holds slog helpers for tests: Counter counts records by
// message, so a test can assert that something happened (or did not) from
// the logs a component writes.
package logtest

import (
	"context"
	"log/slog"
	"sync"
)

// Counter is a slog.Handler that counts records by message. Safe for
// concurrent use; the zero value is ready.
type Counter struct {
	mu   sync.Mutex
	msgs map[string]int
}

var _ slog.Handler = (*Counter)(nil)

// Enabled reports true for every level.
func (h *Counter) Enabled(context.Context, slog.Level) bool { return true }

// Handle counts r.
func (h *Counter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[string]int{}
	}
	h.msgs[r.Message]++
	return nil
}

// WithAttrs returns h: attributes are not counted.
func (h *Counter) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup returns h.
func (h *Counter) WithGroup(string) slog.Handler { return h }

// Count returns how many records had message msg.
func (h *Counter) Count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}
