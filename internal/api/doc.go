// Package api serves the gateway's routes of Autogate's versioned HTTP/JSON
// API under /v1 on the shared huma layer (package httpapi, which also holds
// authentication, the auth routes, health and the error table), with its
// OpenAPI 3.1 document at /v1/openapi.json (and .yaml), built code-first with
// huma: the Go types are the schema, so the document cannot drift from the
// handlers, bodies are validated against it (unknown fields rejected), and
// every error is an RFC 9457 application/problem+json document.
//
// Every /v1 operation except login and the OpenAPI document needs a bearer
// token, or a caller set on the request's context with WithPrincipal (the
// gateway's end of the Gateway Manager tunnel does that, for the manager
// user each forwarded request names); each operation declares the action
// it performs and the caller's role must allow it. Only the active gateway
// serves /v1; a standby answers 503 naming the active node. /healthz (live)
// and /readyz (active and able to serve) are plain and unauthenticated.
// Bodies are capped (MaxBodyBytes) with 413.
package api
