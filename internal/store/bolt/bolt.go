package bolt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// Buckets: records holds the records; index holds one empty-valued key per
// (record, index term), cluster\0kind\0index\0term\0name, maintained in the
// same transaction as the record, so ListIndex seeks straight to one term's
// records.
var (
	bucket      = []byte("records")
	indexBucket = []byte("index")
)

// Store is a store.Store backed by one bbolt file.
type Store struct {
	db      *bbolt.DB
	clk     clock.Clock
	writes  chan writeReq
	closed  chan struct{}
	stopped chan struct{}
	once    sync.Once
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path. The file is
// locked: a second server on the same data directory fails here with a
// clear error rather than corrupting it.
func Open(path string, clk clock.Clock) (*Store, error) {
	if clk == nil {
		clk = clock.Real{}
	}
	// The free list is not written with each commit (as etcd does): a
	// durable write is a third cheaper, and the list is rebuilt by a scan
	// when the file is opened. Records are synced as before.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: locked by another process (is another autogate server using this data dir?)", path)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucket); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(indexBucket)
		return err
	}); err != nil {
		_ = db.Close() // the open error matters more
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	s := &Store{db: db, clk: clk, writes: make(chan writeReq), closed: make(chan struct{}), stopped: make(chan struct{})}
	go s.committer()
	return s, nil
}

// Close stops the committer and closes the database file. Writes after
// Close fail.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.closed) })
	<-s.stopped
	return s.db.Close()
}

// item is what one bbolt value holds.
type item struct {
	Version   int64           `json:"v"`
	ExpiresAt time.Time       `json:"e,omitzero"`
	UpdatedAt time.Time       `json:"u"`
	Data      json.RawMessage `json:"d"`
	// Terms are the record's index terms; the index bucket mirrors them.
	Terms map[store.Index]string `json:"t,omitempty"`
}

func validKey(k store.Key) error {
	if k.Cluster == "" || k.Kind == "" || k.Name == "" {
		return fmt.Errorf("%w key %q: cluster, kind and name are required", resource.ErrInvalid, k)
	}
	if strings.ContainsRune(k.Cluster+string(k.Kind)+k.Name, 0) {
		return fmt.Errorf("%w key %q: NUL byte", resource.ErrInvalid, k)
	}
	return nil
}

func prefix(cluster string, kind resource.Kind) []byte {
	return []byte(cluster + "\x00" + string(kind) + "\x00")
}

func dbKey(k store.Key) []byte { return append(prefix(k.Cluster, k.Kind), k.Name...) }

func indexPrefix(cluster string, kind resource.Kind, ix store.Index, term string) []byte {
	return append(prefix(cluster, kind), string(ix)+"\x00"+term+"\x00"...)
}

// load returns k's live item. The returned *item is the stored one, expired
// or not (nil if absent), so a write can drop the index entries of what it
// replaces.
func (s *Store) load(b *bbolt.Bucket, k store.Key) (item, *item, bool, error) {
	raw := b.Get(dbKey(k))
	if raw == nil {
		return item{}, nil, false, nil
	}
	var it item
	if err := json.Unmarshal(raw, &it); err != nil {
		return item{}, nil, false, fmt.Errorf("decode %s: %w", k, err)
	}
	if !it.ExpiresAt.IsZero() && !s.clk.Now().Before(it.ExpiresAt) {
		return item{}, &it, false, nil
	}
	return it, &it, true, nil
}

func toRecord(k store.Key, it item) store.Record {
	return store.Record{Key: k, Version: it.Version, Data: []byte(it.Data), ExpiresAt: it.ExpiresAt, UpdatedAt: it.UpdatedAt, Terms: it.Terms}
}

// buckets are the buckets of one write transaction.
type buckets struct{ rec, idx *bbolt.Bucket }

// unindex deletes old's index entries.
func unindex(bs buckets, k store.Key, old *item) error {
	if old == nil {
		return nil
	}
	for ix, term := range old.Terms {
		if err := bs.idx.Delete(append(indexPrefix(k.Cluster, k.Kind, ix, term), k.Name...)); err != nil {
			return storageError{fmt.Errorf("unindex %s: %w", k, err)}
		}
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, k store.Key) (store.Record, error) {
	if err := validKey(k); err != nil {
		return store.Record{}, err
	}
	if err := ctx.Err(); err != nil {
		return store.Record{}, err
	}
	var rec store.Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		it, _, ok, err := s.load(tx.Bucket(bucket), k)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: %w", k, store.ErrNotFound)
		}
		rec = toRecord(k, it)
		return nil
	})
	return rec, err
}

