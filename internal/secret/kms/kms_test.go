package kms_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/secret"
	"github.com/autogate/autogate/internal/secret/kms"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/bolt"
	"github.com/autogate/autogate/internal/store/dynamo"
)

func TestMain(m *testing.M) { emulator.Main(m) }

var seq atomic.Int64

func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1_000_000_000, seq.Add(1))
}

// fakeKMS is a func-field fake for fault injection.
type fakeKMS struct {
	generate  func(context.Context, *awskms.GenerateDataKeyInput) (*awskms.GenerateDataKeyOutput, error)
	decrypt   func(context.Context, *awskms.DecryptInput) (*awskms.DecryptOutput, error)
	reEncrypt func(context.Context, *awskms.ReEncryptInput) (*awskms.ReEncryptOutput, error)
}

var _ kms.API = (*fakeKMS)(nil)

func (f *fakeKMS) GenerateDataKey(ctx context.Context, in *awskms.GenerateDataKeyInput, _ ...func(*awskms.Options)) (*awskms.GenerateDataKeyOutput, error) {
	return f.generate(ctx, in)
}
func (f *fakeKMS) Decrypt(ctx context.Context, in *awskms.DecryptInput, _ ...func(*awskms.Options)) (*awskms.DecryptOutput, error) {
	return f.decrypt(ctx, in)
}
func (f *fakeKMS) ReEncrypt(ctx context.Context, in *awskms.ReEncryptInput, _ ...func(*awskms.Options)) (*awskms.ReEncryptOutput, error) {
	return f.reEncrypt(ctx, in)
}

