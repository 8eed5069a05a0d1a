package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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
	// Terms are the record's entries in the store's secondary indexes, at
	// most one per index; a record without a term for an index is not in
	// it (the indexes are sparse). Writes replace the record's terms with
	// the ones they carry, so a write without Terms takes the record out of
	// every index. The store does not interpret them either.
	Terms map[Index]string
}

// Index names one of the store's secondary indexes. ListIndex finds the
// records of one kind that carry a given term in one index without reading
// the others, so a query for a few records stays cheap however many
// records the kind holds. The catalog puts an execution's status in
// IndexStatus and its service in IndexService.
type Index string

// The store's indexes. Backends hold exactly these (on DynamoDB, one global
// secondary index each: see store/dynamo).
const (
	IndexStatus  Index = "status"
	IndexService Index = "service"
)

// Indexes returns every index, in a fixed order.
func Indexes() []Index { return []Index{IndexStatus, IndexService} }

// MaxTermBytes bounds an index term.
const MaxTermBytes = 512

// ValidateTerms checks that terms name only known indexes and that each
// term is non-empty UTF-8 without NUL bytes, at most MaxTermBytes long.
func ValidateTerms(terms map[Index]string) error {
	for ix, term := range terms {
		if !slices.Contains(Indexes(), ix) {
			return fmt.Errorf("%w index %q: unknown", resource.ErrInvalid, ix)
		}
		if err := validateTerm(term); err != nil {
			return fmt.Errorf("index %s: %w", ix, err)
		}
	}
	return nil
}

func validateTerm(term string) error {
	switch {
	case term == "":
		return fmt.Errorf("%w term: empty", resource.ErrInvalid)
	case len(term) > MaxTermBytes:
		return fmt.Errorf("%w term: longer than %d bytes", resource.ErrInvalid, MaxTermBytes)
	case !utf8.ValidString(term) || strings.ContainsRune(term, 0):
		return fmt.Errorf("%w term %q: not UTF-8 or has a NUL byte", resource.ErrInvalid, term)
	}
	return nil
}

// ValidateQuery checks the index and term of a ListIndex call.
func ValidateQuery(ix Index, term string) error {
	if !slices.Contains(Indexes(), ix) {
		return fmt.Errorf("%w index %q: unknown", resource.ErrInvalid, ix)
	}
	return validateTerm(term)
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
	// ListIndex returns one page of a cluster's records of one kind whose
	// term in index ix is term, ascending by name, and the token of the
	// next page ("" at the end). It reads only those records, never the
	// rest of the kind. Unlike List it may lag writes briefly where the
	// backend's indexes are eventually consistent (DynamoDB): a record just
	// written can be missing, or still listed under its previous term with
	// its previous data, so callers that act on what it returns re-read
	// the record (a conditional write does that anyway).
	ListIndex(ctx context.Context, cluster string, kind resource.Kind, ix Index, term string, opts ListOptions) ([]Record, string, error)
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