// write runs fn in a write transaction shared with whatever other writes
// are waiting (group commit): a lone writer commits at once, and writers that
// arrive while a commit is in flight share the next one, so under load many
// submissions cost one fsync. A domain error (not found, conflict) fails only
// its own write; a storage error fails the whole group.
func (s *Store) write(ctx context.Context, fn func(bs buckets) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := writeReq{fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- req:
	case <-s.closed:
		return fmt.Errorf("bolt write: %w", bbolt.ErrDatabaseNotOpen)
	}
	return <-req.done
}

type writeReq struct {
	fn   func(bs buckets) error
	done chan error
}

// maxGroup bounds how many writes share one transaction.
const maxGroup = 256

// committer is the single goroutine that runs write transactions.
func (s *Store) committer() {
	defer close(s.stopped)
	for {
		var first writeReq
		select {
		case first = <-s.writes:
		case <-s.closed:
			return
		}
		group := []writeReq{first}
	drain:
		for len(group) < maxGroup {
			select {
			case r := <-s.writes:
				group = append(group, r)
			default:
				break drain
			}
		}
		errs := make([]error, len(group))
		err := s.db.Update(func(tx *bbolt.Tx) error {
			bs := buckets{rec: tx.Bucket(bucket), idx: tx.Bucket(indexBucket)}
			for i, r := range group {
				errs[i] = r.fn(bs)
				var se storageError
				if errors.As(errs[i], &se) {
					return se.err
				}
			}
			return nil
		})
		for i, r := range group {
			if err != nil {
				r.done <- fmt.Errorf("bolt write: %w", err)
				continue
			}
			r.done <- errs[i]
		}
	}
}

// storageError marks a failure of bbolt itself, which must abort the batch.
type storageError struct{ err error }

func (e storageError) Error() string { return e.err.Error() }
func (e storageError) Unwrap() error { return e.err }

// put writes it over old (nil if there is none) and moves the index
// entries from old's terms to it's.
func (s *Store) put(bs buckets, k store.Key, it item, old *item) error {
	raw, err := json.Marshal(it)
	if err != nil {
		return fmt.Errorf("encode %s: %w", k, err)
	}
	if err := unindex(bs, k, old); err != nil {
		return err
	}
	if err := bs.rec.Put(dbKey(k), raw); err != nil {
		return storageError{fmt.Errorf("put %s: %w", k, err)}
	}
	for ix, term := range it.Terms {
		if err := bs.idx.Put(append(indexPrefix(k.Cluster, k.Kind, ix, term), k.Name...), nil); err != nil {
			return storageError{fmt.Errorf("index %s: %w", k, err)}
		}
	}
	return nil
}

func checkData(rec store.Record) error {
	if !json.Valid(rec.Data) {
		return fmt.Errorf("%w record %s: data is not JSON", resource.ErrInvalid, rec.Key)
	}
	if err := store.ValidateTerms(rec.Terms); err != nil {
		return fmt.Errorf("record %s: %w", rec.Key, err)
	}
	return nil
}

// terms copies rec's terms, so the caller's map is not shared with the
// stored item; nil for none.
func terms(rec store.Record) map[store.Index]string {
	if len(rec.Terms) == 0 {
		return nil
	}
	return maps.Clone(rec.Terms)
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	if err := validKey(rec.Key); err != nil {
		return store.Record{}, err
	}
	if err := checkData(rec); err != nil {
		return store.Record{}, err
	}
	var out store.Record
	err := s.write(ctx, func(bs buckets) error {
		_, old, ok, err := s.load(bs.rec, rec.Key)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("%s: %w", rec.Key, store.ErrExists)
		}
		it := item{Version: 1, ExpiresAt: rec.ExpiresAt.UTC(), UpdatedAt: s.clk.Now().UTC(), Data: rec.Data, Terms: terms(rec)}
		if err := s.put(bs, rec.Key, it, old); err != nil {
			return err
		}
		out = toRecord(rec.Key, it)
		return nil
	})
	return out, err
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	if err := validKey(rec.Key); err != nil {
		return store.Record{}, err
	}
	if err := checkData(rec); err != nil {
		return store.Record{}, err
	}
	var out store.Record
	err := s.write(ctx, func(bs buckets) error {
		cur, old, ok, err := s.load(bs.rec, rec.Key)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: %w", rec.Key, store.ErrNotFound)
		}
		if cur.Version != rec.Version {
			return fmt.Errorf("%s: have version %d, update names %d: %w", rec.Key, cur.Version, rec.Version, store.ErrConflict)
		}
		it := item{Version: cur.Version + 1, ExpiresAt: rec.ExpiresAt.UTC(), UpdatedAt: s.clk.Now().UTC(), Data: rec.Data, Terms: terms(rec)}
		if err := s.put(bs, rec.Key, it, old); err != nil {
			return err
		}
		out = toRecord(rec.Key, it)
		return nil
	})
	return out, err
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, k store.Key, version int64) error {
	if err := validKey(k); err != nil {
		return err
	}
	return s.write(ctx, func(bs buckets) error {
		cur, old, ok, err := s.load(bs.rec, k)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: %w", k, store.ErrNotFound)
		}
		if version != 0 && cur.Version != version {
			return fmt.Errorf("%s: have version %d, delete names %d: %w", k, cur.Version, version, store.ErrConflict)
		}
		if err := unindex(bs, k, old); err != nil {
			return err
		}
		if err := bs.rec.Delete(dbKey(k)); err != nil {
			return storageError{fmt.Errorf("delete %s: %w", k, err)}
		}
		return nil
	})
}

