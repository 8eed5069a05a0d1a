// Package catalog gives typed access to one cluster's resources and
// executions over a store.Store: it (de)serialises them, seals secret values
// with the cluster keyring before they reach the store, and retries
// execution state changes on version conflicts so concurrent writers (the
// gateway cancelling, a runner finishing) compose instead of losing updates.
//
// Secret values never leave the catalog except through SecretValue; every
// other read returns the secret's metadata only.
package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store"
)

// Catalog is one cluster's typed view of a store.
type Catalog struct {
	Store   store.Store
	Cluster string
	Keyring *secret.Keyring
	Clock   clock.Clock
	// Retention is how long executions are kept after creation; default 30 days.
	Retention time.Duration
}

// DefaultRetention is the execution retention when none is configured.
const DefaultRetention = 30 * 24 * time.Hour

func (c *Catalog) key(k resource.Kind, name string) store.Key {
	return store.Key{Cluster: c.Cluster, Kind: k, Name: name}
}

// secretDoc is how a secret is stored: metadata plus the sealed value.
type secretDoc struct {
	resource.Meta
	Description string `json:"description,omitempty"`
	Sealed      []byte `json:"sealed"`
}

func (c *Catalog) encode(ctx context.Context, o resource.Object) ([]byte, error) {
	if s, ok := o.(*resource.Secret); ok {
		sealed, err := c.Keyring.Seal(ctx, s.Value, []byte(c.key(resource.KindSecret, s.Name).String()))
		if err != nil {
			return nil, fmt.Errorf("seal secret %s: %w", s.Name, err)
		}
		doc := secretDoc{Meta: s.Meta, Description: s.Description, Sealed: sealed}
		doc.Version = 0
		return json.Marshal(doc)
	}
	m := *o.GetMeta()
	o.GetMeta().Version = 0 // the record holds the version
	defer func() { *o.GetMeta() = m }()
	return json.Marshal(o)
}

func decodeInto(rec store.Record, o resource.Object) error {
	if s, ok := o.(*resource.Secret); ok {
		var doc secretDoc
		if err := json.Unmarshal(rec.Data, &doc); err != nil {
			return fmt.Errorf("decode %s: %w", rec.Key, err)
		}
		*s = resource.Secret{Meta: doc.Meta, Description: doc.Description}
	} else if err := json.Unmarshal(rec.Data, o); err != nil {
		return fmt.Errorf("decode %s: %w", rec.Key, err)
	}
	o.GetMeta().Version = rec.Version
	return nil
}

// Create validates and stores a new resource; o's version and times are set.
func (c *Catalog) Create(ctx context.Context, o resource.Object) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if s, ok := o.(*resource.Secret); ok {
		if err := s.ValidateNew(); err != nil {
			return err
		}
	}
	m := o.GetMeta()
	now := c.Clock.Now().UTC()
	m.CreatedAt, m.UpdatedAt = now, now
	data, err := c.encode(ctx, o)
	if err != nil {
		return err
	}
	rec, err := c.Store.Create(ctx, store.Record{Key: c.key(resource.KindOf(o), m.Name), Data: data})
	if err != nil {
		return fmt.Errorf("create %s %s: %w", resource.KindOf(o), m.Name, err)
	}
	m.Version = rec.Version
	if s, ok := o.(*resource.Secret); ok {
		s.Warning = s.RedactionWarning()
		s.Value = nil
	}
	return nil
}

