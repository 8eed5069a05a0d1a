package dynamo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
	"github.com/autogate/autogate/internal/store/dynamo"
	"github.com/autogate/autogate/internal/store/storetest"
)

func TestMain(m *testing.M) { emulator.Main(m) }

var seq atomic.Int64

// unique returns a name no other test of this binary uses, for tables and
// clusters in the shared DynamoDB Local.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1_000_000_000, seq.Add(1))
}

func newClient(t *testing.T) *dynamodb.Client {
	t.Helper()
	return dynamo.NewClient(emulator.AWSConfig(t, emulator.DynamoDB(t)), dynamo.ClientOptions{MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond})
}

// newTable creates a table with dynamo.CreateTable, TTL included.
//
// DynamoDB Local 3.x does run TTL: it deletes items whose expiresAt is in
// the real past within about a second. Tests on such a table therefore
// start their fake clocks at the real time (now), so that "expired" is a
// matter of the fake clock only.
func newTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	name := unique("store")
	if err := dynamo.CreateTable(t.Context(), client, name); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	return name
}

// newTableNoTTL creates a table with the right keys but TTL off, for the
// contract suite, whose fake clock starts on a fixed date in the real past:
// DynamoDB Local's TTL would delete its expiring records (e2 of Expiry)
// behind the test's back.
func newTableNoTTL(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	name := unique("contract")
	_, err := client.CreateTable(t.Context(), dynamo.TableInput(name))
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	if err := dynamo.CheckTable(t.Context(), client, name); err != nil {
		t.Fatalf("CheckTable of a table without TTL: %v", err)
	}
	return name
}

// now is a fake clock's start near the real time (see newTable).
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

func newStore(t *testing.T, client dynamo.DynamoDBAPI, table string, clk clock.Clock) *dynamo.Store {
	t.Helper()
	s, err := dynamo.New(client, dynamo.Config{Table: table, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	client := newClient(t)
	// One table for the whole suite: every subtest uses fresh cluster IDs,
	// and the two stores of ClustersIsolated really share it.
	table := newTableNoTTL(t, client)
	storetest.Run(t, func(t *testing.T, clk clock.Clock) store.Store {
		return newStore(t, client, table, clk)
	})
}

// putLease writes cluster's lease item as lease/dynamo would.
func putLease(t *testing.T, client *dynamodb.Client, table, cluster, holder string, epoch int64) {
	t.Helper()
	pk, sk := dynamo.LeaseKey(cluster)
	_, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			dynamo.AttrPK:          &types.AttributeValueMemberS{Value: pk},
			dynamo.AttrSK:          &types.AttributeValueMemberS{Value: sk},
			dynamo.AttrLeaseHolder: &types.AttributeValueMemberS{Value: holder},
			dynamo.AttrLeaseEpoch:  &types.AttributeValueMemberN{Value: fmt.Sprint(epoch)},
		},
	})
	if err != nil {
		t.Fatalf("put lease: %v", err)
	}
}

