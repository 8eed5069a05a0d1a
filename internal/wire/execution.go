package wire

import (
	"time"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
)

// Execution is an execution as the API shows it: the stored record
// (execution.Execution) without what only the servers and runners need,
// such as the sealed inputs. Inputs hold sensitive values as
// execution.Redacted.
type Execution struct {
	ID             string               `json:"id"`
	Version        int64                `json:"version,omitempty"`
	Cluster        string               `json:"cluster"`
	Service        string               `json:"service"`
	ServiceType    resource.ServiceType `json:"serviceType" enum:"python-script,ansible-playbook,opentofu-plan,executable"`
	ServiceVersion int64                `json:"serviceVersion"`
	// Spec is the service as it was at submission.
	Spec            *resource.Service `json:"spec,omitempty"`
	Inputs          map[string]any    `json:"inputs,omitempty"`
	RequestKey      string            `json:"requestKey,omitempty"`
	Status          execution.Status  `json:"status" enum:"queued,running,succeeded,failed,timed_out,canceled,lost"`
	Reason          string            `json:"reason,omitempty"`
	ExitCode        *int              `json:"exitCode,omitempty"`
	Stdout          execution.Output  `json:"stdout,omitzero"`
	Stderr          execution.Output  `json:"stderr,omitzero"`
	Commit          string            `json:"commit,omitempty"`
	Node            string            `json:"node,omitempty"`
	Attempt         int               `json:"attempt,omitempty"`
	CancelRequested bool              `json:"cancelRequested,omitempty"`
	DeadLettered    bool              `json:"deadLettered,omitempty"`
	Submitter       string            `json:"submitter,omitempty"`
	Apply           bool              `json:"apply,omitempty"`
	Epoch           int64             `json:"epoch,omitempty"`
	CreatedAt       time.Time         `json:"createdAt"`
	StartedAt       *time.Time        `json:"startedAt,omitempty"`
	EndedAt         *time.Time        `json:"endedAt,omitempty"`
	Deadline        time.Time         `json:"deadline,omitzero"`
	Heartbeat       *time.Time        `json:"heartbeat,omitempty"`
}

// ExecutionOf returns the view of a stored execution (nil for nil).
func ExecutionOf(e *execution.Execution) *Execution {
	if e == nil {
		return nil
	}
	return &Execution{
		ID: e.ID, Version: e.Version, Cluster: e.Cluster, Service: e.Service, ServiceType: e.ServiceType,
		ServiceVersion: e.ServiceVersion, Spec: e.Spec, Inputs: e.Inputs, RequestKey: e.RequestKey,
		Status: e.Status, Reason: e.Reason, ExitCode: e.ExitCode, Stdout: e.Stdout, Stderr: e.Stderr,
		Commit: e.Commit, Node: e.Node, Attempt: e.Attempt, CancelRequested: e.CancelRequested,
		DeadLettered: e.DeadLettered, Submitter: e.Submitter, Apply: e.Apply, Epoch: e.Epoch,
		CreatedAt: e.CreatedAt, StartedAt: e.StartedAt, EndedAt: e.EndedAt, Deadline: e.Deadline, Heartbeat: e.Heartbeat,
	}
}

// Duration is how long the run took, or 0 if it has not ended.
func (e *Execution) Duration() time.Duration { return execution.RunDuration(e.StartedAt, e.EndedAt) }

// OutputEvent is the data of an `output` event of GET
// /v1/executions/{id}/output: new text of one stream, redacted as stored.
// The event's ID is the byte offsets "<stdout>.<stderr>" after it.
type OutputEvent struct {
	Stream string `json:"stream" enum:"stdout,stderr"`
	Text   string `json:"text"`
}

// OutputEnd is the data of the `end` event: how the run ended. ExitCode is
// null when no process exit code is known (lost, canceled before start).
type OutputEnd struct {
	Status   execution.Status `json:"status"`
	ExitCode *int             `json:"exitCode"`
}
