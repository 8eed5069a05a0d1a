package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/lease"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/store"
)

// Config configures a Store.
type Config struct {
	// Table is the DynamoDB table's name. Required.
	Table string
	// Clock is "now" for expiry and UpdatedAt; nil means clock.Real{}.
	Clock clock.Clock
	// Logger receives warnings about best-effort clean-up of chunk items;
	// nil discards them.
	Logger *slog.Logger
}

// Store is a store.Store on one DynamoDB table. It is safe for concurrent
// use; a *Store holds no per-request state.
type Store struct {
	client DynamoDBAPI
	table  string
	clk    clock.Clock
	log    *slog.Logger
	fence  *fence   // nil: writes are not fenced
	batch  *batcher // groups fenced writes; shared by s and its views
}

// fence is the lease term every write of a fenced view must still hold.
type fence struct {
	cluster string
	holder  string
	epoch   int64
}

var _ store.Store = (*Store)(nil)

// New returns a store on cfg.Table. It makes no call: check the table
// first with CheckTable.
func New(client DynamoDBAPI, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("dynamo store: nil client")
	}
	if cfg.Table == "" {
		return nil, errors.New("dynamo store: table name required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Store{client: client, table: cfg.Table, clk: cfg.Clock, log: cfg.Logger, batch: &batcher{}}, nil
}

// Fenced returns a view of s whose every write (Create, Update, Delete)
// succeeds only while cluster's lease item still names term.Holder at
// term.Epoch. Each write is one TransactWriteItems of the record's write
// and a ConditionCheck on the lease item, so the check and the write are
// atomic: once another gateway has taken the lease (epoch+1) or the holder
// released it, a write through this view fails with store.ErrFenced and
// changes nothing. Reads are not fenced. Writes to another cluster's
// records through the view are refused.
func (s *Store) Fenced(cluster string, term lease.Term) *Store {
	v := *s
	v.fence = &fence{cluster: cluster, holder: term.Holder, epoch: term.Epoch}
	return &v
}

// Get implements store.Store. It reads with strong consistency.
func (s *Store) Get(ctx context.Context, k store.Key) (store.Record, error) {
	if err := validateKey(k); err != nil {
		return store.Record{}, err
	}
	for range readAttempts {
		it, err := s.getItem(ctx, k)
		if err != nil {
			return store.Record{}, err
		}
		if it == nil || expired(it.ExpiresAt, s.clk.Now()) {
			return store.Record{}, fmt.Errorf("%s: %w", k, store.ErrNotFound)
		}
		rec, err := s.toRecord(ctx, k, it)
		if errors.Is(err, errChunksGone) {
			continue // replaced while we read it: read the new version
		}
		return rec, err
	}
	return store.Record{}, fmt.Errorf("get %s: the record kept being replaced while its chunks were read", k)
}

// readAttempts bounds how often a read retries a large record that is
// replaced between reading its item and its chunks.
const readAttempts = 5

// getItem reads k's item, expired or not; nil if there is none.
func (s *Store) getItem(ctx context.Context, k store.Key) (*item, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            keyAV(RecordPK(k.Cluster, k.Kind), k.Name),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, Translate("GetItem", k.String(), err)
	}
	return decodeItem(k, out.Item)
}

func decodeItem(k store.Key, m map[string]types.AttributeValue) (*item, error) {
	if len(m) == 0 {
		return nil, nil
	}
	var it item
	if err := attributevalue.UnmarshalMap(m, &it); err != nil {
		return nil, fmt.Errorf("decode item of %s: %v", k, err)
	}
	return &it, nil
}

func keyAV(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: pk},
		AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// errChunksGone means a large record's chunk set vanished under a reader:
// the record was replaced and the old chunks deleted.
var errChunksGone = errors.New("chunk set gone")

