// Package dynamo is the store.Store of the AWS deployment models: every
// record of every cluster in one DynamoDB table, shared by all gateways
// (and, if they like, by several clusters).
//
// # Guarantees
//
// Beyond the store package's contract (checked by storetest on DynamoDB
// Local):
//   - every read is strongly consistent (GetItem and Query with
//     ConsistentRead), so a gateway that takes over sees every write of the
//     previous active;
//   - every write is one conditional write of the record's item; a write is
//     never lost or applied twice, including when the SDK retries a request
//     that had in fact been applied (each write carries a random writeId and
//     recognises its own item);
//   - records whose expiresAt has passed by the injected clock are absent
//     for Get, List, Update and Delete, whether or not DynamoDB's TTL has
//     deleted them yet (it may take days on AWS);
//   - no Scan, ever: Get is one GetItem (plus one Query for a large record),
//     List one Query per page (more only to skip expired items), ListIndex
//     one Query per page on the index (not strongly consistent: DynamoDB
//     offers no consistent reads on a global secondary index);
//   - records up to MaxDataBytes (25 MiB) are stored whole, split into chunk
//     items (see below); larger ones fail with store.ErrTooLarge; nothing is
//     truncated;
//   - Fenced views make every write conditional on the writer's lease term;
//   - SDK error types never leave the package: errors are store sentinels,
//     resource.ErrInvalid, context errors, or ErrTableNotFound,
//     ErrTableSchema, ErrThrottled, ErrUnavailable, ErrRequest with the SDK's
//     message as text. Throttling and 5xx are retried by the SDK's standard
//     retryer (NewClient) before they surface.
//
// It does not give multi-record transactions, and it does not delete
// expired items itself: DynamoDB's TTL does, eventually.
//
// # Table and items
//
// One table, on-demand billing, created by CreateTable (`autogate init
// table`) or the CDK stack and verified by CheckTable: partition key pk (S),
// sort key sk (S), TTL on expiresAt (N, Unix seconds), and one global
// secondary index per store index (IndexName: by-status on byStatus, by-service
// on byService; sort key sk; all attributes projected). A record carries
// byStatus/byService = <cluster>#<kind>#<term> only when it has that term,
// so the indexes are sparse. Cluster IDs
// follow resource.ValidateCluster (a-z, 0-9, '-'), so '#' separates key
// parts unambiguously; kinds are a-z only and "lease" is reserved.
//
//	item         pk                                sk          attributes
//	record       <cluster>#<kind>                  <name>      version N, data B (≤ 380,000 bytes inline),
//	                                                           updatedAt S, expiresAt N?, writeId S,
//	                                                           chunks N?, chunkRef S?, size N? (large records)
//	chunk        <cluster>#<kind>#chunks#<ref>     00000…      data B (≤ 380,000 bytes), expiresAt N?
//	lease        <cluster>#lease                   lease       written by lease/dynamo: holder, epoch,
//	                                                           recordVersion, leaseDurationMs, address, certFingerprint, renewedAt
//	node         <cluster>#node                    <node ID>   a record of kind node (lease/dynamo's registry)
//
// Access patterns: Get = GetItem(pk, sk); List of one kind of one cluster =
// Query(pk = <cluster>#<kind>, begins_with(sk, prefix)), ascending, with a
// filter that drops expired items; a large record's data = Query(pk =
// <chunk set>) in sk order; a fenced write = TransactWriteItems of the
// record write and a ConditionCheck on the lease item (concurrent fenced
// writes share one: up to 24 record writes and one check, see batch.go);
// the lease and the
// node registry are lease/dynamo's GetItem/UpdateItem/Query on their own
// partitions. Clusters never share a partition key, so they cannot see
// each other's items even in a shared table.
//
// Item sizes: DynamoDB caps an item at 400 KB. A record item is its data
// plus at most ~1.2 KB (names are at most 1024 bytes, cluster IDs 40), so
// data of up to 380,000 bytes stays inline. Most records (services,
// decorators, secrets' metadata, executions without large outputs) are a
// few KB: one item, one request unit per KB read or written.
//
// # Large records
//
// Larger data is split into 380,000-byte chunk items in a partition of its
// own, named by a random 128-bit ref: a chunk set is written once, never
// changed, and each large record's chunks land in a different partition.
// A write of a large record
//  1. writes the new chunk set (PutItem each, 8 at a time); nothing
//     references it yet, so readers cannot see it;
//  2. commits with the one conditional write of the record item that
//     points at the set (chunks, chunkRef, size): this is the atomic switch;
//  3. deletes the chunk set the replaced item referenced, which commit
//     knows exactly because its condition names the expected chunkRef
//     (first "none"; on a mismatch DynamoDB returns the current item with
//     ReturnValuesOnConditionCheckFailure and the write is retried with
//     that ref), and deletes its own chunks if the commit definitely failed.
//
// A reader gets the record item, then the chunk set it names; if the set
// vanished meanwhile (the record was replaced and the old set deleted) it
// reads the record again. So readers always get one committed version
// whole. The 25 MiB bound (69 chunks) is a policy: no DynamoDB limit is
// involved because no transaction spans the chunks. A write of 25 MiB costs
// about 25,600 write units ($0.032 on demand) and a read half that in read
// units: large outputs are meant to be rare.
//
// What can leak: chunk items of a write whose outcome is unknown (timeout,
// 5xx after retries, crash between steps 1 and 2) and of clean-ups that
// failed. They are never read, cost storage only, are logged, and expire
// with their record's TTL when it has one.
//
// # Fencing
//
// Store.Fenced(cluster, term) returns a view whose writes are each one
// TransactWriteItems: the record write (with its own condition) and a
// ConditionCheck that the cluster's lease item still has holder =
// term.Holder and epoch = term.Epoch. DynamoDB evaluates both atomically,
// so once a standby has taken over (epoch+1) or the holder has released
// the lease, a write through the old view fails with store.ErrFenced and
// changes nothing (large-record chunks it staged are deleted again). A
// paused old active that wakes up can therefore change nothing, however
// late its requests arrive. Cheaper alternatives were rejected: stamping
// the epoch on each item and conditioning on item.epoch ≤ mine does not
// stop an old active from writing an item the new one has not touched yet.
// The price: a transactional write costs twice the write units of a plain
// one, plus the check (about 4 WRU for a small fenced write instead of 1),
// which at gateway write rates is cents per month.
//
// # Usage
//
//	cfg, _ := config.LoadDefaultConfig(ctx)
//	client := dynamo.NewClient(cfg, dynamo.ClientOptions{})
//	if err := dynamo.CheckTable(ctx, client, table); err != nil { ... }
//	st, _ := dynamo.New(client, dynamo.Config{Table: table, Logger: log})
//	// when this gateway becomes active with term:
//	active := st.Fenced(cluster, term)
package dynamo
