// Package ecsagenttest is a fake ECS container agent for tests: an
// http.Handler serving the task scale-in protection endpoint, recording
// every PUT and answering with canned replies.
package ecsagenttest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Path is the protection endpoint under the agent URI the fake serves.
const Path = "/task-protection/v1/state"

// Call is one PUT the agent received.
type Call struct {
	Enabled bool
	// Minutes is ExpiresInMinutes (0 when absent).
	Minutes int
	// Fields is the body's field count (a disable carries one).
	Fields int
}

// Reply is a canned answer: HTTP status and body.
type Reply struct {
	Status int
	Body   string
}

// Canned answers of the real agent.
var (
	Throttled    = Reply{400, `{"requestID":"r1","error":{"Arn":"arn:aws:ecs:us-east-1:111111111111:task/c/abc","Code":"ThrottlingException","Message":"Rate exceeded"}}`}
	AccessDenied = Reply{400, `{"requestID":"r2","error":{"Arn":"arn:aws:ecs:us-east-1:111111111111:task/c/abc","Code":"AccessDeniedException","Message":"not authorized to perform: ecs:UpdateTaskProtection"}}`}
	NotValid     = Reply{200, `{"failure":{"Arn":"arn:aws:ecs:us-east-1:111111111111:task/c/abc","Detail":null,"Reason":"TASK_NOT_VALID"}}`}
)

// Agent is the fake agent. Past its replies it reports the state asked for.
type Agent struct {
	mu      sync.Mutex
	calls   []Call
	replies []Reply
	// Prefix is the agent URI's path (ECS uses /v3/<id>).
	Prefix string
}

// Start serves a fake agent answering replies in order; its URI is the
// ECS_AGENT_URI to give the client.
func Start(t testing.TB, replies ...Reply) (a *Agent, uri string) {
	t.Helper()
	a = &Agent{replies: replies, Prefix: "/v3/0123456789abcdef"}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, srv.URL + a.Prefix
}

// Calls returns the PUTs received so far.
func (a *Agent) Calls() []Call {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Call(nil), a.calls...)
}

// ServeHTTP implements http.Handler.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut || r.URL.Path != a.Prefix+Path || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	enabled, _ := body["ProtectionEnabled"].(bool)
	minutes, _ := body["ExpiresInMinutes"].(float64)
	a.mu.Lock()
	a.calls = append(a.calls, Call{Enabled: enabled, Minutes: int(minutes), Fields: len(body)})
	rep := Reply{}
	if len(a.replies) > 0 {
		rep, a.replies = a.replies[0], a.replies[1:]
	}
	a.mu.Unlock()
	if rep.Status == 0 {
		state, _ := json.Marshal(map[string]any{"protection": map[string]any{
			"ExpirationDate": nil, "ProtectionEnabled": enabled, "TaskArn": "arn:aws:ecs:us-east-1:111111111111:task/c/abc"}})
		rep = Reply{http.StatusOK, string(state)}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.Status)
	io.WriteString(w, rep.Body)
}
