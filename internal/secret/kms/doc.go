// Package kms keeps a cluster's stored-secret data keys wrapped by an AWS KMS
// key (envelope encryption) and is the only package that imports the KMS SDK.
//
// The keyring record (store kind "keyring", name "secret", one per cluster)
// lists every data key version the cluster ever used: its ID, the KMS key
// that wraps it and the wrapped bytes (KMS ciphertext), plus which version
// is current. Plaintext data keys exist only in memory: GenerateDataKey
// makes one, Decrypt unwraps one, and secret.Keyring caches the plaintext
// for a bounded time. Every KMS call carries an encryption context naming
// the cluster and key version, so a wrapped key copied to another cluster or
// version does not unwrap (and CloudTrail shows which cluster asked).
//
// Guarantees:
//   - the first process to start with a KMS key creates the record with
//     version 1 (a conditional create: concurrent starts agree on one key);
//   - Rotate re-wraps every version under the configured KMS key (ReEncrypt,
//     the plaintext never leaves KMS) and adds a new current version, in one
//     conditional write; older versions are kept, so every value sealed
//     before the rotation still opens, in this process and in others;
//   - processes pick up a new current version within one cache TTL, and open
//     values sealed under it at once (an unknown ID re-reads the record).
//
// It does not delete old versions (executions' sealed inputs use them until
// retention removes the executions), nor create or rotate the KMS key
// itself (the CDK stack does, with automatic rotation on).
//
// Usage:
//
//	kr, err := kms.Open(ctx, kms.Config{API: awskms.NewFromConfig(cfg), Store: st,
//		Cluster: "c1", KeyID: "alias/autogate-c1"})
//	sealed, err := kr.Seal(ctx, value, aad)
package kms