// Update replaces a resource if o.Version is current (store.ErrConflict if
// not). A secret updated without a value keeps its old value.
func (c *Catalog) Update(ctx context.Context, o resource.Object) error {
	if err := o.Validate(); err != nil {
		return err
	}
	m := o.GetMeta()
	k := resource.KindOf(o)
	cur, err := c.Store.Get(ctx, c.key(k, m.Name))
	if err != nil {
		return fmt.Errorf("update %s %s: %w", k, m.Name, err)
	}
	if m.Version != 0 && m.Version != cur.Version {
		return fmt.Errorf("update %s %s: you edited version %d, the current one is %d: %w", k, m.Name, m.Version, cur.Version, store.ErrConflict)
	}
	if m.Version == 0 {
		return fmt.Errorf("%w update %s %s: version is required (get the resource first)", resource.ErrInvalid, k, m.Name)
	}
	var old struct {
		CreatedAt time.Time `json:"createdAt"`
	}
	_ = json.Unmarshal(cur.Data, &old) // best effort: a missing createdAt stays zero
	m.CreatedAt, m.UpdatedAt = old.CreatedAt, c.Clock.Now().UTC()
	warning := ""
	if s, ok := o.(*resource.Secret); ok {
		warning = s.RedactionWarning() // of a new value only
	}
	if s, ok := o.(*resource.Secret); ok && s.Value == nil {
		v, err := c.SecretValue(ctx, s.Name)
		if err != nil {
			return err
		}
		s.Value = v
	}
	if c.unchanged(ctx, cur, o) {
		// Nothing to write: keep the version, so apply is idempotent.
		if err := decodeInto(cur, o); err != nil {
			return err
		}
		if s, ok := o.(*resource.Secret); ok {
			s.Value = nil
		}
		return nil
	}
	data, err := c.encode(ctx, o)
	if err != nil {
		return err
	}
	rec, err := c.Store.Update(ctx, store.Record{Key: c.key(k, m.Name), Version: cur.Version, Data: data})
	if err != nil {
		return fmt.Errorf("update %s %s: %w", k, m.Name, err)
	}
	m.Version = rec.Version
	if s, ok := o.(*resource.Secret); ok {
		s.Value, s.Warning = nil, warning
	}
	return nil
}

// unchanged reports whether o says the same as the stored record cur,
// ignoring bookkeeping. Secrets compare their opened values.
func (c *Catalog) unchanged(ctx context.Context, cur store.Record, o resource.Object) bool {
	old, err := resource.New(resource.KindOf(o))
	if err != nil || decodeInto(cur, old) != nil {
		return false
	}
	if s, ok := o.(*resource.Secret); ok {
		v, err := c.SecretValue(ctx, s.Name)
		if err != nil || subtle.ConstantTimeCompare(v, s.Value) != 1 {
			return false
		}
		old.(*resource.Secret).Value = s.Value
	}
	strip := func(x resource.Object) []byte {
		m := *x.GetMeta()
		defer func() { *x.GetMeta() = m }()
		*x.GetMeta() = resource.Meta{Name: m.Name}
		b, _ := json.Marshal(x) // resource types always marshal
		return b
	}
	return bytes.Equal(strip(old), strip(o))
}

// Delete removes a resource; version 0 deletes whatever is current.
func (c *Catalog) Delete(ctx context.Context, k resource.Kind, name string, version int64) error {
	if err := resource.ValidateName(name); err != nil {
		return err
	}
	if err := c.Store.Delete(ctx, c.key(k, name), version); err != nil {
		return fmt.Errorf("delete %s %s: %w", k, name, err)
	}
	return nil
}

// Get loads a resource of kind k (secrets without their value).
func (c *Catalog) Get(ctx context.Context, k resource.Kind, name string) (resource.Object, error) {
	if err := resource.ValidateName(name); err != nil {
		return nil, err
	}
	o, err := resource.New(k)
	if err != nil {
		return nil, err
	}
	rec, err := c.Store.Get(ctx, c.key(k, name))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", k, name, err)
	}
	if err := decodeInto(rec, o); err != nil {
		return nil, err
	}
	return o, nil
}

// List returns one page of resources of kind k.
func (c *Catalog) List(ctx context.Context, k resource.Kind, opts store.ListOptions) ([]resource.Object, string, error) {
	recs, next, err := c.Store.List(ctx, c.Cluster, k, opts)
	if err != nil {
		return nil, "", fmt.Errorf("list %s: %w", k, err)
	}
	out := make([]resource.Object, 0, len(recs))
	for _, rec := range recs {
		o, err := resource.New(k)
		if err != nil {
			return nil, "", err
		}
		if err := decodeInto(rec, o); err != nil {
			return nil, "", err
		}
		out = append(out, o)
	}
	return out, next, nil
}

