// Package queue carries executions from the active gateway to runners. It
// holds the versioned message Envelope and Local, the in-process queue of
// all-in-one mode; the SQS queue lives in queue/sqs. Delivery is at least
// once: runners make a duplicate harmless by claiming the execution record
// with a conditional write before they start anything.
package queue
