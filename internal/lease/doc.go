// Package lease decides which gateway of a cluster is active. Exactly one
// holder at a time acts (serves writes, dispatches executions); it learns of
// its term through Callbacks and must stop acting the moment the context
// handed to OnStarted is cancelled.
//
// This package holds the term types and the always-held Local lease of
// all-in-one mode; the DynamoDB conditional-write lease lives in
// lease/dynamo and satisfies the same contract. Every term carries an epoch
// that only grows: writes of shared state are fenced on it, so a deposed
// holder that wakes up late can change nothing.
package lease
