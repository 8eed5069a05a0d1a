package kms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/store"
)

// API is the KMS calls the keyring makes, with the SDK's signatures, so
// *kms.Client fits and a func-field fake covers unit tests.
type API interface {
	GenerateDataKey(ctx context.Context, params *awskms.GenerateDataKeyInput, optFns ...func(*awskms.Options)) (*awskms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, params *awskms.DecryptInput, optFns ...func(*awskms.Options)) (*awskms.DecryptOutput, error)
	ReEncrypt(ctx context.Context, params *awskms.ReEncryptInput, optFns ...func(*awskms.Options)) (*awskms.ReEncryptOutput, error)
}

var _ API = (*awskms.Client)(nil)

// Kind is the store kind of the keyring record; Name is its name.
const (
	Kind resource.Kind = "keyring"
	Name               = "secret"
)

// Config configures a Keyring.
type Config struct {
	API     API
	Store   store.Store
	Cluster string
	// KeyID is the KMS key (ID, ARN or alias) new data keys are wrapped
	// under, and the one Rotate re-wraps every version under.
	KeyID string
	// TTL bounds how long plaintext data keys stay in memory; zero means
	// secret.DefaultCacheTTL.
	TTL   time.Duration
	Clock clock.Clock
	// Legacy is the pre-KMS key (AUTOGATE_SECRET_KEY or DATA_DIR/secret.key),
	// if any: values sealed under it still open.
	Legacy []byte
}

func (c *Config) validate() error {
	var errs []error
	if c.API == nil {
		errs = append(errs, errors.New("no KMS client"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("no store"))
	}
	if err := resource.ValidateCluster(c.Cluster); err != nil {
		errs = append(errs, err)
	}
	if c.KeyID == "" {
		errs = append(errs, errors.New("no KMS key ID"))
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kms keyring: %w", err)
	}
	return nil
}

// Keyring is the cluster's KMS-wrapped data keys: a secret.Source.
type Keyring struct{ cfg Config }

var _ secret.Source = (*Keyring)(nil)

// New returns the cluster's KMS keyring; it makes no call.
func New(cfg Config) (*Keyring, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Keyring{cfg: cfg}, nil
}

// Open returns a secret.Keyring sealing under the cluster's current KMS data
// key (creating the keyring record on first use) and checks at once that the
// KMS key answers, so a missing grant fails start-up, not the first secret.
func Open(ctx context.Context, cfg Config) (*secret.Keyring, error) {
	src, err := New(cfg)
	if err != nil {
		return nil, err
	}
	kr, err := secret.NewDataKeyring(src, secret.CacheOptions{TTL: src.cfg.TTL, Clock: src.cfg.Clock, Legacy: cfg.Legacy})
	if err != nil {
		return nil, err
	}
	if _, err := kr.CurrentKeyID(ctx); err != nil {
		return nil, err
	}
	return kr, nil
}

// record is the keyring record's JSON document.
type record struct {
	Current string    `json:"current"`
	Keys    []version `json:"keys"`
}

type version struct {
	ID string `json:"id"`
	// KMSKeyID is the ARN of the KMS key that wraps it (as KMS reported).
	KMSKeyID  string    `json:"kmsKeyId"`
	Wrapped   []byte    `json:"wrapped"`
	CreatedAt time.Time `json:"createdAt"`
}

func (r *record) find(id string) (version, bool) {
	for _, v := range r.Keys {
		if v.ID == id {
			return v, true
		}
	}
	return version{}, false
}

func (k *Keyring) key() store.Key { return store.Key{Cluster: k.cfg.Cluster, Kind: Kind, Name: Name} }

// context binds a wrapped data key to its cluster and version.
func (k *Keyring) context(id string) map[string]string {
	return map[string]string{"autogate:cluster": k.cfg.Cluster, "autogate:data-key": id}
}

func (k *Keyring) load(ctx context.Context) (record, int64, error) {
	rec, err := k.cfg.Store.Get(ctx, k.key())
	if err != nil {
		return record{}, 0, fmt.Errorf("keyring record %s: %w", k.key(), err)
	}
	var r record
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return record{}, 0, fmt.Errorf("decode keyring record %s: %w", k.key(), err)
	}
	if _, ok := r.find(r.Current); !ok {
		return record{}, 0, fmt.Errorf("keyring record %s: current version %q is not listed", k.key(), r.Current)
	}
	return r, rec.Version, nil
}

// generate asks KMS for a new data key with ID id.
func (k *Keyring) generate(ctx context.Context, id string) (version, []byte, error) {
	out, err := k.cfg.API.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
		KeyId: aws.String(k.cfg.KeyID), KeySpec: types.DataKeySpecAes256, EncryptionContext: k.context(id)})
	if err != nil {
		return version{}, nil, fmt.Errorf("kms GenerateDataKey %s: %w", k.cfg.KeyID, err)
	}
	if len(out.Plaintext) != secret.KeySize || len(out.CiphertextBlob) == 0 {
		return version{}, nil, fmt.Errorf("kms GenerateDataKey %s: %d-byte key, want %d", k.cfg.KeyID, len(out.Plaintext), secret.KeySize)
	}
	return version{ID: id, KMSKeyID: aws.ToString(out.KeyId), Wrapped: out.CiphertextBlob, CreatedAt: k.cfg.Clock.Now().UTC()}, out.Plaintext, nil
}