// ListAll returns every resource of kind k.
func (c *Catalog) ListAll(ctx context.Context, k resource.Kind) ([]resource.Object, error) {
	var all []resource.Object
	tok := ""
	for {
		page, next, err := c.List(ctx, k, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		tok = next
	}
}

// Service loads a service.
func (c *Catalog) Service(ctx context.Context, name string) (*resource.Service, error) {
	o, err := c.Get(ctx, resource.KindService, name)
	if err != nil {
		return nil, err
	}
	return o.(*resource.Service), nil
}

// Decorator loads a decorator.
func (c *Catalog) Decorator(ctx context.Context, name string) (*resource.Decorator, error) {
	o, err := c.Get(ctx, resource.KindDecorator, name)
	if err != nil {
		return nil, err
	}
	return o.(*resource.Decorator), nil
}

// Repository loads a repository.
func (c *Catalog) Repository(ctx context.Context, name string) (*resource.Repository, error) {
	o, err := c.Get(ctx, resource.KindRepository, name)
	if err != nil {
		return nil, err
	}
	return o.(*resource.Repository), nil
}

// SecretValue opens a stored secret's value.
func (c *Catalog) SecretValue(ctx context.Context, name string) (secret.Value, error) {
	if err := resource.ValidateName(name); err != nil {
		return nil, err
	}
	k := c.key(resource.KindSecret, name)
	rec, err := c.Store.Get(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	var doc secretDoc
	if err := json.Unmarshal(rec.Data, &doc); err != nil {
		return nil, fmt.Errorf("decode secret %s: %w", name, err)
	}
	v, err := c.Keyring.Open(ctx, doc.Sealed, []byte(k.String()))
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}

// ResealSecrets re-seals every stored secret of the cluster whose value is
// not sealed under the keyring's current data key (after a key rotation),
// leaving its metadata and value unchanged. Each write is conditional on the
// record's version: a secret changed meanwhile was sealed by its writer and
// is counted as skipped. It returns how many it re-sealed and skipped.
func (c *Catalog) ResealSecrets(ctx context.Context) (resealed, skipped int, err error) {
	current, err := c.Keyring.CurrentKeyID(ctx)
	if err != nil {
		return 0, 0, err
	}
	tok := ""
	for {
		recs, next, err := c.Store.List(ctx, c.Cluster, resource.KindSecret, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			return resealed, skipped, fmt.Errorf("list secrets: %w", err)
		}
		for _, rec := range recs {
			var doc secretDoc
			if err := json.Unmarshal(rec.Data, &doc); err != nil {
				return resealed, skipped, fmt.Errorf("decode %s: %w", rec.Key, err)
			}
			if current != "" && secret.KeyID(doc.Sealed) == current {
				continue
			}
			aad := []byte(rec.Key.String())
			v, err := c.Keyring.Open(ctx, doc.Sealed, aad)
			if err != nil {
				return resealed, skipped, fmt.Errorf("secret %s: %w", rec.Key.Name, err)
			}
			doc.Sealed, err = c.Keyring.Seal(ctx, v, aad)
			clear(v)
			if err != nil {
				return resealed, skipped, fmt.Errorf("seal secret %s: %w", rec.Key.Name, err)
			}
			data, err := json.Marshal(doc)
			if err != nil {
				return resealed, skipped, err
			}
			_, err = c.Store.Update(ctx, store.Record{Key: rec.Key, Version: rec.Version, Data: data, ExpiresAt: rec.ExpiresAt})
			switch {
			case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
				skipped++
			case err != nil:
				return resealed, skipped, fmt.Errorf("update secret %s: %w", rec.Key.Name, err)
			default:
				resealed++
			}
		}
		if next == "" {
			return resealed, skipped, nil
		}
		tok = next
	}
}

// SealInputs encrypts an execution's unredacted inputs, bound to its ID.
func (c *Catalog) SealInputs(ctx context.Context, id string, inputs map[string]any) ([]byte, error) {
	raw, err := json.Marshal(inputs)
	if err != nil {
		return nil, err
	}
	sealed, err := c.Keyring.Seal(ctx, raw, []byte(c.execKey(id).String()))
	if err != nil {
		return nil, fmt.Errorf("execution %s inputs: %w", id, err)
	}
	return sealed, nil
}

// OpenInputs returns an execution's unredacted inputs.
func (c *Catalog) OpenInputs(ctx context.Context, e *execution.Execution) (map[string]any, error) {
	if len(e.SealedInputs) == 0 {
		return e.Inputs, nil
	}
	raw, err := c.Keyring.Open(ctx, e.SealedInputs, []byte(c.execKey(e.ID).String()))
	if err != nil {
		return nil, fmt.Errorf("execution %s inputs: %w", e.ID, err)
	}
	var in map[string]any
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("execution %s inputs: %w", e.ID, err)
	}
	return in, nil
}

// Executions are stored under a name whose byte order is the reverse of the
// ID's, so a plain ascending List returns the newest first.
func invert(id string) string {
	b := []byte(id)
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	for i, ch := range b {
		if j := strings.IndexByte(alphabet, ch); j >= 0 {
			b[i] = alphabet[31-j]
		}
	}
	return string(b)
}

func (c *Catalog) execKey(id string) store.Key { return c.key(resource.KindExecution, invert(id)) }

// CreateExecution stores a new execution record and sets e.Version.
func (c *Catalog) CreateExecution(ctx context.Context, e *execution.Execution) error {
	e.Version = 0
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	rec, err := c.Store.Create(ctx, store.Record{Key: c.execKey(e.ID), Data: data, ExpiresAt: c.expiry(e), Terms: execTerms(e)})
	if err != nil {
		return fmt.Errorf("create execution %s: %w", e.ID, err)
	}
	e.Version = rec.Version
	return nil
}

func (c *Catalog) expiry(e *execution.Execution) time.Time {
	r := c.Retention
	if r <= 0 {
		r = DefaultRetention
	}
	return e.CreatedAt.Add(r)
}

// Execution loads one execution.
func (c *Catalog) Execution(ctx context.Context, id string) (*execution.Execution, error) {
	if err := execution.ValidateID(id); err != nil {
		return nil, err
	}
	rec, err := c.Store.Get(ctx, c.execKey(id))
	if errors.Is(err, store.ErrNotFound) {
		// Not the store's error: its key is an internal, reversed ID.
		return nil, fmt.Errorf("execution %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("execution %s: %w", id, err)
	}
	return decodeExecution(rec)
}

// MaxSnapshot is the largest execution record Snapshot copies into a
// message: well under SQS's 256 KiB, so an envelope always fits.
const MaxSnapshot = 64 << 10

// Snapshot is e as recorded at e.Version, for a queue message, or nil when
// it is larger than MaxSnapshot (the runner then reads the record).
func Snapshot(e *execution.Execution) json.RawMessage {
	b, err := json.Marshal(e)
	if err != nil || len(b) > MaxSnapshot || e.Version == 0 {
		return nil // too large, or not yet written: the runner reads it
	}
	return b
}

// FromSnapshot decodes a Snapshot of execution id of c's cluster. A
// snapshot naming another execution or cluster, or without a version, is
// refused: the caller reads the record instead.
func (c *Catalog) FromSnapshot(id string, raw json.RawMessage) (*execution.Execution, error) {
	var e execution.Execution
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("execution %s: decode snapshot: %w", id, err)
	}
	if e.ID != id || e.Cluster != c.Cluster || e.Version <= 0 {
		return nil, fmt.Errorf("execution %s: snapshot of %s in cluster %q at version %d does not match", id, e.ID, e.Cluster, e.Version)
	}
	return &e, nil
}

func decodeExecution(rec store.Record) (*execution.Execution, error) {
	var e execution.Execution
	if err := json.Unmarshal(rec.Data, &e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", rec.Key, err)
	}
	e.Version = rec.Version
	return &e, nil
}

// ErrUnchanged may be returned by a Mutate function to skip the write. It is
// the execution package's, so a rule that does not apply skips the write too.
var ErrUnchanged = execution.ErrUnchanged

// MutateExecution applies fn to the current execution and writes it back
// conditionally, re-reading and re-applying on a version conflict (at most 16
// times). fn returning ErrUnchanged ends without writing; any other error
// aborts. It returns the execution as last written or read.
func (c *Catalog) MutateExecution(ctx context.Context, id string, fn func(e *execution.Execution) error) (*execution.Execution, error) {
	return c.mutate(ctx, id, nil, fn)
}

// MutateFrom is MutateExecution starting from known, the execution as the
// caller last read or wrote it (at known.Version), instead of a read: when
// nobody wrote it since, the change costs one conditional write and no
// read. A stale known costs a failed write, then it re-reads as
// MutateExecution does. fn gets a copy; known itself is not changed.
func (c *Catalog) MutateFrom(ctx context.Context, known *execution.Execution, fn func(e *execution.Execution) error) (*execution.Execution, error) {
	if known == nil || known.Version == 0 {
		return nil, fmt.Errorf("%w mutate: no known version of the execution", resource.ErrInvalid)
	}
	cp := *known
	return c.mutate(ctx, known.ID, &cp, fn)
}

func (c *Catalog) mutate(ctx context.Context, id string, known *execution.Execution, fn func(e *execution.Execution) error) (*execution.Execution, error) {
	for range 16 {
		e := known
		known = nil
		if e == nil {
			var err error
			if e, err = c.Execution(ctx, id); err != nil {
				return nil, err
			}
		}
		if err := fn(e); err != nil {
			if errors.Is(err, ErrUnchanged) {
				return e, nil
			}
			return e, err
		}
		ver := e.Version
		e.Version = 0
		data, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		rec, err := c.Store.Update(ctx, store.Record{Key: c.execKey(id), Version: ver, Data: data, ExpiresAt: c.expiry(e), Terms: execTerms(e)})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("update execution %s: %w", id, err)
		}
		e.Version = rec.Version
		return e, nil
	}
	return nil, fmt.Errorf("update execution %s: too many concurrent writers: %w", id, store.ErrConflict)
}

