// Package registry is the Gateway Manager's record of the clusters it
// knows: ID, region, account, description, the credential's hash, and the
// newest lease epoch it has admitted for each, kept in a store.Store under
// the manager's own cluster ID (its namespace, "manager" by default), so
// the manager can share a DynamoDB table with the clusters it manages
// without either seeing the other's records.
//
// Guarantees:
//   - A credential is 256 random bits, shown once by Create and stored only
//     as its SHA-256; Verify compares in constant time and names the one
//     cluster the credential belongs to, so a credential of cluster A can
//     never authenticate as cluster B. Deleting a cluster revokes it.
//   - Admit refuses an epoch older than the newest it has admitted for the
//     cluster (ErrStaleEpoch) and stores the new one with a conditional
//     write, so the fence survives manager restarts and fail-overs and two
//     managers racing cannot both lower it.
//   - No cluster can take the manager's own namespace as its ID.
//
// It does not track liveness: connection status and heartbeats are the
// connection hub's, in memory; the registry keeps the last known values
// when a tunnel ends. The JSON shapes of the manager's /v1/clusters API
// (wire.Cluster, wire.CreateClusterRequest) live in package wire, shared
// with the typed client; the stored record is this package's own.
package registry
