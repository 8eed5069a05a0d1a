package dynamo_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/dynamo"
)

func TestCreateTableIdempotent(t *testing.T) {
	client := newClient(t)
	name := newTable(t, client)
	if err := dynamo.CreateTable(t.Context(), client, name); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	ttl, err := client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "expiresAt" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("TTL = %+v, want enabled on expiresAt", d)
	}
}

func TestCheckTable(t *testing.T) {
	client := newClient(t)
	mk := func(t *testing.T, attrs []types.AttributeDefinition, keys []types.KeySchemaElement) string {
		t.Helper()
		name := unique("bad")
		_, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
			TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: attrs, KeySchema: keys,
		})
		if err != nil {
			t.Fatal(err)
		}
		return name
	}
	attr := func(n string, ty types.ScalarAttributeType) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(n), AttributeType: ty}
	}
	key := func(n string, kt types.KeyType) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(n), KeyType: kt}
	}
	for _, tc := range []struct {
		name    string
		table   func(t *testing.T) string
		wantErr error
		wantMsg []string
	}{
		{"Good", func(t *testing.T) string { return newTable(t, client) }, nil, nil},
		{"Missing", func(t *testing.T) string { return unique("missing") }, dynamo.ErrTableNotFound,
			[]string{"not found", "autogate init table", "CDK"}},
		{"HashOnly", func(t *testing.T) string {
			return mk(t, []types.AttributeDefinition{attr("pk", types.ScalarAttributeTypeS)}, []types.KeySchemaElement{key("pk", types.KeyTypeHash)})
		}, dynamo.ErrTableSchema, []string{"sk is not a key attribute", "want partition key pk (S) and sort key sk (S)"}},
		{"WrongNames", func(t *testing.T) string {
			return mk(t, []types.AttributeDefinition{attr("id", types.ScalarAttributeTypeS), attr("ts", types.ScalarAttributeTypeN)},
				[]types.KeySchemaElement{key("id", types.KeyTypeHash), key("ts", types.KeyTypeRange)})
		}, dynamo.ErrTableSchema, []string{"[id HASH (S), ts RANGE (N)]", "pk is not a key attribute", "unexpected key attribute"}},
		{"NumericSortKey", func(t *testing.T) string {
			return mk(t, []types.AttributeDefinition{attr("pk", types.ScalarAttributeTypeS), attr("sk", types.ScalarAttributeTypeN)},
				[]types.KeySchemaElement{key("pk", types.KeyTypeHash), key("sk", types.KeyTypeRange)})
		}, dynamo.ErrTableSchema, []string{"sk has type N, want S"}},
		{"SwappedKeys", func(t *testing.T) string {
			return mk(t, []types.AttributeDefinition{attr("pk", types.ScalarAttributeTypeS), attr("sk", types.ScalarAttributeTypeS)},
				[]types.KeySchemaElement{key("sk", types.KeyTypeHash), key("pk", types.KeyTypeRange)})
		}, dynamo.ErrTableSchema, []string{"pk is a range key, want the partition key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.table(t)
			err := dynamo.CheckTable(t.Context(), client, name)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckTable: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("CheckTable err = %v, want %v", err, tc.wantErr)
			}
			for _, m := range append(tc.wantMsg, name) {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("CheckTable err = %q, want it to mention %q", err, m)
				}
			}
		})
	}
	// A table without the indexes, and init table adding them: see
	// internal/store/dynamo/upgrade (its own DynamoDB Local).
	t.Run("StoreOnMissingTable", func(t *testing.T) {
		s := newStore(t, client, unique("missing"), nil)
		_, err := s.Get(t.Context(), store.Key{Cluster: "c", Kind: resource.KindService, Name: "a"})
		if !errors.Is(err, dynamo.ErrTableNotFound) || !strings.Contains(err.Error(), "autogate init table") {
			t.Errorf("Get on a missing table err = %v, want ErrTableNotFound with a hint", err)
		}
		assertNoSDKTypes(t, err)
	})
}

// assertNoSDKTypes fails if err lets an SDK error type escape.
func assertNoSDKTypes(t *testing.T, err error) {
	t.Helper()
	var api smithy.APIError
	var op *smithy.OperationError
	if errors.As(err, &api) || errors.As(err, &op) {
		t.Errorf("error %v wraps an SDK error type", err)
	}
}

// faultProxy forwards to DynamoDB Local but answers the first n requests
// itself with status and an error body of DynamoDB's JSON protocol.
type faultProxy struct {
	srv      *httptest.Server
	requests atomic.Int64
}

func newFaultProxy(t *testing.T, target string, n int64, status int, code string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &faultProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.requests.Add(1) <= n {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.Header().Set("X-Amzn-Errortype", code)
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected by the test"}`, code)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func TestRetries(t *testing.T) {
	direct := newClient(t)
	table := newTable(t, direct)
	ep := emulator.DynamoDB(t)
	for _, tc := range []struct {
		name    string
		status  int
		code    string
		faults  int64
		wantErr error // nil: the SDK's retries absorb the faults
	}{
		{"ThrottlingAbsorbed", 400, "ThrottlingException", 2, nil},
		{"ProvisionedThroughputAbsorbed", 400, "ProvisionedThroughputExceededException", 2, nil},
		{"InternalErrorAbsorbed", 500, "InternalServerError", 2, nil},
		{"Unavailable503Absorbed", 503, "ServiceUnavailable", 2, nil},
		{"ThrottlingPersists", 400, "ThrottlingException", 100, dynamo.ErrThrottled},
		{"ProvisionedThroughputPersists", 400, "ProvisionedThroughputExceededException", 100, dynamo.ErrThrottled},
		{"InternalErrorPersists", 500, "InternalServerError", 100, dynamo.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFaultProxy(t, ep.URL, tc.faults, tc.status, tc.code)
			client := dynamo.NewClient(emulator.AWSConfig(t, emulator.Endpoint{URL: p.srv.URL}),
				dynamo.ClientOptions{MaxAttempts: 3, MaxBackoff: 5 * time.Millisecond})
			s := newStore(t, client, table, nil)
			k := store.Key{Cluster: unique("c"), Kind: resource.KindService, Name: "a"}
			_, err := s.Create(t.Context(), store.Record{Key: k, Data: []byte(`{}`)})
			if got := p.requests.Load(); got != 3 {
				t.Errorf("proxy saw %d requests, want 3 (the SDK's max attempts)", got)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Create through %d faults: %v", tc.faults, err)
				}
				if _, err := newStore(t, direct, table, nil).Get(t.Context(), k); err != nil {
					t.Errorf("record not there after the retried Create: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Create err = %v, want %v", err, tc.wantErr)
			}
			for _, m := range []string{"PutItem", k.String(), "after the SDK's retries", "3"} {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err %q does not mention %q", err, m)
				}
			}
			assertNoSDKTypes(t, err)
		})
	}
}
