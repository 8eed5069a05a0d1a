// Package ecsagent calls the Amazon ECS container agent's task scale-in
// protection endpoint ($ECS_AGENT_URI/task-protection/v1/state) from inside
// a task, so an ECS runner can keep Service Auto Scaling and deployments from
// stopping its task while it holds work.
//
// The agent makes the ECS API calls (UpdateTaskProtection) with the task
// role; this package only speaks the agent's local HTTP API. A protection
// expires on its own after the minutes asked for, so a process that hangs or
// forgets to drop it blocks scale-in for a bounded time only; the caller
// renews it while it still holds work.
//
// What it does not do: decide when to protect (package runner does), retry
// (the caller retries on its own schedule), or anything outside ECS (no
// ECS_AGENT_URI, no client: see FromEnv).
//
//	p, ok, err := ecsagent.FromEnv(os.Getenv)
//	if ok { err = p.SetProtection(ctx, true, 10*time.Minute) }
package ecsagent