func (k *Keyring) unwrap(ctx context.Context, v version) ([]byte, error) {
	in := &awskms.DecryptInput{CiphertextBlob: v.Wrapped, EncryptionContext: k.context(v.ID)}
	if v.KMSKeyID != "" {
		in.KeyId = aws.String(v.KMSKeyID)
	}
	out, err := k.cfg.API.Decrypt(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("kms Decrypt data key %s (%s): %w", v.ID, v.KMSKeyID, err)
	}
	if len(out.Plaintext) != secret.KeySize {
		return nil, fmt.Errorf("kms Decrypt data key %s: %d bytes, want %d", v.ID, len(out.Plaintext), secret.KeySize)
	}
	return out.Plaintext, nil
}

// Current implements secret.Source: it reads the record (creating it with
// version 1 if absent) and unwraps the current version.
func (k *Keyring) Current(ctx context.Context) (string, []byte, error) {
	r, _, err := k.load(ctx)
	if errors.Is(err, store.ErrNotFound) {
		v, plain, err := k.generate(ctx, "1")
		if err != nil {
			return "", nil, err
		}
		data, _ := json.Marshal(record{Current: v.ID, Keys: []version{v}}) // plain data always marshals
		_, err = k.cfg.Store.Create(ctx, store.Record{Key: k.key(), Data: data})
		if err == nil {
			return v.ID, plain, nil
		}
		clear(plain)
		if !errors.Is(err, store.ErrExists) {
			return "", nil, fmt.Errorf("create keyring record %s: %w", k.key(), err)
		}
		// Another process created it first: use theirs.
		r, _, err = k.load(ctx)
	}
	if err != nil {
		return "", nil, err
	}
	v, _ := r.find(r.Current) // load checked it is listed
	plain, err := k.unwrap(ctx, v)
	if err != nil {
		return "", nil, err
	}
	return v.ID, plain, nil
}

// Key implements secret.Source.
func (k *Keyring) Key(ctx context.Context, id string) ([]byte, error) {
	r, _, err := k.load(ctx)
	if err != nil {
		return nil, err
	}
	v, ok := r.find(id)
	if !ok {
		return nil, fmt.Errorf("keyring record %s has no version %q: %w", k.key(), id, secret.ErrUnknownKey)
	}
	return k.unwrap(ctx, v)
}

// Rotation is what Rotate did.
type Rotation struct {
	// Previous and Current are the current version IDs before and after;
	// Previous is "" if Rotate created the record.
	Previous, Current string
	// Rewrapped counts the older versions re-wrapped under Config.KeyID.
	Rewrapped int
}

// Rotate re-wraps every data key version under Config.KeyID and makes a new
// data key the current one, in one conditional write of the record (retried
// on a concurrent change). Running processes keep opening every value; they
// seal under the new version within one cache TTL. If the record does not
// exist yet, Rotate creates it.
func (k *Keyring) Rotate(ctx context.Context) (Rotation, error) {
	for range 8 {
		r, ver, err := k.load(ctx)
		if errors.Is(err, store.ErrNotFound) {
			id, plain, err := k.Current(ctx)
			clear(plain)
			return Rotation{Current: id}, err
		}
		if err != nil {
			return Rotation{}, err
		}
		next := 1
		for _, v := range r.Keys {
			if n, err := strconv.Atoi(v.ID); err == nil && n >= next {
				next = n + 1
			}
		}
		for i, v := range r.Keys {
			out, err := k.cfg.API.ReEncrypt(ctx, &awskms.ReEncryptInput{
				CiphertextBlob: v.Wrapped, DestinationKeyId: aws.String(k.cfg.KeyID),
				SourceEncryptionContext: k.context(v.ID), DestinationEncryptionContext: k.context(v.ID)})
			if err != nil {
				return Rotation{}, fmt.Errorf("kms ReEncrypt data key %s to %s: %w", v.ID, k.cfg.KeyID, err)
			}
			r.Keys[i].Wrapped, r.Keys[i].KMSKeyID = out.CiphertextBlob, aws.ToString(out.KeyId)
		}
		nv, plain, err := k.generate(ctx, strconv.Itoa(next))
		if err != nil {
			return Rotation{}, err
		}
		clear(plain) // processes unwrap it when they need it
		rot := Rotation{Previous: r.Current, Current: nv.ID, Rewrapped: len(r.Keys)}
		r.Keys, r.Current = append(r.Keys, nv), nv.ID
		data, _ := json.Marshal(r) // plain data always marshals
		_, err = k.cfg.Store.Update(ctx, store.Record{Key: k.key(), Version: ver, Data: data})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return Rotation{}, fmt.Errorf("update keyring record %s: %w", k.key(), err)
		}
		return rot, nil
	}
	return Rotation{}, fmt.Errorf("rotate keyring %s: too many concurrent writers: %w", k.key(), store.ErrConflict)
}

// NewClient returns the KMS client for awsCfg (the SDK's standard chain,
// AWS_ENDPOINT_URL_KMS included), so wiring code needs no KMS import.
func NewClient(awsCfg aws.Config) *awskms.Client { return awskms.NewFromConfig(awsCfg) }
