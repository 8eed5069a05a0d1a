// Package bolt is the embedded store.Store of all-in-one mode: one bbolt file
// under the data directory. Keys are "cluster\x00kind\x00name" in one bucket,
// so a List is one cursor seek plus a short scan and clusters are isolated by
// prefix. Writes go through bbolt's Batch, which coalesces concurrent
// transactions into one fsync: durability without paying a disk flush per
// submission. Expired records are invisible at once and removed by Prune.
package bolt
