package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/secret/kms"
	"github.com/autogate/autogate/internal/store"
)

// secretsAPI is the one Secrets Manager call the Lambda runner makes, with
// the SDK's signature so *secretsmanager.Client fits.
type secretsAPI interface {
	GetSecretValue(ctx context.Context, params *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ secretsAPI = (*secretsmanager.Client)(nil)

// openKeyring returns the stored-secret keyring: the cluster's KMS keyring
// in st when AUTOGATE_KMS_KEY_ID is set (with the legacy key, if one is
// configured, for values sealed before), else the legacy key alone.
func openKeyring(ctx context.Context, c config, awsCfg aws.Config, sm secretsAPI, st store.Store) (*secret.Keyring, error) {
	legacy, err := secretKey(ctx, c, sm)
	if err != nil {
		return nil, err
	}
	if c.KMSKeyID == "" {
		return secret.NewKeyring(legacy)
	}
	kr, err := kms.Open(ctx, kms.Config{API: kms.NewClient(awsCfg), Store: st, Cluster: c.Cluster,
		KeyID: c.KMSKeyID, TTL: c.KMSCacheTTL, Legacy: legacy})
	if err != nil {
		return nil, fmt.Errorf("stored-secret keyring (KMS key %s): %w", c.KMSKeyID, err)
	}
	return kr, nil
}

// secretKey returns the stored-secret key (nil with a KMS key and no
// legacy key configured): AUTOGATE_SECRET_KEY if set,
// else the Secrets Manager secret AUTOGATE_SECRET_KEY_SECRET_ID (a base64
// string, as the deploy guide creates it).
func secretKey(ctx context.Context, c config, sm secretsAPI) ([]byte, error) {
	v := c.SecretKey
	if len(v) == 0 && c.SecretKeySecretID == "" && c.KMSKeyID != "" {
		return nil, nil // KMS keyring without a legacy key
	}
	if len(v) == 0 {
		if sm == nil {
			return nil, errors.New("secret key: neither AUTOGATE_SECRET_KEY nor a Secrets Manager client")
		}
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &c.SecretKeySecretID})
		if err != nil {
			return nil, fmt.Errorf("secrets manager GetSecretValue %s: %w", c.SecretKeySecretID, err)
		}
		if out.SecretString == nil {
			return nil, fmt.Errorf("secrets manager GetSecretValue %s: the secret has no string value", c.SecretKeySecretID)
		}
		v = secret.Value(*out.SecretString)
	}
	key, err := secret.ParseKey(string(v))
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", c.SecretKeySecretID, err)
	}
	return key, nil
}
