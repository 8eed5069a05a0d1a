package lease

import (
	"context"
	"errors"
)

// ErrNotLeader is returned to callers that need the lease and do not hold it.
var ErrNotLeader = errors.New("not the active gateway")

// Term is one holder's tenure.
type Term struct {
	// Holder is the node ID of the active gateway.
	Holder string `json:"holder"`
	// Epoch is the fencing token: it only grows, by at least one per new term.
	Epoch int64 `json:"epoch"`
	// Address is where the holder's API listens, for "standby; the active is …".
	Address string `json:"address,omitempty"`
	// CertFingerprint pins the certificate the holder serves at Address
	// (CertFingerprint in internal/httpapi: SHA-256 of the leaf's
	// SubjectPublicKeyInfo, hex); a standby forwards only to a peer that
	// proves it. Empty when the holder serves plain HTTP.
	CertFingerprint string `json:"certFingerprint,omitempty"`
}

// Callbacks tell the campaigner what happens to the lease.
type Callbacks struct {
	// OnStarted is called when this node becomes active. ctx is cancelled the
	// moment the node can no longer prove it holds the lease; everything
	// active-only must run under it. It runs in its own goroutine.
	OnStarted func(ctx context.Context, term Term)
	// OnStopped is called after a term ends (the ctx above is already done).
	OnStopped func()
	// OnNewLeader is called when the observed holder changes, this node
	// included. Optional.
	OnNewLeader func(term Term)
}

// Local is the lease of a single all-in-one node: always held, epoch 1.
type Local struct {
	Node    string
	Address string
}

// Run makes the node active at once and stays active until ctx ends.
func (l Local) Run(ctx context.Context, cb Callbacks) error {
	term := Term{Holder: l.Node, Epoch: 1, Address: l.Address}
	if cb.OnNewLeader != nil {
		cb.OnNewLeader(term)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cb.OnStarted(ctx, term)
	}()
	<-ctx.Done()
	<-done
	if cb.OnStopped != nil {
		cb.OnStopped()
	}
	return nil
}
