package dynamo

import (
	"fmt"
	"time"
)

// On-demand request prices in us-east-1 that EstimateCost uses, in dollars
// per million request units (the list prices since AWS halved on-demand
// throughput prices in November 2024), and AWS's billing month. README.md's
// cost-at-rest price table is the same table: TestREADMEPriceTable holds
// the two together.
const (
	PricePerMillionWriteUnits = 0.625
	PricePerMillionReadUnits  = 0.125
	HoursPerMonth             = 730
)

// Cost is what the lease of one cluster costs in DynamoDB requests.
type Cost struct {
	Standbys int
	// RenewalsPerHour are the active's conditional writes (1 WRU each: the
	// lease item is far below 1 KB).
	RenewalsPerHour float64
	// WorstCaseRenewalsPerHour bounds the renewal writes when DynamoDB is
	// slower than CallTimeout or failing: every round then makes up to
	// renewAttempts calls. Billing counts each call that reaches DynamoDB.
	WorstCaseRenewalsPerHour float64
	// PollsPerHour are all standbys' eventually consistent reads (0.5 RRU
	// each: the item is below 4 KB).
	PollsPerHour float64
	// HeartbeatsPerHour are the node registry's writes, all nodes (1 WRU).
	HeartbeatsPerHour float64
	// LeaseDollarsPerMonth is renewals plus polls; RegistryDollarsPerMonth
	// the heartbeats.
	LeaseDollarsPerMonth    float64
	RegistryDollarsPerMonth float64
}

// EstimateCost computes the steady-state request cost of cfg's lease with
// one active and standbys standbys (failovers and failed conditional
// writes are rare and left out), with one call per renewal, as while
// DynamoDB answers within CallTimeout.
func EstimateCost(cfg Config, standbys int) Cost {
	cfg = cfg.withDefaults()
	perHour := func(d time.Duration) float64 { return float64(time.Hour) / float64(d) }
	c := Cost{
		Standbys:                 standbys,
		RenewalsPerHour:          perHour(cfg.RetryPeriod),
		WorstCaseRenewalsPerHour: renewAttempts * perHour(cfg.RetryPeriod),
		PollsPerHour:             float64(standbys) * perHour(cfg.PollPeriod),
	}
	if cfg.HeartbeatPeriod > 0 {
		c.HeartbeatsPerHour = float64(standbys+1) * perHour(cfg.HeartbeatPeriod)
	}
	month := func(writes, readUnits float64) float64 {
		return HoursPerMonth * (writes*PricePerMillionWriteUnits + readUnits*PricePerMillionReadUnits) / 1e6
	}
	c.LeaseDollarsPerMonth = month(c.RenewalsPerHour, c.PollsPerHour*0.5)
	c.RegistryDollarsPerMonth = month(c.HeartbeatsPerHour, 0)
	return c
}

func (c Cost) String() string {
	return fmt.Sprintf("%.0f renewal writes/h + %.0f standby reads/h (%d standby) = $%.2f/cluster-month; registry %.0f writes/h = $%.2f/month",
		c.RenewalsPerHour, c.PollsPerHour, c.Standbys, c.LeaseDollarsPerMonth, c.HeartbeatsPerHour, c.RegistryDollarsPerMonth)
}
