// Package resource holds Autogate's domain types: the automation resources a
// cluster stores (services, decorators, repositories, secrets) and the rules
// their names and fields must follow.
//
// It guarantees that a value which passes Validate is safe to use as a store
// key and as a path element: names never contain path separators, "..",
// control characters or more than MaxNameLen bytes. It imports no transport,
// storage or AWS package.
package resource
