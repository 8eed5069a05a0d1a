// Package bolt is the embedded store.Store of all-in-one mode: one bbolt file
// under the data directory. Keys are "cluster\x00kind\x00name" in one bucket,
// so a List is one cursor seek plus a short scan and clusters are isolated by
// prefix. Writes are group-committed: one goroutine runs every write
// transaction, and writes that queue up while a commit is in flight share the
// next one, so durability costs one fsync per group, not per submission, and
// a lone writer never waits for a batching timer. Expired records are invisible at once and removed by Prune.
package bolt
