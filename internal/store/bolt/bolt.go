package bolt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

var bucket = []byte("records")

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
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: locked by another process (is another autogate server using this data dir?)", path)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
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

func (s *Store) load(b *bbolt.Bucket, k store.Key) (item, bool, error) {
	raw := b.Get(dbKey(k))
	if raw == nil {
		return item{}, false, nil
	}
	var it item
	if err := json.Unmarshal(raw, &it); err != nil {
		return item{}, false, fmt.Errorf("decode %s: %w", k, err)
	}
	if !it.ExpiresAt.IsZero() && !s.clk.Now().Before(it.ExpiresAt) {
		return item{}, false, nil
	}
	return it, true, nil
}

func toRecord(k store.Key, it item) store.Record {
	return store.Record{Key: k, Version: it.Version, Data: []byte(it.Data), ExpiresAt: it.ExpiresAt, UpdatedAt: it.UpdatedAt}
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
		it, ok, err := s.load(tx.Bucket(bucket), k)
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
func (s *Store) write(ctx context.Context, fn func(b *bbolt.Bucket) error) error {
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
	fn   func(b *bbolt.Bucket) error
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
			b := tx.Bucket(bucket)
			for i, r := range group {
				errs[i] = r.fn(b)
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

func (s *Store) put(b *bbolt.Bucket, k store.Key, it item) error {
	raw, err := json.Marshal(it)
	if err != nil {
		return fmt.Errorf("encode %s: %w", k, err)
	}
	if err := b.Put(dbKey(k), raw); err != nil {
		return storageError{fmt.Errorf("put %s: %w", k, err)}
	}
	return nil
}

func checkData(k store.Key, data []byte) error {
	if !json.Valid(data) {
		return fmt.Errorf("%w record %s: data is not JSON", resource.ErrInvalid, k)
	}
	return nil
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	if err := validKey(rec.Key); err != nil {
		return store.Record{}, err
	}
	if err := checkData(rec.Key, rec.Data); err != nil {
		return store.Record{}, err
	}
	var out store.Record
	err := s.write(ctx, func(b *bbolt.Bucket) error {
		_, ok, err := s.load(b, rec.Key)
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("%s: %w", rec.Key, store.ErrExists)
		}
		it := item{Version: 1, ExpiresAt: rec.ExpiresAt.UTC(), UpdatedAt: s.clk.Now().UTC(), Data: rec.Data}
		if err := s.put(b, rec.Key, it); err != nil {
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
	if err := checkData(rec.Key, rec.Data); err != nil {
		return store.Record{}, err
	}
	var out store.Record
	err := s.write(ctx, func(b *bbolt.Bucket) error {
		cur, ok, err := s.load(b, rec.Key)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: %w", rec.Key, store.ErrNotFound)
		}
		if cur.Version != rec.Version {
			return fmt.Errorf("%s: have version %d, update names %d: %w", rec.Key, cur.Version, rec.Version, store.ErrConflict)
		}
		it := item{Version: cur.Version + 1, ExpiresAt: rec.ExpiresAt.UTC(), UpdatedAt: s.clk.Now().UTC(), Data: rec.Data}
		if err := s.put(b, rec.Key, it); err != nil {
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
	return s.write(ctx, func(b *bbolt.Bucket) error {
		cur, ok, err := s.load(b, k)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: %w", k, store.ErrNotFound)
		}
		if version != 0 && cur.Version != version {
			return fmt.Errorf("%s: have version %d, delete names %d: %w", k, cur.Version, version, store.ErrConflict)
		}
		if err := b.Delete(dbKey(k)); err != nil {
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

// Prune deletes records that expired before now and reports how many. The
// gateway calls it periodically to enforce execution retention.
func (s *Store) Prune(ctx context.Context) (int, error) {
	now := s.clk.Now()
	n := 0
	err := s.db.Update(func(tx *bbolt.Tx) error {
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