const tokenPrefix = "b1:"

func encodeToken(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + name))
}

func decodeToken(tok string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !bytes.HasPrefix(raw, []byte(tokenPrefix)) || len(raw) == len(tokenPrefix) {
		return "", fmt.Errorf("%w %q", store.ErrBadPageToken, tok)
	}
	return string(raw[len(tokenPrefix):]), nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, cluster string, kind resource.Kind, opts store.ListOptions) ([]store.Record, string, error) {
	if err := validKey(store.Key{Cluster: cluster, Kind: kind, Name: "-"}); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	after := ""
	if opts.PageToken != "" {
		var err error
		if after, err = decodeToken(opts.PageToken); err != nil {
			return nil, "", err
		}
	}
	limit := opts.EffectiveLimit()
	pfx := prefix(cluster, kind)
	now := s.clk.Now()
	var out []store.Record
	next := ""
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		seek := append(append([]byte{}, pfx...), opts.Prefix...)
		if after != "" && after >= opts.Prefix {
			seek = append(append(append([]byte{}, pfx...), after...), 0)
		}
		for k, v := c.Seek(seek); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
			name := string(k[len(pfx):])
			if !strings.HasPrefix(name, opts.Prefix) {
				break
			}
			var it item
			if err := json.Unmarshal(v, &it); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if !it.ExpiresAt.IsZero() && !now.Before(it.ExpiresAt) {
				continue
			}
			if len(out) == limit {
				next = encodeToken(out[len(out)-1].Name)
				break
			}
			out = append(out, toRecord(store.Key{Cluster: cluster, Kind: kind, Name: name}, it))
		}
		return nil
	})
	return out, next, err
}

// ListIndex implements store.Store: it walks the index entries of one term
// in name order and reads only their records.
func (s *Store) ListIndex(ctx context.Context, cluster string, kind resource.Kind, ix store.Index, term string, opts store.ListOptions) ([]store.Record, string, error) {
	if err := validKey(store.Key{Cluster: cluster, Kind: kind, Name: "-"}); err != nil {
		return nil, "", err
	}
	if err := store.ValidateQuery(ix, term); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	after := ""
	if opts.PageToken != "" {
		var err error
		if after, err = decodeToken(opts.PageToken); err != nil {
			return nil, "", err
		}
	}
	limit := opts.EffectiveLimit()
	pfx := indexPrefix(cluster, kind, ix, term)
	var out []store.Record
	next := ""
	err := s.db.View(func(tx *bbolt.Tx) error {
		recs := tx.Bucket(bucket)
		c := tx.Bucket(indexBucket).Cursor()
		seek := append(append([]byte{}, pfx...), opts.Prefix...)
		if after != "" && after >= opts.Prefix {
			seek = append(append(append([]byte{}, pfx...), after...), 0)
		}
		for k, _ := c.Seek(seek); k != nil && bytes.HasPrefix(k, pfx); k, _ = c.Next() {
			name := string(k[len(pfx):])
			if !strings.HasPrefix(name, opts.Prefix) {
				break
			}
			key := store.Key{Cluster: cluster, Kind: kind, Name: name}
			it, _, ok, err := s.load(recs, key)
			if err != nil {
				return err
			}
			if !ok {
				continue // expired, not yet pruned
			}
			if len(out) == limit {
				next = encodeToken(out[len(out)-1].Name)
				break
			}
			out = append(out, toRecord(key, it))
		}
		return nil
	})
	return out, next, err
}

// Prune deletes records that expired before now and reports how many. The
// gateway calls it periodically to enforce execution retention.
func (s *Store) Prune(ctx context.Context) (int, error) {
	now := s.clk.Now()
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
		idx := tx.Bucket(indexBucket)
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var it item
			if err := json.Unmarshal(v, &it); err != nil {
				continue // leave what we cannot read for a human to look at
			}
			if !it.ExpiresAt.IsZero() && !now.Before(it.ExpiresAt) {
				// The key is cluster\0kind\0name, the index entries'
				// prefix up to the index name.
				base := k[:bytes.LastIndexByte(k, 0)+1]
				for ix, term := range it.Terms {
					entry := append(append(append([]byte{}, base...), string(ix)+"\x00"+term+"\x00"...), k[len(base):]...)
					if err := idx.Delete(entry); err != nil {
						return err
					}
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("prune: %w", err)
	}
	return n, nil
}
