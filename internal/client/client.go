// Package client is the typed Go client of Autogate's /v1 API. The CLI uses
// nothing else to talk to a gateway. Every non-2xx answer becomes an *Error
// carrying the server's problem document, so callers branch on Status.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// Client calls one gateway (or manager).
type Client struct {
	base  string
	token string
	http  *http.Client
	// prefix replaces "/v1" in every path: "/v1/clusters/{id}" routes the
	// calls through a Gateway Manager to one cluster.
	prefix string
	retry  Retry
}

// Cluster returns a client that sends every /v1 call through the Gateway
// Manager c points at to cluster id: /v1/services becomes
// /v1/clusters/{id}/services, answered by that cluster's active gateway.
func (c *Client) Cluster(id string) *Client {
	cc := *c
	cc.prefix = "/v1/clusters/" + url.PathEscape(id)
	return &cc
}

// Clusters lists the clusters registered with the Gateway Manager c points
// at, with their connection state (never routed, even on a Cluster client).
func (c *Client) Clusters(ctx context.Context) ([]wire.Cluster, error) {
	cc := *c
	cc.prefix = ""
	return all[wire.Cluster](ctx, &cc, "/v1/clusters", nil)
}

// all follows a listing's pages (1000 items each) to the end.
func all[T any](ctx context.Context, c *Client, path string, q url.Values) ([]T, error) {
	var out []T
	if q == nil {
		q = url.Values{}
	}
	q.Set("limit", "1000")
	for {
		var page wire.Page[T]
		if _, err := c.do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
		if page.NextPageToken == "" {
			return out, nil
		}
		q.Set("pageToken", page.NextPageToken)
	}
}

// CreateCluster registers a cluster with the Gateway Manager c points at
// (never routed); the answer holds the cluster's credential, shown once.
func (c *Client) CreateCluster(ctx context.Context, req wire.CreateClusterRequest) (wire.CreatedCluster, error) {
	cc := *c
	cc.prefix = ""
	var out wire.CreatedCluster
	_, err := cc.do(ctx, http.MethodPost, "/v1/clusters", req, &out)
	return out, err
}

// TLS says how to trust the server.
type TLS struct {
	// CAFile is a PEM bundle to trust in addition to the system roots
	// (the gateway's self-signed certificate, for instance).
	CAFile string
	// Insecure skips verification. For throwaway tests only.
	Insecure bool
}

// New returns a client for server (an http:// or https:// URL).
func New(server, token string, t TLS) (*Client, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want https://host:port", server)
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.Insecure} //nolint:gosec // opt-in flag
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates", t.CAFile)
		}
		tcfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tcfg
	tr.MaxIdleConnsPerHost = 64
	return &Client{base: strings.TrimRight(server, "/"), token: token, http: &http.Client{Transport: tr}, retry: DefaultRetry}, nil
}

// Error is a non-2xx answer.
type Error struct {
	Status  int
	Problem wire.Problem
}

func (e *Error) Error() string {
	msg := e.Problem.Detail
	if msg == "" {
		msg = e.Problem.Title
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	for _, d := range e.Problem.Errors {
		if d.Location != "" {
			msg += fmt.Sprintf("\n  %s: %s", d.Location, d.Message)
		} else if d.Message != "" {
			msg += "\n  " + d.Message
		}
	}
	return msg
}

// errorOf is a non-2xx answer as an *Error: its problem document, or its
// text when it is not one.
func errorOf(status int, raw []byte) *Error {
	e := &Error{Status: status}
	if json.Unmarshal(raw, &e.Problem) != nil {
		e.Problem.Detail = strings.TrimSpace(string(raw))
	}
	return e
}

// StatusOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// do makes one call, retried as c.retry says; GET is idempotent.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	return c.call(ctx, method, path, body, out, method == http.MethodGet)
}

// call makes one call; idempotent says whether it may be repeated after an
// outcome that is not known (see Retry).
func (c *Client) call(ctx context.Context, method, path string, body, out any, idempotent bool) (int, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	if rest, ok := strings.CutPrefix(path, "/v1/"); ok && c.prefix != "" {
		path = c.prefix + "/" + rest
	}
	rt := newRetrier(c.retry)
	for attempt := 1; ; attempt++ {
		st, after, transport, err := c.once(ctx, method, path, body != nil, raw, out)
		if err == nil || !rt.next(ctx, method, path, attempt, st, after, transport, idempotent, err) {
			return st, err
		}
	}
}

// once makes one try. transport reports that no answer came.
func (c *Client) once(ctx context.Context, method, path string, hasBody bool, raw []byte, out any) (st int, after time.Duration, transport bool, err error) {
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, 0, false, err
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, 0, true, fmt.Errorf("%s %s: %w", method, c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, 0, true, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, retryAfter(resp.Header), false, errorOf(resp.StatusCode, body)
	}
	if out != nil && len(body) > 0 {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, 0, false, fmt.Errorf("%s %s: decode response: %w", method, path, err)
		}
	}
	return resp.StatusCode, 0, false, nil
}

// Plural returns the API collection name of a kind.
func Plural(k resource.Kind) string {
	if k == resource.KindRepository {
		return "repositories"
	}
	return string(k) + "s"
}

// Login exchanges a password for a token.
func (c *Client) Login(ctx context.Context, user, password string) (wire.LoginToken, error) {
	var out wire.LoginToken
	_, err := c.do(ctx, http.MethodPost, "/v1/login", wire.LoginRequest{Username: user, Password: password}, &out)
	return out, err
}

