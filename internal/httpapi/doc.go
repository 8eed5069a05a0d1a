// Package httpapi builds the huma API that both Autogate servers serve,
// the gateway (package api) and the Gateway Manager (package manager), so
// the two cannot drift: the huma set-up and its OpenAPI 3.1 document at
// /v1/openapi.json, the standby rule, bearer-token authentication and the
// role check of every operation, the auth routes (login, logout, whoami,
// users), /healthz and /readyz, and one error → status table that each
// server extends with its own sentinels.
//
// Every /v1 operation except the public ones (login, the document) needs a
// bearer token, or without an Authorization header the web console's
// session cookie (a token too; a state-changing method must then carry
// X-CSRF-Token, see SessionCookie), or a caller set on the request's
// context with WithPrincipal; each operation declares the action it
// performs and the caller's role must allow it. Only the active node serves /v1; a standby
// answers 503 naming the active. Unknown errors are internal: their text
// never reaches clients, it is logged with the operation's ID, which
// handlers do not pass: Problem takes it from the request.
package httpapi