func TestFenced(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	clk := clock.NewFake(now())
	base := newStore(t, client, table, clk)
	key := func(c, n string) store.Key { return store.Key{Cluster: c, Kind: resource.KindService, Name: n} }
	big := bytes.Repeat([]byte("x"), 900_000)
	big[0], big[len(big)-1] = '"', '"'

	t.Run("CurrentEpochWrites", func(t *testing.T) {
		c := unique("c")
		putLease(t, client, table, c, "gw-a", 3)
		f := base.Fenced(c, lease.Term{Holder: "gw-a", Epoch: 3})
		r, err := f.Create(t.Context(), store.Record{Key: key(c, "a"), Data: []byte(`{"v":1}`)})
		if err != nil {
			t.Fatalf("fenced Create: %v", err)
		}
		r.Data = big
		if r, err = f.Update(t.Context(), r); err != nil {
			t.Fatalf("fenced large Update: %v", err)
		}
		if got, err := base.Get(t.Context(), key(c, "a")); err != nil || !bytes.Equal(got.Data, big) || got.Version != 2 {
			t.Fatalf("Get after fenced update = v%d %d bytes, %v; want v2 %d bytes", got.Version, len(got.Data), err, len(big))
		}
		// The fenced path classifies failed conditions like the plain one.
		stale := r
		stale.Version = 1
		if _, err := f.Update(t.Context(), stale); !errors.Is(err, store.ErrConflict) {
			t.Errorf("fenced stale Update err = %v, want ErrConflict", err)
		}
		if _, err := f.Create(t.Context(), store.Record{Key: key(c, "a"), Data: []byte(`{}`)}); !errors.Is(err, store.ErrExists) {
			t.Errorf("fenced duplicate Create err = %v, want ErrExists", err)
		}
		if err := f.Delete(t.Context(), key(c, "nope"), 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("fenced Delete missing err = %v, want ErrNotFound", err)
		}
		if err := f.Delete(t.Context(), key(c, "a"), r.Version); err != nil {
			t.Fatalf("fenced Delete: %v", err)
		}
		assertNoChunks(t, client, table, c)
	})

	t.Run("StaleEpochChangesNothing", func(t *testing.T) {
		c := unique("c")
		putLease(t, client, table, c, "gw-a", 3)
		old := base.Fenced(c, lease.Term{Holder: "gw-a", Epoch: 3})
		r, err := old.Create(t.Context(), store.Record{Key: key(c, "a"), Data: []byte(`{"v":"a"}`)})
		if err != nil {
			t.Fatal(err)
		}
		// gw-b takes the lease over: epoch 4.
		putLease(t, client, table, c, "gw-b", 4)
		for _, tc := range []struct {
			name  string
			write func() error
		}{
			{"Create", func() error {
				_, err := old.Create(t.Context(), store.Record{Key: key(c, "b"), Data: []byte(`{}`)})
				return err
			}},
			{"CreateLarge", func() error {
				_, err := old.Create(t.Context(), store.Record{Key: key(c, "c"), Data: big})
				return err
			}},
			{"Update", func() error {
				u := r
				u.Data = []byte(`{"v":"stale"}`)
				_, err := old.Update(t.Context(), u)
				return err
			}},
			{"Delete", func() error { return old.Delete(t.Context(), key(c, "a"), 0) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.write(); !errors.Is(err, store.ErrFenced) {
					t.Fatalf("write with epoch 3 after epoch 4 err = %v, want ErrFenced", err)
				}
			})
		}
		got, err := base.Get(t.Context(), key(c, "a"))
		if err != nil || got.Version != 1 || string(got.Data) != `{"v":"a"}` {
			t.Errorf("after stale writes Get = v%d %s, %v; want v1 {\"v\":\"a\"}", got.Version, got.Data, err)
		}
		recs, _, err := base.List(t.Context(), c, resource.KindService, store.ListOptions{})
		if err != nil || len(recs) != 1 {
			t.Errorf("after stale writes List = %d records, %v; want 1", len(recs), err)
		}
		assertNoChunks(t, client, table, c)
		// The new holder writes fine.
		cur := base.Fenced(c, lease.Term{Holder: "gw-b", Epoch: 4})
		if _, err := cur.Create(t.Context(), store.Record{Key: key(c, "b"), Data: []byte(`{}`)}); err != nil {
			t.Errorf("epoch 4 Create: %v", err)
		}
	})

	t.Run("ReleasedOrAbsentLease", func(t *testing.T) {
		c := unique("c")
		f := base.Fenced(c, lease.Term{Holder: "gw-a", Epoch: 1})
		if _, err := f.Create(t.Context(), store.Record{Key: key(c, "a"), Data: []byte(`{}`)}); !errors.Is(err, store.ErrFenced) {
			t.Errorf("write without a lease item err = %v, want ErrFenced", err)
		}
		putLease(t, client, table, c, "", 1) // released: same epoch, no holder
		if _, err := f.Create(t.Context(), store.Record{Key: key(c, "a"), Data: []byte(`{}`)}); !errors.Is(err, store.ErrFenced) {
			t.Errorf("write after release err = %v, want ErrFenced", err)
		}
	})

	t.Run("OtherCluster", func(t *testing.T) {
		c := unique("c")
		putLease(t, client, table, c, "gw-a", 1)
		f := base.Fenced(c, lease.Term{Holder: "gw-a", Epoch: 1})
		_, err := f.Create(t.Context(), store.Record{Key: key(c+"x", "a"), Data: []byte(`{}`)})
		if !errors.Is(err, resource.ErrInvalid) {
			t.Errorf("write to another cluster through a fenced view err = %v, want ErrInvalid", err)
		}
	})
}

// assertNoChunks fails if any chunk item of cluster c's services remains
// (a scan: tests only).
func assertNoChunks(t *testing.T, client *dynamodb.Client, table, c string) {
	t.Helper()
	out, err := client.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range out.Items {
		pk := it[dynamo.AttrPK].(*types.AttributeValueMemberS).Value
		if strings.HasPrefix(pk, c+"#") && strings.Contains(pk, "#chunks#") {
			t.Errorf("chunk item %s left behind", pk)
		}
	}
}