// Logout revokes the client's token.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/logout", nil, nil)
	return err
}

// WhoAmI describes the caller.
func (c *Client) WhoAmI(ctx context.Context) (wire.WhoAmI, error) {
	var out wire.WhoAmI
	_, err := c.do(ctx, http.MethodGet, "/v1/whoami", nil, &out)
	return out, err
}

// Get loads a resource of kind k into a new object.
func (c *Client) Get(ctx context.Context, k resource.Kind, name string) (resource.Object, error) {
	o, err := resource.New(k)
	if err != nil {
		return nil, err
	}
	_, err = c.do(ctx, http.MethodGet, "/v1/"+Plural(k)+"/"+url.PathEscape(name), nil, o)
	return o, err
}

// List loads every resource of kind k, following pages.
func (c *Client) List(ctx context.Context, k resource.Kind) ([]json.RawMessage, error) {
	return all[json.RawMessage](ctx, c, "/v1/"+Plural(k), nil)
}

// Create stores o and updates it with the server's answer.
func (c *Client) Create(ctx context.Context, o resource.Object) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/"+Plural(resource.KindOf(o)), o, o)
	return err
}

// Update replaces o (o.Version must be current) and updates it in place.
func (c *Client) Update(ctx context.Context, o resource.Object) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/"+Plural(resource.KindOf(o))+"/"+url.PathEscape(o.GetMeta().Name), o, o)
	return err
}

// Delete removes a resource; version 0 means whatever is current.
func (c *Client) Delete(ctx context.Context, k resource.Kind, name string, version int64) error {
	p := "/v1/" + Plural(k) + "/" + url.PathEscape(name)
	if version > 0 {
		p += "?version=" + strconv.FormatInt(version, 10)
	}
	_, err := c.do(ctx, http.MethodDelete, p, nil, nil)
	return err
}

// Run submits a run. For a sync run it returns when the execution ended or
// the server's wait ran out (then the execution is not terminal yet).
func (c *Client) Run(ctx context.Context, service string, req wire.RunRequest) (*wire.Execution, error) {
	var e wire.Execution
	// A run with a request key is idempotent: a repeat returns the first.
	_, err := c.call(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(service)+"/run", req, &e, req.RequestKey != "")
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// Wait waits up to timeout for an execution to end and returns its state.
func (c *Client) Wait(ctx context.Context, id string, timeout time.Duration) (*wire.Execution, error) {
	var e wire.Execution
	s := int(timeout.Seconds())
	_, err := c.do(ctx, http.MethodGet, "/v1/executions/"+url.PathEscape(id)+"/wait?timeout="+strconv.Itoa(s), nil, &e)
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// Execution loads one execution.
func (c *Client) Execution(ctx context.Context, id string) (*wire.Execution, error) {
	var e wire.Execution
	if _, err := c.do(ctx, http.MethodGet, "/v1/executions/"+url.PathEscape(id), nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// ExecutionFilter narrows a listing.
type ExecutionFilter struct {
	Status  string
	Service string
	Limit   int
}

// Executions lists executions, newest first, up to f.Limit (default 100).
func (c *Client) Executions(ctx context.Context, f ExecutionFilter) ([]*wire.Execution, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var all []*wire.Execution
	tok := ""
	for len(all) < f.Limit {
		q := url.Values{"limit": {strconv.Itoa(min(f.Limit-len(all), 1000))}}
		if f.Status != "" {
			q.Set("status", f.Status)
		}
		if f.Service != "" {
			q.Set("service", f.Service)
		}
		if tok != "" {
			q.Set("pageToken", tok)
		}
		var page wire.ExecutionPage
		if _, err := c.do(ctx, http.MethodGet, "/v1/executions?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextPageToken == "" {
			break
		}
		tok = page.NextPageToken
	}
	return all, nil
}

// Cancel cancels an execution.
func (c *Client) Cancel(ctx context.Context, id string) (*wire.Execution, error) {
	var e wire.Execution
	if _, err := c.do(ctx, http.MethodPost, "/v1/executions/"+url.PathEscape(id)+"/cancel", nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Nodes lists the cluster's nodes.
func (c *Client) Nodes(ctx context.Context) ([]wire.Node, error) {
	return all[wire.Node](ctx, c, "/v1/nodes", nil)
}

// Users lists users.
func (c *Client) Users(ctx context.Context) ([]wire.User, error) {
	return all[wire.User](ctx, c, "/v1/users", nil)
}

// CreateUser adds a user.
func (c *Client) CreateUser(ctx context.Context, req wire.CreateUserRequest) (wire.User, error) {
	var u wire.User
	_, err := c.do(ctx, http.MethodPost, "/v1/users", req, &u)
	return u, err
}

// UpdateUser changes a user's role or password, revoking its tokens.
func (c *Client) UpdateUser(ctx context.Context, name string, req wire.UpdateUserRequest) (wire.User, error) {
	var u wire.User
	_, err := c.do(ctx, http.MethodPatch, "/v1/users/"+url.PathEscape(name), req, &u)
	return u, err
}

// DeleteUser removes a user.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(name), nil, nil)
	return err
}

// Redrive moves up to max dead-lettered messages back to the work queue.
func (c *Client) Redrive(ctx context.Context, max int) (int, error) {
	var out wire.RedriveResult
	_, err := c.do(ctx, http.MethodPost, "/v1/redrive", wire.RedriveRequest{Max: max}, &out)
	return out.Moved, err
}
