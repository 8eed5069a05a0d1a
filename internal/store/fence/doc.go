// Package fence holds the store view a leader writes shared state through.
//
// A Store passes reads to the raw store and sends writes to the view of the
// current lease term (on DynamoDB, a view whose every write also checks the
// lease epoch: store/dynamo's Fenced). Between terms, and from the moment
// the term's context is done, writes are refused with an error wrapping
// lease.ErrNotLeader and reach no store, so a node that lost its lease
// changes nothing even if a request slipped past the API's standby check.
//
// What it does not guarantee: a write already handed to the view when the
// term ends may still land; only the view's own epoch check (DynamoDB)
// refuses that one. Reads are never fenced.
//
//	shared := fence.New(raw)
//	// in lease.Callbacks.OnStarted(ctx, term):
//	shared.Begin(ctx, raw.Fenced(cluster, term))
//	defer shared.End()
package fence