func TestLargeRecords(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	clk := clock.NewFake(now())
	s := newStore(t, client, table, clk)
	c := unique("c")
	k := store.Key{Cluster: c, Kind: resource.KindExecution, Name: "e1"}
	doc := func(n int, fill byte) []byte {
		b := bytes.Repeat([]byte{fill}, n)
		b[0], b[n-1] = '"', '"'
		return b
	}

	r, err := s.Create(t.Context(), store.Record{Key: k, Data: doc(3_000_000, 'a'), ExpiresAt: clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatalf("Create 3 MB: %v", err)
	}
	for _, step := range []struct {
		name string
		size int
		fill byte
	}{{"Grow", 5_000_000, 'b'}, {"Shrink", 10, 'c'}, {"GrowAgain", 400_000, 'd'}} {
		r.Data = doc(step.size, step.fill)
		if r, err = s.Update(t.Context(), r); err != nil {
			t.Fatalf("%s Update: %v", step.name, err)
		}
		got, err := s.Get(t.Context(), k)
		if err != nil || !bytes.Equal(got.Data, r.Data) {
			t.Fatalf("%s: Get = %d bytes, %v; want %d identical", step.name, len(got.Data), err, step.size)
		}
		if n := countChunks(t, client, table, c); n != (step.size+379_999)/380_000*boolInt(step.size > 380_000) {
			t.Errorf("%s: %d chunk items in the table, want only the current record's", step.name, n)
		}
	}
	// List shows the record whole and never a chunk.
	recs, _, err := s.List(t.Context(), c, resource.KindExecution, store.ListOptions{})
	if err != nil || len(recs) != 1 || !bytes.Equal(recs[0].Data, r.Data) {
		t.Fatalf("List = %d records, %v; want the one record whole", len(recs), err)
	}
	if _, err := s.Create(t.Context(), store.Record{Key: store.Key{Cluster: c, Kind: resource.KindExecution, Name: "huge"}, Data: doc(dynamo.MaxDataBytes+1, 'e')}); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("Create over MaxDataBytes err = %v, want ErrTooLarge", err)
	}
	// Expired large records are replaced by Create, and their chunks go.
	clk.Advance(2 * time.Hour)
	if _, err := s.Create(t.Context(), store.Record{Key: k, Data: []byte(`{}`)}); err != nil {
		t.Fatalf("Create over expired large record: %v", err)
	}
	if n := countChunks(t, client, table, c); n != 0 {
		t.Errorf("%d chunk items left after the expired record was replaced", n)
	}
	if err := s.Delete(t.Context(), k, 0); err != nil {
		t.Fatal(err)
	}
	// Deleting a large record deletes its chunks.
	k2 := store.Key{Cluster: c, Kind: resource.KindExecution, Name: "e2"}
	r2, err := s.Create(t.Context(), store.Record{Key: k2, Data: doc(1_000_000, 'f')})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), k2, r2.Version); err != nil {
		t.Fatalf("Delete large record: %v", err)
	}
	if n := countChunks(t, client, table, c); n != 0 {
		t.Errorf("%d chunk items left after deleting the large record", n)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func countChunks(t *testing.T, client *dynamodb.Client, table, c string) int {
	t.Helper()
	n := 0
	p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			pk := it[dynamo.AttrPK].(*types.AttributeValueMemberS).Value
			if strings.HasPrefix(pk, c+"#") && strings.Contains(pk, "#chunks#") {
				n++
			}
		}
	}
	return n
}

func TestInvalidInput(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	s := newStore(t, client, table, nil)
	for _, tc := range []struct {
		name string
		key  store.Key
	}{
		{"ClusterWithHash", store.Key{Cluster: "a#b", Kind: resource.KindService, Name: "x"}},
		{"ClusterUpperCase", store.Key{Cluster: "Prod", Kind: resource.KindService, Name: "x"}},
		{"ClusterTooLong", store.Key{Cluster: strings.Repeat("a", 41), Kind: resource.KindService, Name: "x"}},
		{"ClusterEmpty", store.Key{Cluster: "", Kind: resource.KindService, Name: "x"}},
		{"KindWithHash", store.Key{Cluster: "c", Kind: "service#x", Name: "x"}},
		{"KindLease", store.Key{Cluster: "c", Kind: "lease", Name: "lease"}},
		{"NameNUL", store.Key{Cluster: "c", Kind: resource.KindService, Name: "a\x00b"}},
		{"NameTooLong", store.Key{Cluster: "c", Kind: resource.KindService, Name: strings.Repeat("n", 1025)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(t.Context(), store.Record{Key: tc.key, Data: []byte(`{}`)})
			if !errors.Is(err, resource.ErrInvalid) {
				t.Errorf("Create(%q) err = %v, want ErrInvalid", tc.key, err)
			}
			if _, err := s.Get(t.Context(), tc.key); !errors.Is(err, resource.ErrInvalid) {
				t.Errorf("Get(%q) err = %v, want ErrInvalid", tc.key, err)
			}
			if _, _, err := s.List(t.Context(), tc.key.Cluster, tc.key.Kind, store.ListOptions{}); tc.key.Kind != resource.KindService && !errors.Is(err, resource.ErrInvalid) || strings.HasPrefix(tc.name, "Cluster") && !errors.Is(err, resource.ErrInvalid) {
				t.Errorf("List(%q, %q) err = %v, want ErrInvalid", tc.key.Cluster, tc.key.Kind, err)
			}
		})
	}
	if _, err := s.Create(t.Context(), store.Record{Key: store.Key{Cluster: "c", Kind: resource.KindService, Name: "x"}, Data: []byte("not json")}); !errors.Is(err, resource.ErrInvalid) {
		t.Errorf("Create with non-JSON data err = %v, want ErrInvalid", err)
	}
}

