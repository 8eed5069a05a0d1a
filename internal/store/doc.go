// Package store defines the record store every Autogate backend implements,
// and the errors it returns. Records are opaque JSON documents addressed by
// (cluster, kind, name); the store knows nothing of their contents.
//
// Guarantees every implementation gives (checked by package storetest):
//   - Create fails with ErrExists if the key is taken; Update and Delete that
//     name a version fail with ErrConflict unless it is the current one, so a
//     stale write is rejected, never lost;
//   - Version is 1 after Create and grows by exactly one per Update;
//   - a record whose ExpiresAt has passed is absent for Get, List, Update and
//     Delete, whether or not the backend has removed it yet;
//   - List returns one kind of one cluster in ascending name order, in pages
//     joined by opaque tokens; clusters never see each other's records;
//   - ListIndex returns, in the same way, the records of one kind carrying a
//     term in one of the store's indexes (Record.Terms) and reads only
//     those; each write replaces the record's terms. Where indexes are
//     eventually consistent (DynamoDB) it may briefly lag the writes.
//
// It does not give transactions across records, nor fencing: a gateway that
// needs its writes fenced by its lease epoch wraps the store (see lease).
package store