func boltStore(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestOpenFailsClearlyWhenKMSRefuses(t *testing.T) {
	denied := errors.New("AccessDeniedException: not authorized")
	var gotCtx map[string]string
	f := &fakeKMS{generate: func(_ context.Context, in *awskms.GenerateDataKeyInput) (*awskms.GenerateDataKeyOutput, error) {
		gotCtx = in.EncryptionContext
		return nil, denied
	}}
	st := boltStore(t)
	_, err := kms.Open(t.Context(), kms.Config{API: f, Store: st, Cluster: "c1", KeyID: "alias/x"})
	if !errors.Is(err, denied) {
		t.Fatalf("Open = %v, want the KMS error", err)
	}
	if gotCtx["autogate:cluster"] != "c1" || gotCtx["autogate:data-key"] != "1" {
		t.Errorf("encryption context %v, want cluster c1 and data key 1", gotCtx)
	}
	if _, err := st.Get(t.Context(), store.Key{Cluster: "c1", Kind: kms.Kind, Name: kms.Name}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed Open left a keyring record (Get err %v)", err)
	}
	for name, cfg := range map[string]kms.Config{
		"no client":  {Store: st, Cluster: "c1", KeyID: "k"},
		"no store":   {API: f, Cluster: "c1", KeyID: "k"},
		"no key":     {API: f, Store: st, Cluster: "c1"},
		"bad cluste": {API: f, Store: st, Cluster: "", KeyID: "k"},
	} {
		if _, err := kms.New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}

// kmsClient returns a client of this binary's local-kms and two fresh keys.
func kmsClient(t *testing.T) (*awskms.Client, string, string) {
	t.Helper()
	c := awskms.NewFromConfig(emulator.AWSConfig(t, emulator.KMS(t)))
	var ids []string
	for range 2 {
		out, err := c.CreateKey(t.Context(), &awskms.CreateKeyInput{Description: aws.String(t.Name())})
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		ids = append(ids, aws.ToString(out.KeyMetadata.Arn))
	}
	return c, ids[0], ids[1]
}

func TestKeyringAgainstLocalKMS(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"embedded": boltStore,
		"dynamodb": func(t *testing.T) store.Store {
			client := dynamo.NewClient(emulator.AWSConfig(t, emulator.DynamoDB(t)), dynamo.ClientOptions{MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond})
			table := unique("kms")
			if err := dynamo.CreateTable(t.Context(), client, table); err != nil {
				t.Fatalf("CreateTable: %v", err)
			}
			st, err := dynamo.New(client, dynamo.Config{Table: table, Clock: clock.Real{}})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			client, key1, key2 := kmsClient(t)
			st := newStore(t)
			clk := clock.NewFake(time.Now())
			const ttl = time.Minute
			cfg := kms.Config{API: client, Store: st, Cluster: unique("c"), KeyID: key1, TTL: ttl, Clock: clk}
			// Two gateways start at once: both agree on one data key.
			a, err := kms.Open(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Open a: %v", err)
			}
			b, err := kms.Open(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Open b: %v", err)
			}
			aad := []byte(cfg.Cluster + "/secret/db")
			before, err := a.Seal(t.Context(), []byte("hunter2"), aad)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := b.Open(t.Context(), before, aad); err != nil || string(got) != "hunter2" {
				t.Fatalf("b.Open(a's value) = %q, %v", got, err)
			}

			// Rotate under a second KMS key, then disable the first: the
			// re-wrapped old version still unwraps.
			rotCfg := cfg
			rotCfg.KeyID = key2
			src, err := kms.New(rotCfg)
			if err != nil {
				t.Fatal(err)
			}
			rot, err := src.Rotate(t.Context())
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if rot.Previous != "1" || rot.Current != "2" || rot.Rewrapped != 1 {
				t.Errorf("Rotate = %+v, want 1 -> 2, 1 re-wrapped", rot)
			}
			if _, err := client.DisableKey(t.Context(), &awskms.DisableKeyInput{KeyId: aws.String(key1)}); err != nil {
				t.Fatalf("DisableKey: %v", err)
			}

			// Within the TTL a keeps sealing under version 1 (no downtime);
			// a fresh process seals under 2 and a opens that at once.
			if id := secret.KeyID(mustSeal(t, a, aad)); id != "1" {
				t.Errorf("a within its TTL sealed under %q, want the cached 1", id)
			}
			c, err := kms.Open(t.Context(), rotCfg)
			if err != nil {
				t.Fatalf("Open c after rotation: %v", err)
			}
			after := mustSeal(t, c, aad)
			if id := secret.KeyID(after); id != "2" {
				t.Errorf("c sealed under %q, want 2", id)
			}
			if got, err := a.Open(t.Context(), after, aad); err != nil || string(got) != "v" {
				t.Errorf("a.Open(value under 2) = %q, %v", got, err)
			}
			clk.Advance(ttl)
			if id := secret.KeyID(mustSeal(t, a, aad)); id != "2" {
				t.Errorf("a after its TTL sealed under %q, want 2", id)
			}
			// Past the TTL version 1 is unwrapped again, through key2 now.
			if got, err := a.Open(t.Context(), before, aad); err != nil || string(got) != "hunter2" {
				t.Errorf("a.Open(value sealed before the rotation) = %q, %v", got, err)
			}
			if got, err := c.Open(t.Context(), before, aad); err != nil || string(got) != "hunter2" {
				t.Errorf("c.Open(value sealed before the rotation) = %q, %v", got, err)
			}

			// The wrapped key is bound to its cluster: another cluster's
			// record holding it does not unwrap.
			rec, err := st.Get(t.Context(), store.Key{Cluster: cfg.Cluster, Kind: kms.Kind, Name: kms.Name})
			if err != nil {
				t.Fatal(err)
			}
			other := unique("c")
			if _, err := st.Create(t.Context(), store.Record{Key: store.Key{Cluster: other, Kind: kms.Kind, Name: kms.Name}, Data: rec.Data}); err != nil {
				t.Fatal(err)
			}
			otherCfg := rotCfg
			otherCfg.Cluster = other
			if _, err := kms.Open(t.Context(), otherCfg); err == nil {
				t.Error("a keyring record copied to another cluster unwrapped")
			}
		})
	}
}

func mustSeal(t *testing.T, k *secret.Keyring, aad []byte) []byte {
	t.Helper()
	s, err := k.Seal(t.Context(), []byte("v"), aad)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return s
}
