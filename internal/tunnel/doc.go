// Package tunnel is the connection between a cluster's active gateway and
// the Gateway Manager: the wire protocol, the gateway's end (Dial, Session,
// Connector) and the manager's end (Accept, Link).
//
// The gateway dials out, so a cluster in a private network needs no inbound
// rule. One long-lived WebSocket (RFC 6455, github.com/coder/websocket)
// per cluster carries every request the manager routes to it.
//
// Why WebSocket and not HTTP/2 streaming: a full-duplex HTTP/2 request
// needs HTTP/2 end to end, and the usual things in front of a manager (an
// AWS ALB, most corporate proxies) speak HTTP/1.1 to their targets; they
// all pass an HTTP/1.1 Upgrade, and an outbound proxy passes it through
// CONNECT (HTTPS_PROXY is honoured). WebSocket also gives message framing
// with a read limit and close codes with reasons, which this protocol
// uses for refusals; the library is small, context-first and dependency
// free.
//
// # Protocol
//
//  1. The gateway sends GET /v1/connect with "Authorization: Bearer
//     <cluster credential>". The manager answers 401 to a bad credential
//     and 503 if it is a standby, before upgrading.
//  2. The gateway's first frame is a Hello: cluster ID, node ID, lease
//     epoch, version. The manager answers Welcome (heartbeat period, frame
//     limit) or closes with a code saying why: 4403 the credential is for
//     another cluster, 4409 the epoch is older than the newest the manager
//     has seen for the cluster, 4503 the manager is not active, 4400 a bad
//     hello. A connection at the same or a newer epoch replaces the current
//     one, which is closed with 4410; deleting the cluster closes its
//     connection with 4401.
//  3. The manager sends Request frames (method, path, query, a few headers,
//     the caller and a timeout, then the whole body) with IDs of its
//     choosing; the gateway answers each with a Response frame and as many
//     Body frames as its body needs, 256 KiB each, so requests are
//     multiplexed without head-of-line blocking beyond one chunk. A Cancel
//     frame tells the gateway its caller gave up.
//  4. The gateway sends Ping every heartbeat (default 5 s); the manager
//     answers Pong. Either side drops a connection silent for four
//     heartbeats.
//
// Each frame is one binary message: a 4-byte big-endian header length, a
// JSON header, and the raw body (never base64).
//
// # Guarantees
//
//   - Authentication: the credential is checked before the upgrade; the
//     hello's cluster must be the credential's; the manager names the
//     caller (one of its users, with its role) in each request, and the
//     gateway trusts that because the credential authenticated the
//     connection. The caller's bearer token never crosses the tunnel.
//   - Fencing: the manager refuses a hello whose epoch is older than the
//     newest it has admitted for the cluster; a Connector runs under the
//     lease term's context, so a deposed gateway cancels its requests in
//     flight and drops the connection at once (close frame, then the
//     socket after at most a second).
//   - Size limits: a frame is at most 2 MiB by default. A request or
//     response too big for its limits is refused before it is sent (the
//     manager answers 413, the gateway replaces an oversized response with
//     a 502 problem) and the connection survives. A peer that sends an
//     oversized or malformed frame anyway breaks the protocol: the
//     receiver closes the connection (1009, 4400), every request in flight
//     on it fails, and the gateway reconnects; that is the clean reset.
//   - Timeouts: every request carries the manager's deadline; the gateway
//     cancels its handler a second after it (the manager answers 504
//     first), so a stuck request frees its resources.
//
// It does not give exactly-once delivery: a request in flight when the
// connection breaks may or may not have run on the gateway (the manager
// says 502). Clients that must not repeat a run use request keys.
//
// # Use
//
// On the gateway, inside the lease's OnStarted callback:
//
//	conn, err := tunnel.NewConnector(tunnel.Config{URLs: urls, Credential: cred,
//		Cluster: cluster, Node: node, Handler: apiHandler, Trust: trust})
//	...
//	conn.Run(termCtx, term.Epoch) // returns when the term ends
//
// On the manager, in the /v1/connect handler, after checking the credential:
//
//	link, err := tunnel.Accept(termCtx, w, r, tunnel.LinkConfig{})
//	// check link.Hello(): link.Refuse(err) or
//	err = link.Serve(termCtx, tunnel.Welcome{Manager: node})
//
// and elsewhere resp, err := link.RoundTrip(ctx, &tunnel.Request{…}).
package tunnel
