package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
)

// DynamoDBAPI is the part of *dynamodb.Client the elector and the node
// registry call, with the SDK's own signatures.
type DynamoDBAPI interface {
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, params *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, params *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ DynamoDBAPI = (*dynamodb.Client)(nil)

// Defaults; see the package documentation for how they were chosen.
const (
	DefaultLeaseDuration   = 2400 * time.Millisecond
	DefaultRenewDeadline   = 2000 * time.Millisecond
	DefaultRetryPeriod     = 1500 * time.Millisecond
	DefaultPollPeriod      = 500 * time.Millisecond
	DefaultHeartbeatPeriod = 60 * time.Second
)

// Config configures an Elector. Zero durations take the defaults.
type Config struct {
	// Table is the DynamoDB table shared with the store. Required.
	Table string
	// Cluster is the cluster ID whose lease this is. Required, and a valid
	// cluster ID (resource.ValidateCluster).
	Cluster string
	// Node is this gateway's unique ID (e.g. the ECS task ID). Required.
	// Two processes must never share one.
	Node string
	// Address is where this gateway's API listens, published in the lease
	// and the node registry for "standby; the active is <node> at <addr>".
	Address string
	// CertFingerprint pins the certificate served at Address, published
	// next to it in the lease (lease.Term.CertFingerprint). Empty for
	// plain HTTP.
	CertFingerprint string
	// Version is this binary's version, shown in the node registry.
	Version string

	// LeaseDuration is how long a standby must see the same record version,
	// by its own clock, before it may take the lease over. Default 2.4 s.
	LeaseDuration time.Duration
	// RenewDeadline is how long after the start of its last successful
	// renewal the active keeps acting; then it stops by itself. Must be
	// less than LeaseDuration: the difference is the safety margin for
	// clock-rate differences and scheduling delays. Default 2 s.
	RenewDeadline time.Duration
	// RetryPeriod is how often the active renews (from the start of one
	// renewal to the start of the next). Must be less than RenewDeadline.
	// Each renewal is one write: this sets the lease's cost. Default 1.5 s.
	RetryPeriod time.Duration
	// PollPeriod is how often a standby reads the lease item. It bounds how
	// late a standby notices the active's last renewal, so failover takes
	// between LeaseDuration-RetryPeriod and LeaseDuration+PollPeriod. Each
	// poll is one eventually consistent read. Must be less than
	// LeaseDuration. Default 0.5 s.
	PollPeriod time.Duration
	// CallTimeout bounds each poll, takeover and release call of the lease,
	// so a hung connection costs one attempt, not the term. A renewal call
	// is not cut off: after CallTimeout without an answer another starts
	// beside it (see "Renewal under load" in the package doc). Default: half the gap between RetryPeriod and RenewDeadline but
	// at least an eighth of RenewDeadline (250 ms with the defaults, against
	// single-digit milliseconds for a healthy call). It is real time, not
	// Clock time: it bounds network waits, while every lease decision runs
	// on Clock.
	CallTimeout time.Duration
	// HeartbeatPeriod is how often the node registry entry is refreshed
	// (and at every role change); the entry expires after three periods.
	// Default 60 s; negative disables the registry.
	HeartbeatPeriod time.Duration

	// Clock is the time source of every timing decision; nil means
	// clock.Real{}. Each node uses only its own clock.
	Clock clock.Clock
	// Logger receives lease events; nil discards them.
	Logger *slog.Logger
}

// ErrConfig is wrapped by every configuration error of New.
var ErrConfig = errors.New("invalid lease configuration")

// withDefaults fills in zero fields.
func (c Config) withDefaults() Config {
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = DefaultRenewDeadline
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = DefaultRetryPeriod
	}
	if c.PollPeriod == 0 {
		c.PollPeriod = DefaultPollPeriod
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = max((c.RenewDeadline-c.RetryPeriod)/2, c.RenewDeadline/8)
	}
	if c.HeartbeatPeriod == 0 {
		c.HeartbeatPeriod = DefaultHeartbeatPeriod
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports what is wrong with c after defaults: missing names, or
// durations out of the order LeaseDuration > RenewDeadline > RetryPeriod >
// 0 and 0 < PollPeriod < LeaseDuration.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Table == "" {
		bad("table is required")
	}
	if err := resource.ValidateCluster(c.Cluster); err != nil {
		bad("cluster: %w", err)
	}
	if c.Node == "" {
		bad("node ID is required")
	}
	switch {
	case c.RetryPeriod <= 0:
		bad("retry period %v must be positive", c.RetryPeriod)
	case c.RenewDeadline <= c.RetryPeriod:
		bad("renew deadline %v must be longer than the retry period %v (the active renews every retry period and must get a try in before the deadline)", c.RenewDeadline, c.RetryPeriod)
	case c.LeaseDuration <= c.RenewDeadline:
		bad("lease duration %v must be longer than the renew deadline %v (the difference is the safety margin between the active stopping and a standby taking over)", c.LeaseDuration, c.RenewDeadline)
	}
	if c.CallTimeout < 0 {
		bad("call timeout %v must not be negative", c.CallTimeout)
	}
	if c.PollPeriod <= 0 || c.PollPeriod >= c.LeaseDuration {
		bad("poll period %v must be positive and shorter than the lease duration %v", c.PollPeriod, c.LeaseDuration)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// failureBackoff is the pause before retrying a failed renewal or poll.
func (c Config) failureBackoff() time.Duration {
	return max((c.RenewDeadline-c.RetryPeriod)/10, time.Millisecond)
}
