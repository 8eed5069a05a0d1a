package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/autogate/autogate/internal/resource"
)

// Errors callers branch on. Backends wrap them with context.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("version conflict")
	// ErrFenced means the writer's lease epoch is no longer current: it has
	// been deposed and must stop acting.
	ErrFenced = errors.New("fenced: lease epoch is no longer current")
	// ErrTooLarge means a record exceeds what the backend can hold.
	ErrTooLarge = errors.New("record too large")
	// ErrBadPageToken means a page token was not one this store issued.
	ErrBadPageToken = errors.New("invalid page token")
)

// Key addresses one record.
type Key struct {
	Cluster string        `json:"cluster"`
	Kind    resource.Kind `json:"kind"`
	Name    string        `json:"name"`
}

func (k Key) String() string { return fmt.Sprintf("%s/%s/%s", k.Cluster, k.Kind, k.Name) }

// Record is one stored document.
type Record struct {
	Key
	// Version is the record's optimistic-concurrency counter.
	Version int64
	// Data is the JSON document; the store does not interpret it.
	Data []byte
	// ExpiresAt, when set, is when the record stops existing (executions
	// past their retention period).
	ExpiresAt time.Time
	UpdatedAt time.Time
}

// ListOptions bounds a List call.
type ListOptions struct {
	// Limit is the page size; 0 means DefaultPageSize, and it is capped at
	// MaxPageSize.
	Limit int
	// PageToken continues a previous listing; empty starts at the beginning.
	PageToken string
	// Prefix, when set, keeps only names starting with it.
	Prefix string
}

// Page sizes.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Store is the record store the gateway and runners depend on.
type Store interface {
	// Get returns the record, or ErrNotFound.
	Get(ctx context.Context, key Key) (Record, error)
	// Create writes a new record at version 1, or returns ErrExists.
	Create(ctx context.Context, rec Record) (Record, error)
	// Update replaces the record if rec.Version is its current version and
	// returns it at the next version; ErrConflict if not, ErrNotFound if absent.
	Update(ctx context.Context, rec Record) (Record, error)
	// Delete removes the record. A version of 0 deletes unconditionally;
	// otherwise it must match (ErrConflict). ErrNotFound if absent.
	Delete(ctx context.Context, key Key, version int64) error
	// List returns one page of a cluster's records of one kind, ascending by
	// name, and the token of the next page ("" at the end).
	List(ctx context.Context, cluster string, kind resource.Kind, opts ListOptions) ([]Record, string, error)
}

// EffectiveLimit returns the page size opts asks for, within bounds.
func (o ListOptions) EffectiveLimit() int {
	switch {
	case o.Limit <= 0:
		return DefaultPageSize
	case o.Limit > MaxPageSize:
		return MaxPageSize
	}
	return o.Limit
}

// Expired reports whether r has expired at now.
func (r Record) Expired(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}
