// Package runnertest holds test doubles for the runner core's dependencies,
// shared by the tests of every runner kind.
package runnertest

import (
	"context"
	"sync/atomic"

	"github.com/autogate/autogate/internal/executor"
	"github.com/autogate/autogate/internal/resource"
)

// Executor runs Fn and counts how many services it started.
type Executor struct {
	Calls atomic.Int32
	Fn    func(ctx context.Context, job executor.Job) (executor.Result, error)
}

// Run counts the call and runs Fn.
func (e *Executor) Run(ctx context.Context, job executor.Job) (executor.Result, error) {
	e.Calls.Add(1)
	return e.Fn(ctx, job)
}

// Commit is the commit Repos reports for every checkout.
const Commit = "0123456789012345678901234567890123456789"

// Repos pretends every repository is checked out at Commit.
type Repos struct{}

// Checkout returns a directory that does not exist and Commit.
func (Repos) Checkout(ctx context.Context, r resource.Repository, cred []byte) (string, string, error) {
	return "/nonexistent", Commit, nil
}
