// Package execution is the one state machine every execution follows, in the
// all-in-one gateway, the ECS runner and the Lambda runner alike:
//
//	queued ──► running ──► succeeded | failed | timed_out | canceled
//	  │           │
//	  │           └──► lost      (its runner died; a retryable service goes
//	  │                           back to queued for one more attempt)
//	  └──► canceled | failed     (canceled before start, or never dispatched)
//
// Terminal states never change again, with one guarded exception: lost →
// queued, for a retryable service with attempts left (LoseAttempt makes both
// moves in one write). Transition enforces the graph and stamps times; the
// rules around an attempt (HeldBy, Stale and the one StaleAfter policy,
// Start, Beat, Finish, LoseAttempt, RequestCancel, FailUnstarted) are methods
// here, so no caller assigns a status or re-derives a rule. Callers persist
// the result with a version-conditional write, so two runners racing on one
// execution cannot both win. The package imports no storage, transport or AWS
// code.
package execution
