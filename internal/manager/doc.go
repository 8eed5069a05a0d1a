// Package manager is the Gateway Manager's server: one place that sees and
// drives every cluster, across regions and accounts. It holds the registry
// of clusters (package registry), the hub of their tunnels (one per
// cluster, from its active gateway, see package tunnel), the router that
// sends /v1/clusters/{id}/… down a cluster's tunnel, and its API, built on
// the same huma layer as the gateway's (package httpapi: auth, roles,
// problem+json errors, one error table, OpenAPI).
//
// # API
//
//	POST /v1/login, /v1/logout, GET /v1/whoami, /v1/users…   as on a gateway, on the manager's own users
//	GET  /v1/clusters                 the registry, with each cluster's live status
//	POST /v1/clusters                 register a cluster (admin); the answer holds its credential, once
//	GET|DELETE /v1/clusters/{id}      one entry; DELETE revokes the credential and drops the tunnel
//	ANY  /v1/clusters/{id}/{rest…}    routed: the cluster's own /v1/{rest…}
//	GET  /v1/connect                  the tunnel endpoint (cluster credential, WebSocket)
//	GET  /healthz, /readyz            live; active and able to serve
//
// # Guarantees
//
//   - Only the active manager (lease.Local on the embedded store, the
//     DynamoDB elector on a table, under the manager's own cluster ID)
//     serves /v1 and takes tunnels; a standby answers 503 naming the
//     active. When its term ends every tunnel is closed at once (4503) and
//     the gateways reconnect, to the next active.
//   - A tunnel is admitted only with its cluster's credential, for that
//     cluster, at an epoch no older than the newest admitted (stored, so
//     the fence survives manager fail-over); a newer or equal epoch
//     replaces the current tunnel.
//   - Routing: the caller needs a manager token; the request goes down the
//     tunnel with the caller's manager user and role, never its token, and
//     the cluster authorizes it by that role. An unknown cluster is 404, a
//     disconnected one 503 at once (Retry-After). Each request has a
//     timeout (default 60 s; a synchronous run or a wait gets its own wait
//     plus 10 s, up to 5 min 10 s): a slow or stuck gateway costs its
//     callers a 504, and nothing else: requests are multiplexed, each
//     cluster has its own tunnel, and the router holds no lock across a
//     request. A body over MaxBodyBytes is 413 before anything is sent; a
//     tunnel lost under a request is 502 (the request may or may not have
//     run).
//
// It does not queue requests for a disconnected cluster, retry them, or
// cache anything a cluster answers.
package manager
