package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/autogate/autogate/internal/clock"
)

// Server-sent events (text/event-stream), not huma's sse package: its event
// IDs are integers and ours are resumable offset pairs, it writes no
// comment lines to keep proxies from timing an idle stream out, and it
// starts the stream before the handler could answer 404.

// SSE settings.
const (
	// Keepalive is how often an idle stream gets a comment line.
	Keepalive = 15 * time.Second
	// sseWriteTimeout drops a client that takes longer to accept one event.
	sseWriteTimeout = 30 * time.Second
)

// EventStreamResponse documents op's 200 answer as a text/event-stream
// whose events are named by the keys of events and carry the JSON of its
// values' types, each with a string ID.
func (a *API) EventStreamResponse(op *huma.Operation, events map[string]any) {
	names := make([]string, 0, len(events))
	for k := range events {
		names = append(names, k)
	}
	slices.Sort(names)
	var schemas []*huma.Schema
	for _, name := range names {
		t := reflect.TypeOf(events[name])
		schemas = append(schemas, &huma.Schema{
			Title: "Event " + name,
			Type:  huma.TypeObject,
			Properties: map[string]*huma.Schema{
				"event": {Type: huma.TypeString, Description: "The event name.", Extensions: map[string]any{"const": name}},
				"id":    {Type: huma.TypeString, Description: "The event ID; send it back as Last-Event-ID to resume after it."},
				"data":  a.OpenAPI().Components.Schemas.Schema(t, true, name),
			},
			Required: []string{"event", "data"},
		})
	}
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	op.Responses["200"] = &huma.Response{
		Description: "Server-sent events; a comment line every 15 s keeps an idle stream open.",
		Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{
			Title: "Server-sent events", Type: huma.TypeArray,
			Description: "Each item is one event, as text per the SSE specification.",
			Items:       &huma.Schema{Extensions: map[string]any{"oneOf": schemas}},
		}}},
	}
}

// EventStream writes server-sent events to one client. Send and the
// keepalive are serialized; each write has its own deadline, so a client
// that stops reading is dropped instead of holding the handler.
type EventStream struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	clk  clock.Clock
	mu   sync.Mutex
	err  error
	stop chan struct{}
	done chan struct{}
}

// StartEventStream sends the headers (status 200) and starts the
// keepalive; Close stops it.
func StartEventStream(hctx huma.Context, clk clock.Clock) *EventStream {
	if clk == nil {
		clk = clock.Real{}
	}
	hctx.SetHeader("Content-Type", "text/event-stream")
	hctx.SetHeader("Cache-Control", "no-cache")
	hctx.SetHeader("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	hctx.SetStatus(http.StatusOK)
	_, w := humago.Unwrap(hctx)
	s := &EventStream{w: w, rc: http.NewResponseController(w), clk: clk, stop: make(chan struct{}), done: make(chan struct{})}
	// The server's ReadTimeout would otherwise end a long stream: its
	// deadline still holds while the handler runs.
	_ = s.rc.SetReadDeadline(time.Time{}) // unsupported (the tunnel): no deadline to lift
	s.write(func() error { return nil })  // the headers go out now
	go s.keepalive()
	return s
}

func (s *EventStream) keepalive() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.clk.After(Keepalive):
		}
		if s.write(func() error { _, err := fmt.Fprint(s.w, ": keepalive\n\n"); return err }) != nil {
			return
		}
	}
}

// write runs fn under the lock with a write deadline, then flushes.
func (s *EventStream) write(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	// Not every writer has deadlines (the tunnel's does not); the tunnel
	// bounds its own writes.
	if err := s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
		return err
	}
	if err := fn(); err != nil {
		s.err = err
		return err
	}
	if err := s.rc.Flush(); err != nil {
		s.err = err
	}
	return s.err
}

// Send writes one event: name, an optional ID and data as one line of JSON.
func (s *EventStream) Send(name, id string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return s.write(func() error {
		buf := make([]byte, 0, len(raw)+64)
		buf = append(buf, "event: "+name+"\n"...)
		if id != "" {
			buf = append(buf, "id: "+id+"\n"...)
		}
		buf = append(buf, "data: "...)
		buf = append(buf, raw...)
		buf = append(buf, "\n\n"...)
		_, err := s.w.Write(buf)
		return err
	})
}

// Close stops the keepalive.
func (s *EventStream) Close() {
	close(s.stop)
	<-s.done
}
