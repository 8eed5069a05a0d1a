package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/autogate/autogate/internal/wire"
)

// Output is one `output` event: new text of one stream and its event ID
// (the offsets to resume after it).
type Output struct {
	wire.OutputEvent
	ID string
}

// Reconnecting after a dropped stream: the wait doubles from followBackoff
// up to followMaxBackoff, and the follow gives up after followGiveUp
// without a connection that delivered anything.
const (
	followBackoff    = 250 * time.Millisecond
	followMaxBackoff = 5 * time.Second
	followGiveUp     = 2 * time.Minute
	maxEventBytes    = 4 << 20
)

// errNoEnd means a stream closed before its end event.
var errNoEnd = errors.New("output stream closed before the run ended")

// FollowOutput streams execution id's output from the event ID from (""
// for the start), calling fn with each chunk as the service writes it,
// and returns the end event. A dropped connection (or a stream the server
// ended early, or a 5xx such as a standby or a failover) is resumed with
// Last-Event-ID from the last chunk received, so nothing is printed twice
// or skipped; a 4xx answer (unknown execution, no permission) is returned.
func (c *Client) FollowOutput(ctx context.Context, id, from string, fn func(Output) error) (wire.OutputEnd, error) {
	last := from
	backoff := followBackoff
	progress := time.Now()
	for {
		end, got, err := c.followOnce(ctx, id, last, func(o Output) error {
			last = o.ID
			return fn(o)
		})
		if err == nil {
			return end, nil
		}
		var cbErr callbackError
		if errors.As(err, &cbErr) {
			return wire.OutputEnd{}, cbErr.err
		}
		if ctx.Err() != nil || StatusOf(err) != 0 && StatusOf(err) < 500 {
			return wire.OutputEnd{}, err
		}
		if got {
			progress, backoff = time.Now(), followBackoff
		}
		if time.Since(progress) > followGiveUp {
			return wire.OutputEnd{}, fmt.Errorf("following execution %s: no output stream for %v: %w", id, followGiveUp, err)
		}
		select {
		case <-ctx.Done():
			return wire.OutputEnd{}, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, followMaxBackoff)
	}
}

// callbackError carries fn's error out of the stream unretried.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// followOnce reads one connection's events; got says whether it delivered
// anything.
func (c *Client) followOnce(ctx context.Context, id, from string, fn func(Output) error) (end wire.OutputEnd, got bool, err error) {
	path := "/v1/executions/" + url.PathEscape(id) + "/output"
	if rest, ok := strings.CutPrefix(path, "/v1/"); ok && c.prefix != "" {
		path = c.prefix + "/" + rest
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return end, false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if from != "" {
		req.Header.Set("Last-Event-ID", from)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return end, false, fmt.Errorf("GET %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) // a truncated problem still says something
		return end, false, errorOf(resp.StatusCode, raw)
	}
	ended := false
	err = readEvents(resp.Body, func(name, evID, data string) error {
		switch name {
		case "output":
			var o Output
			if err := json.Unmarshal([]byte(data), &o.OutputEvent); err != nil {
				return fmt.Errorf("output event %q: %w", data, err)
			}
			o.ID, got = evID, true
			if err := fn(o); err != nil {
				return callbackError{err}
			}
		case "end":
			if err := json.Unmarshal([]byte(data), &end); err != nil {
				return fmt.Errorf("end event %q: %w", data, err)
			}
			ended = true
			return io.EOF
		}
		return nil // unknown events are for newer clients
	})
	switch {
	case ended:
		return end, got, nil
	case err == nil:
		err = errNoEnd
	}
	return end, got, err
}

// readEvents parses a text/event-stream, calling fn per event, until the
// stream ends (nil) or fn returns an error (returned, io.EOF as nil).
func readEvents(r io.Reader, fn func(name, id, data string) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var name, id string
	var data []string
	for {
		line, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if line == "" {
			if len(data) > 0 || name != "" {
				if name == "" {
					name = "message"
				}
				if err := fn(name, id, strings.Join(data, "\n")); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
			name, data = "", nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "": // a comment: the keepalive
		case "event":
			name = value
		case "id":
			id = value
		case "data":
			data = append(data, value)
		}
	}
}

func readLine(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		sb.Write(chunk)
		if sb.Len() > maxEventBytes {
			return "", fmt.Errorf("output stream: a line longer than %d bytes", maxEventBytes)
		}
		if err == nil {
			return strings.TrimSuffix(strings.TrimSuffix(sb.String(), "\n"), "\r"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
	}
}
