package filelock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestKeyed(t *testing.T) {
	var k Keyed
	unlock, err := k.Lock(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	// Another key is independent.
	unlockB, err := k.Lock(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	// A waiter on a held key gives up when its context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.Lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held key = %v, want DeadlineExceeded", err)
	}
	unlock()
	unlock2, err := k.Lock(t.Context(), "a")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	unlock2()
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := File(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	// flock belongs to the open file: a second open, even in this process,
	// is excluded.
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Millisecond)
	defer cancel()
	if _, err := File(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second File = %v, want DeadlineExceeded", err)
	}
	unlock()
	unlock2, err := File(t.Context(), path)
	if err != nil {
		t.Fatalf("File after release: %v", err)
	}
	unlock2()
	if _, err := File(t.Context(), filepath.Join(t.TempDir(), "missing", "x.lock")); err == nil {
		t.Error("File in a missing directory succeeded")
	}
}