func TestPageTokens(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	s := newStore(t, client, table, nil)
	c := unique("c")
	for i := range 5 {
		if _, err := s.Create(t.Context(), store.Record{Key: store.Key{Cluster: c, Kind: resource.KindService, Name: fmt.Sprintf("s%d", i)}, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	_, tok, err := s.List(t.Context(), c, resource.KindService, store.ListOptions{Limit: 2})
	if err != nil || tok == "" {
		t.Fatalf("List = token %q, %v; want a next page", tok, err)
	}
	for _, tc := range []struct {
		name    string
		cluster string
		kind    resource.Kind
		prefix  string
		token   string
	}{
		{"OtherCluster", c + "x", resource.KindService, "", tok},
		{"OtherKind", c, resource.KindSecret, "", tok},
		{"OtherPrefix", c, resource.KindService, "s", tok},
		{"Truncated", c, resource.KindService, "", tok[:len(tok)-3]},
		{"Flipped", c, resource.KindService, "", flip(tok)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.List(t.Context(), tc.cluster, tc.kind, store.ListOptions{PageToken: tc.token, Prefix: tc.prefix})
			if !errors.Is(err, store.ErrBadPageToken) {
				t.Errorf("List err = %v, want ErrBadPageToken", err)
			}
		})
	}
	// Pagination within a prefix.
	for _, n := range []string{"t1", "t2", "t3"} {
		if _, err := s.Create(t.Context(), store.Record{Key: store.Key{Cluster: c, Kind: resource.KindService, Name: n}, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for tok := ""; ; {
		recs, next, err := s.List(t.Context(), c, resource.KindService, store.ListOptions{Prefix: "s", Limit: 2, PageToken: tok})
		if err != nil {
			t.Fatalf("List prefix s: %v", err)
		}
		for _, r := range recs {
			got = append(got, r.Name)
		}
		if next == "" {
			break
		}
		tok = next
	}
	if strings.Join(got, ",") != "s0,s1,s2,s3,s4" {
		t.Errorf("paged List prefix s = %v, want s0..s4", got)
	}
	// An exact last page ends with no token rather than an empty page.
	recs, next, err := s.List(t.Context(), c, resource.KindService, store.ListOptions{Limit: 5, Prefix: "s"})
	if err != nil || len(recs) != 5 || next != "" {
		t.Errorf("List limit 5 of 5 = %d records, token %q, %v; want 5 and no token", len(recs), next, err)
	}
}

func flip(tok string) string {
	b := []byte(tok)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestListSkipsExpiredFillsPages checks that a page is still full when
// many expired items sit between live ones.
func TestListSkipsExpiredFillsPages(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	clk := clock.NewFake(now())
	s := newStore(t, client, table, clk)
	c := unique("c")
	for i := range 30 {
		rec := store.Record{Key: store.Key{Cluster: c, Kind: resource.KindExecution, Name: fmt.Sprintf("e%02d", i)}, Data: []byte(`{}`)}
		if i%3 != 0 {
			rec.ExpiresAt = clk.Now().Add(time.Minute)
		}
		if _, err := s.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour)
	recs, next, err := s.List(t.Context(), c, resource.KindExecution, store.ListOptions{Limit: 4})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "e00,e03,e06,e09" || next == "" {
		t.Errorf("first page = %v (next %q), want [e00 e03 e06 e09] and a next page", names, next)
	}
}

func TestCancelledContext(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	s := newStore(t, client, table, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Get(ctx, store.Key{Cluster: "c", Kind: resource.KindService, Name: "a"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Get with cancelled ctx err = %v, want context.Canceled", err)
	}
}
