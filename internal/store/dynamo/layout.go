package dynamo

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// Attribute names of the table. The key attributes and the TTL attribute
// are part of the table's definition (CreateTable, CheckTable, the CDK
// stack); the others are this package's and lease/dynamo's item layout.
const (
	AttrPK        = "pk"
	AttrSK        = "sk"
	AttrExpiresAt = "expiresAt" // N, Unix seconds; the table's TTL attribute

	attrVersion   = "version"
	attrData      = "data"
	attrUpdatedAt = "updatedAt"
	attrChunks    = "chunks"
	attrChunkRef  = "chunkRef"
	attrSize      = "size"
	attrWriteID   = "writeId"

	// AttrLeaseHolder and AttrLeaseEpoch are the lease item's attributes a
	// fenced write checks: see Store.Fenced and lease/dynamo.
	AttrLeaseHolder = "holder"
	AttrLeaseEpoch  = "epoch"
)

// Reserved partition-key suffixes: no record kind may use them.
const (
	leaseKind = "lease"
	chunkTag  = "chunks"
)

// Sizes. DynamoDB caps an item at 400 KB (409,600 bytes) counting attribute
// names and values; a record's own attributes other than data take at most
// ~1.2 KB (the sort key is at most maxNameBytes), so data of up to
// maxInlineBytes stays in the record's item and larger data is split into
// chunk items of chunkBytes each.
const (
	maxInlineBytes = 380_000
	chunkBytes     = 380_000
	// MaxDataBytes is the largest record the store accepts (25 MiB, 69
	// chunk items); Create and Update refuse larger ones with
	// store.ErrTooLarge. The bound is a policy, not a DynamoDB limit: chunks
	// are written one item at a time and committed by one conditional write
	// of the record item, so no transaction limit applies.
	MaxDataBytes = 25 << 20
	maxNameBytes = 1024 // DynamoDB's sort-key limit
)

// LeaseKey returns the partition and sort key of cluster's lease item. The
// lease lives in the same table as the cluster's records, so a fenced write
// can check it in the same transaction.
func LeaseKey(cluster string) (pk, sk string) { return cluster + "#" + leaseKind, leaseKind }

// RecordPK returns the partition key of the items of one kind of one
// cluster. lease/dynamo writes node heartbeats under RecordPK(cluster,
// resource.KindNode), in this package's record layout.
func RecordPK(cluster string, kind resource.Kind) string { return cluster + "#" + string(kind) }

// chunkPK is the partition of one chunk set: every write of a large record
// gets a fresh random ref, so a chunk set is immutable once written and the
// chunks of different records spread over partitions.
func chunkPK(k store.Key, ref string) string {
	return RecordPK(k.Cluster, k.Kind) + "#" + chunkTag + "#" + ref
}

func chunkSK(i int) string { return fmt.Sprintf("%05d", i) }

// item is a record's item.
type item struct {
	PK        string    `dynamodbav:"pk"`
	SK        string    `dynamodbav:"sk"`
	Version   int64     `dynamodbav:"version"`
	Data      []byte    `dynamodbav:"data,omitempty"`
	UpdatedAt time.Time `dynamodbav:"updatedAt"`
	ExpiresAt int64     `dynamodbav:"expiresAt,omitempty"`
	Chunks    int       `dynamodbav:"chunks,omitempty"`
	ChunkRef  string    `dynamodbav:"chunkRef,omitempty"`
	Size      int       `dynamodbav:"size,omitempty"`
	// WriteID is random per write, so a writer whose request the SDK
	// retried after it had already been applied recognises its own item
	// in the failed condition instead of reporting a conflict.
	WriteID string `dynamodbav:"writeId,omitempty"`
	// ByStatus and ByService are the partition keys of the record in the
	// global secondary indexes of store.IndexStatus and store.IndexService
	// (indexPK); absent when the record has no term there, which keeps it
	// out of that index.
	ByStatus  string `dynamodbav:"byStatus,omitempty"`
	ByService string `dynamodbav:"byService,omitempty"`
}

