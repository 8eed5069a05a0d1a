package ecsagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// URIEnv is the variable the ECS agent sets in every container of a task.
const URIEnv = "ECS_AGENT_URI"

// statePath is the scale-in protection endpoint under the agent URI.
const statePath = "/task-protection/v1/state"

// MaxExpiry is the longest protection ECS grants in one call (48 h).
const MaxExpiry = 2880 * time.Minute

// callTimeout bounds one call: the agent calls the ECS API, which it times
// out itself; this only stops a wedged agent from holding the caller.
const callTimeout = 15 * time.Second

// ErrProtection marks a protection call the agent answered with a failure
// or an error (AccessDeniedException, ThrottlingException, TASK_NOT_VALID,
// a timeout reaching ECS) or that did not reach the agent.
var ErrProtection = errors.New("ecs task scale-in protection")

// Client calls one task's agent endpoint.
type Client struct {
	state string
	http  *http.Client
}

// New returns a client for the agent at agentURI (ECS_AGENT_URI); hc nil
// uses a client with a per-call timeout.
func New(agentURI string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(agentURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %s %q is not an http URL", ErrProtection, URIEnv, agentURI)
	}
	if hc == nil {
		hc = &http.Client{Timeout: callTimeout}
	}
	return &Client{state: strings.TrimSuffix(agentURI, "/") + statePath, http: hc}, nil
}

// FromEnv returns the client of the task this process runs in; ok is false
// outside ECS (ECS_AGENT_URI unset).
func FromEnv(getenv func(string) string) (c *Client, ok bool, err error) {
	v := getenv(URIEnv)
	if v == "" {
		return nil, false, nil
	}
	c, err = New(v, nil)
	return c, err == nil, err
}

// request is the agent's PUT body.
type request struct {
	ProtectionEnabled bool `json:"ProtectionEnabled"`
	ExpiresInMinutes  int  `json:"ExpiresInMinutes,omitempty"`
}

// response is the agent's answer: one of protection, failure or error.
type response struct {
	Protection *struct {
		ProtectionEnabled bool   `json:"ProtectionEnabled"`
		ExpirationDate    string `json:"ExpirationDate"`
	} `json:"protection"`
	Failure *struct {
		Reason string  `json:"Reason"`
		Detail *string `json:"Detail"`
	} `json:"failure"`
	Error *struct {
		Code    string `json:"Code"`
		Message string `json:"Message"`
	} `json:"error"`
}

// Minutes is the whole number of minutes asked for a protection of d:
// rounded up, so the protection never ends before d.
func Minutes(d time.Duration) (int, error) {
	if d <= 0 || d > MaxExpiry {
		return 0, fmt.Errorf("%w: expiry %v must be from 1m to %v", ErrProtection, d, MaxExpiry)
	}
	return int((d + time.Minute - 1) / time.Minute), nil
}

// SetProtection turns the task's scale-in protection on for expires
// (rounded up to whole minutes, at most 48 h; asking again restarts the
// period) or off (expires is ignored). It returns nil only when the agent
// reports the state asked for.
func (c *Client) SetProtection(ctx context.Context, enabled bool, expires time.Duration) error {
	body := request{ProtectionEnabled: enabled}
	if enabled {
		m, err := Minutes(expires)
		if err != nil {
			return err
		}
		body.ExpiresInMinutes = m
	}
	data, _ := json.Marshal(body) // two plain fields always marshal
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.state, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtection, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: agent unreachable: %v", ErrProtection, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("%w: read the agent's answer: %v", ErrProtection, err)
	}
	var r response
	jsonErr := json.Unmarshal(raw, &r)
	switch {
	case jsonErr == nil && r.Error != nil:
		return fmt.Errorf("%w: %s: %s (HTTP %d)", ErrProtection, r.Error.Code, r.Error.Message, resp.StatusCode)
	case jsonErr == nil && r.Failure != nil:
		detail := ""
		if r.Failure.Detail != nil && *r.Failure.Detail != "" {
			detail = ": " + *r.Failure.Detail
		}
		return fmt.Errorf("%w: failure %s%s (HTTP %d)", ErrProtection, r.Failure.Reason, detail, resp.StatusCode)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("%w: HTTP %d: %s", ErrProtection, resp.StatusCode, snippet(raw))
	case jsonErr != nil || r.Protection == nil:
		return fmt.Errorf("%w: unexpected answer: %s", ErrProtection, snippet(raw))
	case r.Protection.ProtectionEnabled != enabled:
		return fmt.Errorf("%w: asked for protection %t, the agent reports %t", ErrProtection, enabled, r.Protection.ProtectionEnabled)
	}
	return nil
}

// snippet is the start of an answer, for an error message.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		s = "(empty)"
	}
	return s
}
