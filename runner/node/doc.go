// Package node builds a runner node from one Config: the runner core
// (package runner) with the catalog it records executions through (with the
// cluster's retention), the executor (output limit, pip settings) and the
// git checkout cache (with its refresh window), all under one directory.
//
// It is the one runner set-up: the gateway's in-process runner
// (internal/server), the ECS runner (autogate runner) and the Lambda runner
// (functions/runner) all call New, so a setting added here reaches all
// three. It lives under runner/ rather than in internal/server so that the
// Lambda imports it without the HTTP API, the lease or cobra; it imports
// only the runner core and the pieces the core runs on.
//
// What it does not do: open the store or the queue (the caller chooses
// DynamoDB, bolt, SQS or the in-process queue), or run anything; the caller
// runs Node.Core.
//
//	n, err := node.New(node.Config{Node: "r1", Cluster: "prod", Dir: "/tmp/autogate",
//		Retention: 30 * 24 * time.Hour, RepoRefresh: 5 * time.Second,
//		Store: st, Keyring: kr, Source: q, Clock: clock.Real{}, Logger: log})
//	...
//	err = n.Core.Run(recvCtx, workCtx)
package node
