// Package gateway is the control plane of one cluster: it validates and
// stores resources through the catalog, accepts runs (decorator check,
// redaction, an idempotent queued record, then one queue message), waits for
// results, cancels, and re-dispatches work a restart left behind.
//
// It depends only on the catalog (hence the store interface), a Dispatcher
// (the queue's send side) and an optional Canceler (the in-process runner of
// all-in-one mode); it never runs services itself.
package gateway
