package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/autogate/autogate/internal/secret"
)

// secretsAPI is the one Secrets Manager call the Lambda runner makes, with
// the SDK's signature so *secretsmanager.Client fits.
type secretsAPI interface {
	GetSecretValue(ctx context.Context, params *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ secretsAPI = (*secretsmanager.Client)(nil)

// secretKey returns the stored-secret key: AUTOGATE_SECRET_KEY if set,
// else the Secrets Manager secret AUTOGATE_SECRET_KEY_SECRET_ID (a base64
// string, as the deploy guide creates it).
func secretKey(ctx context.Context, c config, sm secretsAPI) ([]byte, error) {
	v := c.SecretKey
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