func (s *Store) toRecord(ctx context.Context, k store.Key, it *item) (store.Record, error) {
	rec := store.Record{Key: k, Version: it.Version, Data: it.Data, UpdatedAt: it.UpdatedAt, Terms: it.terms(k.Cluster, k.Kind)}
	if it.ExpiresAt != 0 {
		rec.ExpiresAt = time.Unix(it.ExpiresAt, 0).UTC()
	}
	if it.Chunks > 0 {
		data, err := s.readChunks(ctx, k, it)
		if err != nil {
			return store.Record{}, err
		}
		rec.Data = data
	}
	return rec, nil
}

// readChunks reads a chunk set in order with one paginated Query.
func (s *Store) readChunks(ctx context.Context, k store.Key, it *item) ([]byte, error) {
	kc, err := expression.NewBuilder().
		WithKeyCondition(expression.Key(AttrPK).Equal(expression.Value(chunkPK(k, it.ChunkRef)))).Build()
	if err != nil {
		return nil, fmt.Errorf("build chunk query of %s: %v", k, err)
	}
	data := make([]byte, 0, it.Size)
	var start map[string]types.AttributeValue
	n := 0
	for {
		out, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    kc.KeyCondition(),
			ExpressionAttributeNames:  kc.Names(),
			ExpressionAttributeValues: kc.Values(),
			ConsistentRead:            aws.Bool(true),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, Translate("Query", k.String()+" chunks", err)
		}
		for _, m := range out.Items {
			var c chunk
			if err := attributevalue.UnmarshalMap(m, &c); err != nil {
				return nil, fmt.Errorf("decode chunk of %s: %v", k, err)
			}
			if c.SK != chunkSK(n) {
				return nil, errChunksGone
			}
			data = append(data, c.Data...)
			n++
		}
		if out.LastEvaluatedKey == nil {
			break
		}
		start = out.LastEvaluatedKey
	}
	if n != it.Chunks || len(data) != it.Size {
		return nil, errChunksGone
	}
	return data, nil
}

// op is the kind of a conditional write.
type op int

const (
	opCreate op = iota
	opUpdate
	opDelete
)

func (o op) String() string { return [...]string{"create", "update", "delete"}[o] }

// Create implements store.Store. It also succeeds over an expired record,
// whether or not DynamoDB's TTL has removed it yet.
func (s *Store) Create(ctx context.Context, rec store.Record) (store.Record, error) {
	return s.put(ctx, opCreate, rec)
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, rec store.Record) (store.Record, error) {
	return s.put(ctx, opUpdate, rec)
}

func (s *Store) put(ctx context.Context, o op, rec store.Record) (store.Record, error) {
	if err := s.checkWrite(rec.Key); err != nil {
		return store.Record{}, err
	}
	if !json.Valid(rec.Data) {
		return store.Record{}, fmt.Errorf("%w record %s: data is not JSON", resource.ErrInvalid, rec.Key)
	}
	if len(rec.Data) > MaxDataBytes {
		return store.Record{}, fmt.Errorf("%s: %d bytes, more than %d: %w", rec.Key, len(rec.Data), MaxDataBytes, store.ErrTooLarge)
	}
	if err := store.ValidateTerms(rec.Terms); err != nil {
		return store.Record{}, fmt.Errorf("record %s: %w", rec.Key, err)
	}
	now := s.clk.Now()
	it := item{
		PK:        RecordPK(rec.Key.Cluster, rec.Key.Kind),
		SK:        rec.Key.Name,
		Version:   1,
		UpdatedAt: now.UTC(),
		ExpiresAt: expiresAt(rec.ExpiresAt),
	}
	if o == opUpdate {
		it.Version = rec.Version + 1
	}
	it.setTerms(rec.Key.Cluster, rec.Key.Kind, rec.Terms)
	var err error
	if it.WriteID, err = randomID(); err != nil {
		return store.Record{}, err
	}
	if err := s.stage(ctx, rec.Key, rec.Data, &it); err != nil {
		return store.Record{}, err
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		s.dropChunks(ctx, rec.Key, it.ChunkRef, it.Chunks)
		return store.Record{}, fmt.Errorf("encode %s: %v", rec.Key, err)
	}
	if err := s.commit(ctx, o, rec.Key, av, it.WriteID, rec.Version, now); err != nil {
		if definite(err) {
			s.dropChunks(ctx, rec.Key, it.ChunkRef, it.Chunks)
		} else if it.ChunkRef != "" {
			// The write may have been applied (a timeout or a lost
			// response): its chunks must stay.
			s.log.WarnContext(ctx, "write outcome unknown; keeping its chunk items", "key", rec.Key.String(), "chunk_ref", it.ChunkRef, "error", err)
		}
		return store.Record{}, err
	}
	out := store.Record{Key: rec.Key, Version: it.Version, Data: rec.Data, UpdatedAt: it.UpdatedAt, Terms: it.terms(rec.Key.Cluster, rec.Key.Kind)}
	if it.ExpiresAt != 0 {
		out.ExpiresAt = time.Unix(it.ExpiresAt, 0).UTC()
	}
	return out, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, k store.Key, version int64) error {
	if err := s.checkWrite(k); err != nil {
		return err
	}
	return s.commit(ctx, opDelete, k, nil, "", version, s.clk.Now())
}

