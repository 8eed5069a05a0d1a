// Package dynamo is the active/standby lease of a cluster's gateways on
// DynamoDB: one item per cluster in the table the store uses, taken and
// renewed with conditional writes, in the manner of client-go's
// leaderelection. An Elector satisfies the same Run(ctx, lease.Callbacks)
// contract as lease.Local. The package also holds the node registry behind
// `autogate get nodes`.
//
// # Safety model
//
// Each node trusts only its own monotonic clock (Config.Clock); wall clocks
// of different nodes are never compared (renewedAt in the item is for
// humans). The guarantee — at most one node acts at a time — rests on:
//
//   - the active stops acting (cancels the context it gave OnStarted) once
//     RenewDeadline has passed since the START of its last successful
//     renewal call, by its own timer, whatever DynamoDB calls are still in
//     flight: it never waits to be told it lost;
//   - a standby takes over only after it has seen the same record version
//     for a full LeaseDuration, measured from when its read RETURNED (after
//     the version was written, so after that renewal started), and only with
//     a write conditional on that very version: if the active renewed in the
//     meantime, the takeover fails;
//   - LeaseDuration > RenewDeadline: the difference (0.4 s by default, a
//     sixth of the lease) absorbs clock-rate differences between nodes and
//     the delay between the active's deadline and its work really stopping.
//
// So a standby's takeover happens at least LeaseDuration after the active's
// last proven renewal began, and the active stopped RenewDeadline after it.
// What it does not guarantee: a process that is paused (SIGSTOP, a long GC
// pause, a frozen VM) does not notice its deadline until it runs again, and
// its requests may reach DynamoDB late. Fencing closes that gap: every term
// carries an epoch that only grows, and the gateway writes shared state
// through store/dynamo's Store.Fenced(cluster, term), whose writes succeed
// only while the lease item still names that holder and epoch.
//
// # The lease item
//
// pk "<cluster>#lease", sk "lease" (see store/dynamo), with holder, epoch,
// recordVersion (random, new at every write), leaseDurationMs (the
// holder's, which standbys honour if it is longer than theirs), address,
// certFingerprint (the SHA-256 of the holder's TLS certificate key, which
// standbys pin when they forward to address; both are cleared by a
// release) and renewedAt. All writes are UpdateItem with a condition and
// ReturnValuesOnConditionCheckFailure, so a lost race returns the winner
// without another read:
//
//	acquire (absent)     attribute_not_exists(pk)              → holder=me, epoch=1
//	takeover / released  recordVersion = seen AND epoch = seen → holder=me, epoch=seen+1
//	renew                holder = me AND epoch = mine          → new recordVersion
//	release (shutdown)   holder = me AND epoch = mine          → holder="", epoch kept
//
// Renewal does not condition on the record version: every takeover raises
// the epoch and a release clears the holder, so holder+epoch already prove
// nobody else took over, and a renewal whose answer was lost to a timeout
// does not turn into a false "lost". A standby that sees no holder (a
// release) takes over at once, as does a node that finds the lease still
// naming itself at a version it wrote itself (its own term that it already
// stopped, e.g. after a renewal timed out). Standbys poll with eventually
// consistent reads: a stale read can only delay a takeover, never make one
// unsafe, because safety rests on the conditional writes. Deleting the
// item by hand restarts epochs at 1 (fenced writes compare for equality, so
// old writers are still refused).
//
// # Defaults
//
// LeaseDuration 2.4 s, RenewDeadline 2 s, RetryPeriod 1.5 s (the active
// renews every 1.5 s), PollPeriod 0.5 s (standbys read every 0.5 s),
// CallTimeout 250 ms, node heartbeat 60 s.
//
// Failover after the active dies: the standby saw its last renewal at most
// PollPeriod after it was written and takes over LeaseDuration after that;
// the active died up to RetryPeriod after that renewal. So failover is
// between LeaseDuration-RetryPeriod and LeaseDuration+PollPeriod, 0.9 s to
// 2.9 s plus one write. With the death uniformly placed in the renewal
// cycle and the poll phase uniform, failover is 2.4 s + U(0, 0.5) -
// U(0, 1.5): p50 = 2.4 + 0.25 - 0.75 = 1.9 s, and P(failover > 2.9 s - e) =
// e²/(2 × 0.5 × 1.5), which is 1% at e = 0.12 s: p99 = 2.78 s, under the
// 3 s target. A clean shutdown (SIGTERM)
// releases, and the standby takes over at its next poll (≤ 0.5 s).
//
// # Renewal under load
//
// Between RetryPeriod and RenewDeadline there is 0.5 s for a renewal round
// to succeed. A round's first call is not cut off at CallTimeout: under
// load a slow answer still proves the term, while a call abandoned after
// 250 ms proves nothing (that made a loaded active depose itself while no
// other gateway existed). Instead, when a call has gone unanswered for
// CallTimeout (or failed, after a short back-off), another starts beside
// it, usually on another connection, up to four calls a round; the first
// success ends the round and cancels the rest, and a lost condition ends
// the term at once. The lease uses a DynamoDB client and connection pool
// of its own (server.OpenBackend), so its calls never wait behind request
// calls for a connection, nor share their retry budget. The safety
// argument above is unchanged: each success counts from the start of the
// call that succeeded, not of the round, and the deadline timer still stops
// the term whatever calls are in flight. Renewal writes cost one per round
// while DynamoDB answers within CallTimeout, at most four when it does not
// (Cost.WorstCaseRenewalsPerHour; Elector.Stats counts both).
//
// # Cost
//
// On-demand list prices in us-east-1 ($1.25 per million write request
// units, $0.25 per million read request units; AWS halved both in November
// 2024, so this is an upper bound), a month of 730 hours, and an item far
// below 1 KB (1 WRU per write, 0.5 RRU per eventually consistent read):
//
//	renewals  3600/1.5 = 2400 writes/h × 730 h = 1,752,000 WRU × $1.25/M = $2.19
//	polls     3600/0.5 = 7200 reads/h  × 730 h × 0.5 RRU = 2,628,000 RRU × $0.25/M = $0.66 per standby
//	lease, one active + one standby                                        = $2.85 per cluster-month
//	registry  60 writes/h per node × 2 nodes × 730 h = 87,600 WRU          = $0.11
//
// $2.96 in all for the usual two gateways, under the $3 target; each more
// standby adds $0.66. The active's writes dominate: cost scales with
// 1/RetryPeriod, failover time with LeaseDuration+PollPeriod, which is why
// the standby polls three times as often as the active renews (reads cost a
// tenth of writes). EstimateCost computes this for any Config, and a test
// checks it against the requests an elector really makes.
//
// # Usage
//
//	el, err := dynamo.New(client, dynamo.Config{Table: table, Cluster: cluster, Node: taskID, Address: addr, Logger: log})
//	...
//	err = el.Run(ctx, lease.Callbacks{
//		OnStarted: func(ctx context.Context, term lease.Term) {
//			st := store.Fenced(cluster, term) // every write fenced on the term
//			serveAndDispatch(ctx, st)         // must stop when ctx is done
//		},
//	})
//	// elsewhere: if ok, term := el.Active(); !ok { "standby; the active is " + term.Holder }
package dynamo
