// Package wire holds the JSON shapes that cross Autogate's /v1 HTTP APIs
// (gateway and Gateway Manager) besides the resource types: requests, list
// pages, problems, the view of an execution (never the stored record) and
// the manager's cluster entries. The server (package api) and
// the typed client (package client) share them, so the two cannot drift.
package wire

import "time"

// LoginRequest exchanges a password for a bearer token.
type LoginRequest struct {
	Username string `json:"username" maxLength:"63"`
	Password string `json:"password" maxLength:"1024"`
}

// LoginToken carries a new bearer token. The token is shown once.
type LoginToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	User      string    `json:"user"`
	Role      string    `json:"role" enum:"admin,operator,viewer"`
}

// WhoAmI describes the caller.
type WhoAmI struct {
	User    string `json:"user"`
	Role    string `json:"role" enum:"admin,operator,viewer"`
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
}

// CreateUserRequest adds a user (admin only).
type CreateUserRequest struct {
	Name     string `json:"name" maxLength:"63"`
	Role     string `json:"role" enum:"admin,operator,viewer"`
	Password string `json:"password" minLength:"12" maxLength:"1024"`
}

// UpdateUserRequest changes a user's role, password or both (admin only);
// an absent field is kept. Any change revokes the user's tokens at once.
type UpdateUserRequest struct {
	Role     string `json:"role,omitempty" enum:"admin,operator,viewer"`
	Password string `json:"password,omitempty" minLength:"12" maxLength:"1024"`
}

// User is a user as the API shows it (never with a hash).
type User struct {
	Name      string    `json:"name"`
	Role      string    `json:"role" enum:"admin,operator,viewer"`
	CreatedAt time.Time `json:"createdAt"`
}

// RunRequest asks for one run of a service.
type RunRequest struct {
	// Type, if set, must be the service's type (guards against running the
	// wrong thing by name).
	Type   string         `json:"type,omitempty" enum:"python-script,ansible-playbook,opentofu-plan,executable"`
	Inputs map[string]any `json:"inputs,omitempty"`
	// Async returns at once with the queued execution.
	Async bool `json:"async,omitempty"`
	// WaitSeconds bounds how long a synchronous run holds the request
	// (default 60, max 300); the execution continues if it runs longer and
	// the client waits again on /v1/executions/{id}/wait.
	WaitSeconds int `json:"waitSeconds,omitempty" minimum:"0" maximum:"300"`
	// RequestKey makes the submission idempotent for this user: the same
	// run again returns the first execution; the same key with another
	// service or other inputs is refused with 409 naming that execution.
	RequestKey string `json:"requestKey,omitempty" maxLength:"128"`
	// Apply lets an opentofu-plan service apply its plan.
	Apply bool `json:"apply,omitempty"`
}

// Page is one page of a listing: at most the limit asked for, and a token
// for the next page that is absent on the last one.
type Page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"nextPageToken,omitempty" doc:"pass as pageToken for the next page; absent on the last page"`
}

// ExecutionPage is a page of executions.
type ExecutionPage = Page[*Execution]

// Node is one gateway or runner of a cluster.
type Node struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind" enum:"gateway,runner"`
	Role          string    `json:"role" enum:"active,standby,runner"`
	Epoch         int64     `json:"epoch,omitempty"`
	Address       string    `json:"address,omitempty"`
	Load          int       `json:"load"`
	Capacity      int       `json:"capacity,omitempty"`
	LastHeartbeat time.Time `json:"lastHeartbeat"`
	Version       string    `json:"version,omitempty"`
}

// Problem is an RFC 9457 problem document, as every error is returned.
type Problem struct {
	Type     string          `json:"type,omitempty"`
	Title    string          `json:"title,omitempty"`
	Status   int             `json:"status,omitempty"`
	Detail   string          `json:"detail,omitempty"`
	Instance string          `json:"instance,omitempty"`
	Errors   []ProblemDetail `json:"errors,omitempty"`
}

// ProblemDetail is one specific error within a Problem.
type ProblemDetail struct {
	Message  string `json:"message,omitempty"`
	Location string `json:"location,omitempty"`
	Value    any    `json:"value,omitempty"`
}

// RedriveRequest moves dead-lettered messages back to the work queue.
type RedriveRequest struct {
	// Max bounds how many are moved (default 100).
	Max int `json:"max,omitempty" minimum:"0" maximum:"10000"`
}

// RedriveResult says how many were moved.
type RedriveResult struct {
	Moved int `json:"moved"`
}
