package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
	leasedynamo "github.com/autogate/autogate/internal/lease/dynamo"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
	"github.com/autogate/autogate/internal/wire"
)

// BackendConfig says where a gateway's or manager's records live and how
// it holds the lease.
type BackendConfig struct {
	// Store is "dynamodb" or the embedded store (anything else).
	Store string
	// Table is the DynamoDB table (Store dynamodb).
	Table string
	// File is the embedded store's file.
	File string
	// Cluster is the namespace of the records and the lease.
	Cluster, Node, Address, Version string
	// CertFingerprint pins the certificate served at Address (published
	// in the lease; "" for plain HTTP).
	CertFingerprint string
	// Lease timing (dynamodb); zero takes the lease package defaults.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// elector holds the lease: lease.Local or the DynamoDB elector.
type elector interface {
	Run(ctx context.Context, cb lease.Callbacks) error
}

// Backend is what differs between the embedded and the DynamoDB store.
type Backend struct {
	// Store is the raw store: runners write execution records through it
	// with conditional writes, like a remote runner would.
	Store store.Store
	// Fenced returns the view shared state is written through during term:
	// on DynamoDB every write there also checks the lease epoch.
	Fenced func(term lease.Term) store.Store
	Lease  elector
	// Release hands the lease over at once on a clean shutdown.
	Release func(ctx context.Context) error
	// HandOver is how long a node keeps serving after Release before it
	// closes its connections: long enough for the standbys to read the
	// lease (two poll periods), so a standby's forwarder moves to the new
	// active instead of writing into a keep-alive connection this node is
	// closing, whose outcome it could not know. Zero on the embedded store,
	// which has no standbys.
	HandOver time.Duration
	// Nodes lists the cluster's nodes (DynamoDB); nil on the embedded store.
	Nodes func(ctx context.Context) ([]wire.Node, error)
	// Prune removes expired records (the embedded store; DynamoDB has TTL).
	Prune func(ctx context.Context) (int, error)
	Close func() error
}

// requestConns bounds a gateway's DynamoDB requests in flight: at
// single-digit milliseconds per call that is thousands of calls a second.
const requestConns = 16

// OpenBackend opens the store and the lease cfg names; awsCfg is used
// only for DynamoDB.
func OpenBackend(ctx context.Context, cfg BackendConfig, awsCfg aws.Config, clk clock.Clock, log *slog.Logger) (*Backend, error) {
	if cfg.Store != "dynamodb" {
		st, err := bolt.Open(cfg.File, clk)
		if err != nil {
			return nil, err
		}
		return &Backend{
			Store:   st,
			Fenced:  func(lease.Term) store.Store { return st }, // one node: nobody to fence out
			Lease:   lease.Local{Node: cfg.Node, Address: cfg.Address},
			Release: func(context.Context) error { return nil },
			Prune:   st.Prune,
			Close:   st.Close,
		}, nil
	}
	// Request calls share a bounded pool of their own: under load they
	// wait here rather than queue inside DynamoDB ahead of the lease's.
	client := storedynamo.NewClient(awsCfg, storedynamo.ClientOptions{OwnConnections: true, MaxConns: requestConns})
	if err := storedynamo.CheckTable(ctx, client, cfg.Table); err != nil {
		return nil, err
	}
	st, err := storedynamo.New(client, storedynamo.Config{Table: cfg.Table, Clock: clk, Logger: log})
	if err != nil {
		return nil, err
	}
	// The lease has a client and connection pool of its own: its renewals
	// and the standby's watch never queue behind request calls, and a
	// burst of failing requests cannot drain its retry budget.
	leaseClient := storedynamo.NewClient(awsCfg, storedynamo.ClientOptions{OwnConnections: true})
	el, err := leasedynamo.New(leaseClient, leasedynamo.Config{
		Table: cfg.Table, Cluster: cfg.Cluster, Node: cfg.Node, Address: cfg.Address, CertFingerprint: cfg.CertFingerprint,
		Version: cfg.Version, LeaseDuration: cfg.LeaseDuration, RenewDeadline: cfg.RenewDeadline, RetryPeriod: cfg.RetryPeriod,
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return &Backend{
		Store:    st,
		Fenced:   func(term lease.Term) store.Store { return st.Fenced(cfg.Cluster, term) },
		Lease:    el,
		Release:  el.Release,
		HandOver: 2 * leasedynamo.DefaultPollPeriod,
		Nodes: func(ctx context.Context) ([]wire.Node, error) {
			ns, err := leasedynamo.ListNodes(ctx, client, cfg.Table, cfg.Cluster)
			out := make([]wire.Node, len(ns))
			for i, n := range ns {
				out[i] = wire.Node(n)
			}
			return out, err
		},
		Close: func() error { return nil },
	}, nil
}
