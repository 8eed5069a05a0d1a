// Package filelock holds the two locks that guard shared caches on disk:
// Keyed, in-process mutexes per key that waiters can abandon, and File, an
// flock(2) that excludes other processes sharing the same data directory.
package filelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// lockPoll is how often a process waiting for another one's flock retries.
const lockPoll = 50 * time.Millisecond

// Keyed is a set of mutexes, one per key, that waiters can abandon when
// their context ends. Keys are never forgotten, so use it for small key sets
// (one per repository URL, one per virtualenv hash). The zero value is ready.
type Keyed struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// Lock waits for key and returns its release function, or ctx.Err().
func (k *Keyed) Lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]chan struct{})
	}
	ch, ok := k.m[key]
	if !ok {
		ch = make(chan struct{}, 1)
		k.m[key] = ch
	}
	k.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// File takes an exclusive flock(2) on path, creating it, and returns
// the function that releases it. flock locks belong to the open file, so
// this excludes other processes and other opens in this one alike; the lock
// dies with the process, so a crash never leaves it held.
func File(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	fd := int(f.Fd())
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(fd, syscall.LOCK_UN) // closing releases it anyway
				_ = f.Close()                          // read-only use: nothing to flush
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close() // the flock error is the one to report
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			_ = f.Close() // nothing was written
			return nil, ctx.Err()
		}
	}
}