// definite reports whether err means the write was certainly not applied,
// so the chunks staged for it may be deleted. Timeouts, cancellations and
// 5xx answers leave the outcome unknown.
func definite(err error) bool {
	for _, e := range []error{store.ErrExists, store.ErrNotFound, store.ErrConflict, store.ErrFenced, ErrRequest, ErrTableNotFound, resource.ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random ID: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func (s *Store) checkWrite(k store.Key) error {
	if err := validateKey(k); err != nil {
		return err
	}
	if s.fence != nil && s.fence.cluster != k.Cluster {
		return fmt.Errorf("%w write of %s through a store fenced on cluster %q", resource.ErrInvalid, k, s.fence.cluster)
	}
	return nil
}

// stage puts data into it: inline when it fits, else as a fresh chunk set
// written before the record item that will point at it. Until that commit
// the chunks are invisible; if it fails, put deletes them again.
func (s *Store) stage(ctx context.Context, k store.Key, data []byte, it *item) error {
	if len(data) <= maxInlineBytes {
		it.Data = data
		return nil
	}
	ref, err := randomID()
	if err != nil {
		return err
	}
	it.ChunkRef = ref
	it.Chunks = (len(data) + chunkBytes - 1) / chunkBytes
	it.Size = len(data)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(chunkParallelism)
	for i := range it.Chunks {
		piece := data[i*chunkBytes : min((i+1)*chunkBytes, len(data))]
		g.Go(func() error {
			av, err := attributevalue.MarshalMap(chunk{PK: chunkPK(k, it.ChunkRef), SK: chunkSK(i), Data: piece, ExpiresAt: it.ExpiresAt})
			if err != nil {
				return fmt.Errorf("encode chunk %d of %s: %v", i, k, err)
			}
			if _, err := s.client.PutItem(gctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: av}); err != nil {
				return Translate("PutItem", fmt.Sprintf("%s chunk %d", k, i), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		s.dropChunks(ctx, k, it.ChunkRef, it.Chunks)
		return err
	}
	return nil
}

// chunkParallelism bounds concurrent chunk writes and deletes of one record.
const chunkParallelism = 8

// dropChunks deletes a chunk set that nothing references any more: the
// old set of a record that was replaced or deleted, or the new set of a
// write that failed. It is best effort and outlives ctx's cancellation, so
// a cancelled request does not leave garbage behind; a failure is logged
// and leaves orphans that cost storage but are never read (and expire with
// the record's TTL, if it had one).
func (s *Store) dropChunks(ctx context.Context, k store.Key, ref string, n int) {
	if ref == "" || n == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(chunkParallelism)
	for i := range n {
		g.Go(func() error {
			_, err := s.client.DeleteItem(gctx, &dynamodb.DeleteItemInput{
				TableName: aws.String(s.table),
				Key:       keyAV(chunkPK(k, ref), chunkSK(i)),
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		s.log.WarnContext(ctx, "orphaned chunk items left behind",
			"key", k.String(), "chunk_ref", ref, "chunks", n, "error", Translate("DeleteItem", k.String()+" chunks", err))
	}
}

// maxCommitAttempts bounds the commit loop; each retry is driven by a
// state the previous attempt observed, so two are the norm at most.
const maxCommitAttempts = 5

// commit makes the conditional write of a record item (put, or delete when
// put is nil) and, once it succeeded, deletes the chunk set of the item it
// replaced.
//
// The write is conditional on the expected state (absent or expired for
// create; present, live and at version for update and delete) and on the
// chunk set the current item references. commit first assumes "none", the
// common case; if the condition fails, DynamoDB returns the current item
// (ReturnValuesOnConditionCheckFailure), which either explains the failure
// (ErrExists, ErrNotFound, ErrConflict) or names the chunk set to expect on
// the next attempt. So no read precedes a write, and on success commit
// knows exactly which chunk set it made unreachable. A failed condition
// that shows the item with this write's own writeID means the SDK retried
// a request that had been applied: that is a success.
func (s *Store) commit(ctx context.Context, o op, k store.Key, put map[string]types.AttributeValue, wid string, version int64, now time.Time) error {
	oldRef, oldChunks := "", 0
	for range maxCommitAttempts {
		old, failed, err := s.write(ctx, o, k, put, s.condition(o, version, oldRef, now))
		if err != nil {
			return err
		}
		if !failed || (wid != "" && old != nil && old.WriteID == wid) {
			s.dropChunks(ctx, k, oldRef, oldChunks)
			return nil
		}
		live := old != nil && !expired(old.ExpiresAt, now)
		switch {
		case o == opCreate && live:
			return fmt.Errorf("%s: %w", k, store.ErrExists)
		case o != opCreate && !live:
			return fmt.Errorf("%s: %w", k, store.ErrNotFound)
		case o != opCreate && version != 0 && old.Version != version:
			return fmt.Errorf("%s: have version %d, %s names %d: %w", k, old.Version, o, version, store.ErrConflict)
		}
		oldRef, oldChunks = "", 0
		if old != nil {
			oldRef, oldChunks = old.ChunkRef, old.Chunks
		}
	}
	return fmt.Errorf("%s: %s: the record kept changing under the write: %w", k, o, store.ErrConflict)
}

// condition builds the condition of one commit attempt.
func (s *Store) condition(o op, version int64, ref string, now time.Time) expression.ConditionBuilder {
	exp := expression.Name(AttrExpiresAt)
	nowV := expression.Value(now.Unix())
	refCond := expression.AttributeNotExists(expression.Name(attrChunkRef))
	if ref != "" {
		refCond = expression.Name(attrChunkRef).Equal(expression.Value(ref))
	}
	if o == opCreate {
		return expression.Or(
			expression.AttributeNotExists(expression.Name(AttrPK)),
			expression.And(exp.LessThanEqual(nowV), refCond))
	}
	live := expression.Or(expression.AttributeNotExists(exp), exp.GreaterThan(nowV))
	if version == 0 { // unconditional delete
		return expression.And(expression.AttributeExists(expression.Name(AttrPK)), live, refCond)
	}
	return expression.And(expression.AttributeExists(expression.Name(AttrPK)), live, refCond,
		expression.Name(attrVersion).Equal(expression.Value(version)))
}

// write sends one conditional put or delete, as a transaction with the
// lease check when s is fenced. failed reports a failed condition on the
// record, and old is the item as DynamoDB found it then (nil if absent).
func (s *Store) write(ctx context.Context, o op, k store.Key, put map[string]types.AttributeValue, cond expression.ConditionBuilder) (old *item, failed bool, err error) {
	e, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return nil, false, fmt.Errorf("build %s condition of %s: %v", o, k, err)
	}
	key := keyAV(RecordPK(k.Cluster, k.Kind), k.Name)
	if s.fence == nil {
		var callErr error
		if put != nil {
			_, callErr = s.client.PutItem(ctx, &dynamodb.PutItemInput{
				TableName:                           aws.String(s.table),
				Item:                                put,
				ConditionExpression:                 e.Condition(),
				ExpressionAttributeNames:            e.Names(),
				ExpressionAttributeValues:           e.Values(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			})
		} else {
			_, callErr = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName:                           aws.String(s.table),
				Key:                                 key,
				ConditionExpression:                 e.Condition(),
				ExpressionAttributeNames:            e.Names(),
				ExpressionAttributeValues:           e.Values(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			})
		}
		var ccf *types.ConditionalCheckFailedException
		if errors.As(callErr, &ccf) {
			return s.failedOld(ctx, k, ccf.Item)
		}
		if callErr != nil {
			return nil, false, Translate(callName(put), k.String(), callErr)
		}
		return nil, false, nil
	}

	var w types.TransactWriteItem
	if put != nil {
		w.Put = &types.Put{
			TableName:                           aws.String(s.table),
			Item:                                put,
			ConditionExpression:                 e.Condition(),
			ExpressionAttributeNames:            e.Names(),
			ExpressionAttributeValues:           e.Values(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
	} else {
		w.Delete = &types.Delete{
			TableName:                           aws.String(s.table),
			Key:                                 key,
			ConditionExpression:                 e.Condition(),
			ExpressionAttributeNames:            e.Names(),
			ExpressionAttributeValues:           e.Values(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
	}
	bw := &batchWrite{ctx: ctx, o: o, k: k, w: w, size: itemSize(put) + itemSize(key)}
	if s.batch == nil {
		return s.resolve(bw, s.transact(ctx, []*batchWrite{bw})[0])
	}
	return s.batch.do(s, bw)
}

// leaseCheck is the ConditionCheck that fences a transaction on s's term.
func (s *Store) leaseCheck() (types.TransactWriteItem, error) {
	f := s.fence
	fe, err := expression.NewBuilder().WithCondition(expression.And(
		expression.Name(AttrLeaseHolder).Equal(expression.Value(f.holder)),
		expression.Name(AttrLeaseEpoch).Equal(expression.Value(f.epoch)))).Build()
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("build fence condition: %v", err)
	}
	lpk, lsk := LeaseKey(f.cluster)
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:                 aws.String(s.table),
		Key:                       keyAV(lpk, lsk),
		ConditionExpression:       fe.Condition(),
		ExpressionAttributeNames:  fe.Names(),
		ExpressionAttributeValues: fe.Values(),
	}}, nil
}

// fencedErr is the error of a write refused because s's term ended.
func (s *Store) fencedErr(o op, k store.Key) error {
	f := s.fence
	return fmt.Errorf("%s %s: lease of cluster %s no longer held by %s at epoch %d: %w",
		o, k, f.cluster, f.holder, f.epoch, store.ErrFenced)
}

// failedOld decodes the item DynamoDB returned with a failed condition. If
// it returned none although the item exists (an emulator that ignores
// ReturnValuesOnConditionCheckFailure), it reads the item instead.
func (s *Store) failedOld(ctx context.Context, k store.Key, m map[string]types.AttributeValue) (*item, bool, error) {
	if len(m) > 0 {
		old, err := decodeItem(k, m)
		return old, true, err
	}
	old, err := s.getItem(ctx, k)
	return old, true, err
}

func callName(put map[string]types.AttributeValue) string {
	if put != nil {
		return "PutItem"
	}
	return "DeleteItem"
}

// List implements store.Store with one Query per page on the kind's
// partition (more only when expired items must be skipped), ascending by
// name, strongly consistent.
func (s *Store) List(ctx context.Context, cluster string, kind resource.Kind, opts store.ListOptions) ([]store.Record, string, error) {
	return s.list(ctx, cluster, kind, "", "", opts)
}

// ListIndex implements store.Store with one Query per page on the term's
// partition of ix's global secondary index (IndexName), ascending by name.
// Index queries cannot be strongly consistent: the index lags the table by
// a fraction of a second on AWS, as the store.Store contract allows.
func (s *Store) ListIndex(ctx context.Context, cluster string, kind resource.Kind, ix store.Index, term string, opts store.ListOptions) ([]store.Record, string, error) {
	if err := store.ValidateQuery(ix, term); err != nil {
		return nil, "", err
	}
	return s.list(ctx, cluster, kind, ix, term, opts)
}

// list is List on the kind's partition when ix is "", else ListIndex.
func (s *Store) list(ctx context.Context, cluster string, kind resource.Kind, ix store.Index, term string, opts store.ListOptions) ([]store.Record, string, error) {
	if err := validateKey(store.Key{Cluster: cluster, Kind: kind, Name: "-"}); err != nil {
		return nil, "", err
	}
	pkAttr, pk := AttrPK, RecordPK(cluster, kind)
	var index *string
	consistent := true
	if ix != "" {
		pkAttr, pk = IndexAttr(ix), indexPK(cluster, kind, term)
		index = aws.String(IndexName(ix))
		consistent = false // DynamoDB refuses ConsistentRead on a global secondary index
	}
	var start map[string]types.AttributeValue
	if opts.PageToken != "" {
		after, err := decodeListToken(opts.PageToken, listing{cluster: cluster, kind: kind, prefix: opts.Prefix, index: ix, term: term})
		if err != nil {
			return nil, "", err
		}
		start = keyAV(RecordPK(cluster, kind), after)
		if ix != "" {
			start[pkAttr] = &types.AttributeValueMemberS{Value: pk}
		}
	}
	limit := opts.EffectiveLimit()
	now := s.clk.Now()
	kc := expression.Key(pkAttr).Equal(expression.Value(pk))
	if opts.Prefix != "" {
		kc = kc.And(expression.Key(AttrSK).BeginsWith(opts.Prefix))
	}
	live := expression.Or(
		expression.AttributeNotExists(expression.Name(AttrExpiresAt)),
		expression.Name(AttrExpiresAt).GreaterThan(expression.Value(now.Unix())))
	e, err := expression.NewBuilder().WithKeyCondition(kc).WithFilter(live).Build()
	if err != nil {
		return nil, "", fmt.Errorf("build list query: %v", err)
	}
	// Read one item past the page, to know whether another page follows
	// without handing out a token to an empty page.
	var items []item
	for len(items) <= limit {
		out, err := s.client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			IndexName:                 index,
			KeyConditionExpression:    e.KeyCondition(),
			FilterExpression:          e.Filter(),
			ExpressionAttributeNames:  e.Names(),
			ExpressionAttributeValues: e.Values(),
			ConsistentRead:            aws.Bool(consistent),
			ExclusiveStartKey:         start,
			Limit:                     aws.Int32(int32(limit - len(items) + 1)),
		})
		if err != nil {
			return nil, "", Translate("Query", pk, err)
		}
		for _, m := range out.Items {
			var it item
			if err := attributevalue.UnmarshalMap(m, &it); err != nil {
				return nil, "", fmt.Errorf("decode item in %s: %v", pk, err)
			}
			items = append(items, it)
		}
		if out.LastEvaluatedKey == nil {
			break
		}
		start = out.LastEvaluatedKey
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = encodeListToken(listing{cluster: cluster, kind: kind, prefix: opts.Prefix, index: ix, term: term}, items[limit-1].SK)
	}
	recs := make([]store.Record, 0, len(items))
	for i := range items {
		k := store.Key{Cluster: cluster, Kind: kind, Name: items[i].SK}
		rec, err := s.toRecord(ctx, k, &items[i])
		if errors.Is(err, errChunksGone) {
			// Replaced since the query: list its current state, if any.
			rec, err = s.Get(ctx, k)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
		}
		if err != nil {
			return nil, "", err
		}
		recs = append(recs, rec)
	}
	return recs, next, nil
}
