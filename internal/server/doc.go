// Package server runs Autogate's long-lived processes: the gateway
// (Gateway), the Gateway Manager (Manager) and the ECS runner (Runner).
// Each Run(ctx) owns start-up, the leader duties and an ordered shutdown;
// cmd/autogate only parses flags and calls Run.
//
// The parts the gateway and the manager share are written once here:
// opening the backend (embedded bolt store with the local lease, or
// DynamoDB with its lease, node list and fenced views), the listener and
// TLS, the lease term (fence the store, create the first admin, go active,
// run the node's duty, stop at once when the term's context ends) and the
// shutdown order:
//
//  1. release the lease, so a standby takes over while this node drains;
//  2. stop receiving new work;
//  3. shut the HTTP server down within the grace period;
//  4. give running services the rest of the grace, then kill them (their
//     attempts are recorded lost and re-queued if retryable).
//
// What it guarantees: every leader-only action runs on the term's context
// and every write to shared state goes through a fence.Store, so a node
// whose term ended writes nothing; Active reports false from that moment.
// Timed loops (sweep, warm, prune, node heartbeat, the active-holder
// metric of --emf-metrics) run on an injected clock.Clock. What it does
// not guarantee: a write already handed to the store when the term ends
// may land, unless the store's fenced view (DynamoDB) refuses it by epoch.
package server