// ListExecutions returns one page of executions, newest first.
func (c *Catalog) ListExecutions(ctx context.Context, opts store.ListOptions) ([]*execution.Execution, string, error) {
	recs, next, err := c.Store.List(ctx, c.Cluster, resource.KindExecution, opts)
	if err != nil {
		return nil, "", fmt.Errorf("list executions: %w", err)
	}
	out := make([]*execution.Execution, 0, len(recs))
	for _, r := range recs {
		e, err := decodeExecution(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	return out, next, nil
}

// kindRequestKey is the store kind of request-key bindings.
const kindRequestKey resource.Kind = "requestkey"

// RequestKey binds a client's idempotency key to the execution it started
// and to what was asked for: the service and a hash of the inputs.
type RequestKey struct {
	ExecutionID string `json:"executionId"`
	Service     string `json:"service,omitempty"`
	InputsHash  string `json:"inputsHash,omitempty"`
}

// requestKeyName scopes key to its submitter; the stored name is a hash, so
// neither appears in the store.
func requestKeyName(submitter, key string) string {
	sum := sha256.Sum256([]byte(submitter + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

// ClaimRequestKey binds submitter's key to want, kept as long as
// executions are. If the key is already bound to an execution that exists,
// it changes nothing and returns that binding and execution; a key whose
// execution was never recorded (a submission that failed in between) is
// taken over. A nil execution means want now holds the key.
func (c *Catalog) ClaimRequestKey(ctx context.Context, submitter, key string, want RequestKey) (RequestKey, *execution.Execution, error) {
	k := c.key(kindRequestKey, requestKeyName(submitter, key))
	data, err := json.Marshal(want)
	if err != nil {
		return RequestKey{}, nil, err
	}
	r := c.Retention
	if r <= 0 {
		r = DefaultRetention
	}
	_, err = c.Store.Create(ctx, store.Record{Key: k, Data: data, ExpiresAt: c.Clock.Now().Add(r)})
	if err == nil {
		return want, nil, nil
	}
	if !errors.Is(err, store.ErrExists) {
		return RequestKey{}, nil, fmt.Errorf("request key: %w", err)
	}
	rec, err := c.Store.Get(ctx, k)
	if err != nil {
		return RequestKey{}, nil, fmt.Errorf("request key: %w", err)
	}
	var bound RequestKey
	if err := json.Unmarshal(rec.Data, &bound); err != nil {
		return RequestKey{}, nil, fmt.Errorf("request key: %w", err)
	}
	prev, err := c.Execution(ctx, bound.ExecutionID)
	if err == nil {
		return bound, prev, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return RequestKey{}, nil, err
	}
	rec.Data = data
	if _, err := c.Store.Update(ctx, rec); err != nil {
		return RequestKey{}, nil, fmt.Errorf("request key: %w", err)
	}
	return want, nil, nil
}

// execTerms are an execution's index terms: its status and its service, so
// periodic work finds the open ones and filters page through one status or
// service without reading the rest of the history. Every write of an
// execution goes through the catalog and carries them.
func execTerms(e *execution.Execution) map[store.Index]string {
	t := map[store.Index]string{store.IndexStatus: string(e.Status)}
	if e.Service != "" {
		t[store.IndexService] = e.Service
	}
	return t
}

// ExecutionFilter selects executions; empty fields match all.
type ExecutionFilter struct {
	Status  execution.Status
	Service string
}

func (f ExecutionFilter) match(e *execution.Execution) bool {
	return (f.Status == "" || e.Status == f.Status) && (f.Service == "" || e.Service == f.Service)
}

// FindExecutions returns one page of the executions f selects, newest
// first, and the next page's token. A filter is read through the store's
// index of its status or its service (the status's for an open status,
// which few executions have; else the service's if given), never through
// the whole history. Index entries may lag the records (see
// store.ListIndex), so every execution is checked against f again: a page
// may hold fewer than opts.Limit executions while a token remains.
func (c *Catalog) FindExecutions(ctx context.Context, f ExecutionFilter, opts store.ListOptions) ([]*execution.Execution, string, error) {
	var (
		recs []store.Record
		next string
		err  error
	)
	switch {
	case f.Status != "" && (!f.Status.Terminal() || f.Service == ""):
		recs, next, err = c.Store.ListIndex(ctx, c.Cluster, resource.KindExecution, store.IndexStatus, string(f.Status), opts)
	case f.Service != "":
		recs, next, err = c.Store.ListIndex(ctx, c.Cluster, resource.KindExecution, store.IndexService, f.Service, opts)
	default:
		recs, next, err = c.Store.List(ctx, c.Cluster, resource.KindExecution, opts)
	}
	if err != nil {
		return nil, "", fmt.Errorf("list executions: %w", err)
	}
	out := make([]*execution.Execution, 0, len(recs))
	for _, r := range recs {
		e, err := decodeExecution(r)
		if err != nil {
			return nil, "", err
		}
		if f.match(e) {
			out = append(out, e)
		}
	}
	return out, next, nil
}

// openStatuses are the statuses that are not terminal, in the order
// ListOpenExecutions visits them.
func openStatuses() []execution.Status {
	var out []execution.Status
	for _, st := range execution.Statuses {
		if !st.Terminal() {
			out = append(out, st)
		}
	}
	return out
}

// ListOpenExecutions returns one page of the executions that are not
// terminal (queued, then running, each newest first) and the next page's
// token, reading only those through the status index: periodic work costs
// what is open, not what is retained. An execution that changes status
// while a caller pages may be listed twice or missed until the next pass;
// the callers (Sweep, Reconcile) re-read each before acting on it.
func (c *Catalog) ListOpenExecutions(ctx context.Context, opts store.ListOptions) ([]*execution.Execution, string, error) {
	open := openStatuses()
	i, tok := 0, opts.PageToken
	if tok != "" {
		n, rest, ok := strings.Cut(tok, ":")
		if !ok || len(n) != 1 || n[0] < '0' || int(n[0]-'0') >= len(open) {
			return nil, "", fmt.Errorf("list open executions: %w %q", store.ErrBadPageToken, tok)
		}
		i, tok = int(n[0]-'0'), rest
	}
	page, next, err := c.FindExecutions(ctx, ExecutionFilter{Status: open[i]}, store.ListOptions{Limit: opts.Limit, PageToken: tok})
	if err != nil {
		return nil, "", err
	}
	switch {
	case next != "":
		next = fmt.Sprintf("%d:%s", i, next)
	case i+1 < len(open):
		next = fmt.Sprintf("%d:", i+1)
	}
	return page, next, nil
}

// CountOpenExecutions counts the executions that are not terminal through
// the status index, reading only those (index entries may lag the records
// by a moment: the count is for admission, not for acting on a run).
func (c *Catalog) CountOpenExecutions(ctx context.Context) (int, error) {
	n := 0
	for _, st := range openStatuses() {
		for tok := ""; ; {
			recs, next, err := c.Store.ListIndex(ctx, c.Cluster, resource.KindExecution, store.IndexStatus, string(st),
				store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
			if err != nil {
				return n, fmt.Errorf("count open executions: %w", err)
			}
			n += len(recs)
			if next == "" {
				break
			}
			tok = next
		}
	}
	return n, nil
}

// indexMarker is the record that says a cluster's executions all carry
// their index terms. Its kind is the catalog's own, not a resource kind.
const (
	indexMarkerKind resource.Kind = "catalog"
	indexMarkerName               = "executions-indexed-v1"
)

// IndexExecutions gives index terms to the executions written before
// records carried them (an older release), so the status and service
// indexes miss none, and returns how many it rewrote. The first call for a
// cluster pages once through the whole history and then writes a marker
// record; every later call is one Get. A record that changes meanwhile is
// skipped: whoever wrote it gave it its terms.
func (c *Catalog) IndexExecutions(ctx context.Context) (int, error) {
	marker := c.key(indexMarkerKind, indexMarkerName)
	if _, err := c.Store.Get(ctx, marker); err == nil {
		return 0, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("index executions: %w", err)
	}
	n := 0
	for tok := ""; ; {
		recs, next, err := c.Store.List(ctx, c.Cluster, resource.KindExecution, store.ListOptions{PageToken: tok, Limit: store.MaxPageSize})
		if err != nil {
			return n, fmt.Errorf("index executions: %w", err)
		}
		for _, r := range recs {
			e, err := decodeExecution(r)
			if err != nil {
				return n, err
			}
			want := execTerms(e)
			if maps.Equal(r.Terms, want) {
				continue
			}
			r.Terms = want
			_, err = c.Store.Update(ctx, r)
			switch {
			case err == nil:
				n++
			case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrNotFound):
			default:
				return n, fmt.Errorf("index execution %s: %w", e.ID, err)
			}
		}
		if tok = next; tok == "" {
			break
		}
	}
	if _, err := c.Store.Create(ctx, store.Record{Key: marker, Data: []byte(`{"indexed":true}`)}); err != nil && !errors.Is(err, store.ErrExists) {
		return n, fmt.Errorf("index executions: %w", err)
	}
	return n, nil
}