// IndexName returns the name of the global secondary index that holds ix:
// partition key IndexAttr(ix) (S), sort key sk (S), all attributes
// projected, so one Query returns whole records.
func IndexName(ix store.Index) string { return "by-" + string(ix) }

// IndexAttr returns the attribute that is the partition key of ix's index.
func IndexAttr(ix store.Index) string {
	switch ix {
	case store.IndexStatus:
		return "byStatus"
	case store.IndexService:
		return "byService"
	}
	panic(fmt.Sprintf("dynamo: store index %q has no attribute", ix)) // store.Indexes and this switch disagree
}

// indexPK is the index partition key of the records of one kind of one
// cluster with term: the record partition's key plus the term, so every
// index key of cluster C starts with "C#" like its table keys (the IAM
// policy's dynamodb:LeadingKeys condition holds for index queries too).
func indexPK(cluster string, kind resource.Kind, term string) string {
	return RecordPK(cluster, kind) + "#" + term
}

// setTerms stores terms in it's index attributes.
func (it *item) setTerms(cluster string, kind resource.Kind, terms map[store.Index]string) {
	it.ByStatus, it.ByService = "", ""
	for ix, term := range terms {
		*it.termField(ix) = indexPK(cluster, kind, term)
	}
}

// terms reads it's index attributes back; nil if it has none.
func (it *item) terms(cluster string, kind resource.Kind) map[store.Index]string {
	var out map[store.Index]string
	pfx := indexPK(cluster, kind, "")
	for _, ix := range store.Indexes() {
		if v := *it.termField(ix); strings.HasPrefix(v, pfx) {
			if out == nil {
				out = map[store.Index]string{}
			}
			out[ix] = v[len(pfx):]
		}
	}
	return out
}

func (it *item) termField(ix store.Index) *string {
	switch ix {
	case store.IndexStatus:
		return &it.ByStatus
	case store.IndexService:
		return &it.ByService
	}
	panic(fmt.Sprintf("dynamo: store index %q has no attribute", ix)) // callers validate first
}

// chunk is one piece of a large record's data.
type chunk struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Data      []byte `dynamodbav:"data"`
	ExpiresAt int64  `dynamodbav:"expiresAt,omitempty"`
}

// expiresAt is the TTL attribute's value for t: Unix seconds rounded up,
// so a record never disappears before its time; 0 (no attribute) for the
// zero time.
func expiresAt(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return max(s, 1)
}

// expired reports whether an item with TTL value exp is gone at now. The
// condition expressions use the same rule: expiresAt <= now in seconds.
func expired(exp int64, now time.Time) bool { return exp != 0 && exp <= now.Unix() }

// ValidateCluster checks a cluster ID the way the store does: the resource
// rules (lower-case letters, digits, '-'), which keep '#' out of keys.
func ValidateCluster(cluster string) error { return resource.ValidateCluster(cluster) }

func validateKind(kind resource.Kind) error {
	if kind == "" {
		return fmt.Errorf("%w kind: empty", resource.ErrInvalid)
	}
	for _, r := range string(kind) {
		if r < 'a' || r > 'z' {
			return fmt.Errorf("%w kind %q: only a-z allowed", resource.ErrInvalid, kind)
		}
	}
	if kind == leaseKind {
		return fmt.Errorf("%w kind %q: reserved for the lease item", resource.ErrInvalid, kind)
	}
	return nil
}

func validateKey(k store.Key) error {
	if err := ValidateCluster(k.Cluster); err != nil {
		return fmt.Errorf("key %s: %w", k, err)
	}
	if err := validateKind(k.Kind); err != nil {
		return fmt.Errorf("key %s: %w", k, err)
	}
	switch {
	case k.Name == "":
		return fmt.Errorf("%w key %s: empty name", resource.ErrInvalid, k)
	case len(k.Name) > maxNameBytes:
		return fmt.Errorf("%w key %s: name longer than %d bytes", resource.ErrInvalid, k, maxNameBytes)
	case !utf8.ValidString(k.Name) || strings.ContainsRune(k.Name, 0):
		return fmt.Errorf("%w key %s: name is not UTF-8 or has a NUL byte", resource.ErrInvalid, k)
	}
	return nil
}
