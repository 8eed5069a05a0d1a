package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/autogate/autogate/internal/store"
)

// TableWait bounds how long CreateTable waits for a new table to become
// ACTIVE (seconds on AWS, at once on DynamoDB Local).
const TableWait = 5 * time.Minute

// CreateTable creates the table the store and the lease share: on-demand
// (PAY_PER_REQUEST) billing, partition key pk (S), sort key sk (S), one
// global secondary index per store index (TableInput), then TTL on
// expiresAt. It waits until the table and its indexes are ACTIVE. If the
// table already exists it adds the indexes it lacks (one UpdateTable each,
// as DynamoDB requires; on AWS building an index over a large table takes
// minutes) and checks it with CheckTable, so running it twice is harmless
// and running it on a table of an older release upgrades it. Servers never
// call it implicitly: it backs `autogate init table`; the CDK stack defines
// the same table.
func CreateTable(ctx context.Context, client TableAPI, name string) error {
	_, err := client.CreateTable(ctx, TableInput(name))
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		// Exists (or is being created): fine if it is laid out right.
	case err != nil:
		return fmt.Errorf("create table %s: %w", name, Translate("CreateTable", "table "+name, err))
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 500 * time.Millisecond
		o.MaxDelay = 5 * time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, TableWait); err != nil {
		return fmt.Errorf("create table %s: waiting until it is active: %w", name, Translate("DescribeTable", "table "+name, err))
	}
	if err := addIndexes(ctx, client, name); err != nil {
		return err
	}
	// Describe first: enabling TTL twice is a ValidationException that
	// only its message tells apart.
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, Translate("DescribeTimeToLive", "table "+name, err))
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus == types.TimeToLiveStatusDisabled || d.TimeToLiveStatus == "" {
		_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(name),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{
				AttributeName: aws.String(AttrExpiresAt),
				Enabled:       aws.Bool(true),
			},
		})
		if err != nil {
			return fmt.Errorf("create table %s: enable TTL on %s: %w", name, AttrExpiresAt, Translate("UpdateTimeToLive", "table "+name, err))
		}
	}
	return CheckTable(ctx, client, name)
}

// TableInput is the CreateTable request of the store's table: keys pk and
// sk, and for each store index a global secondary index IndexName(ix) on
// IndexAttr(ix) (S) and sk (S) projecting all attributes, so a ListIndex
// page is one Query. The indexes are sparse: only records with a term there
// carry the attribute.
func TableInput(name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(AttrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
	}
	for _, ix := range store.Indexes() {
		in.AttributeDefinitions = append(in.AttributeDefinitions,
			types.AttributeDefinition{AttributeName: aws.String(IndexAttr(ix)), AttributeType: types.ScalarAttributeTypeS})
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, indexSpec(ix))
	}
	return in
}

func indexSpec(ix store.Index) types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(IndexName(ix)),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(IndexAttr(ix)), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}

// addIndexes creates the global secondary indexes an existing table lacks,
// one at a time, and waits until each is ACTIVE.
func addIndexes(ctx context.Context, client TableAPI, name string) error {
	for _, ix := range store.Indexes() {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("create table %s: %w", name, Translate("DescribeTable", "table "+name, err))
		}
		if findIndex(out.Table, IndexName(ix)) == nil {
			spec := indexSpec(ix)
			_, err = client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
				TableName: aws.String(name),
				AttributeDefinitions: []types.AttributeDefinition{
					{AttributeName: aws.String(IndexAttr(ix)), AttributeType: types.ScalarAttributeTypeS},
					{AttributeName: aws.String(AttrSK), AttributeType: types.ScalarAttributeTypeS},
				},
				GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
					IndexName: spec.IndexName, KeySchema: spec.KeySchema, Projection: spec.Projection,
				}}},
			})
			if err != nil {
				return fmt.Errorf("create table %s: add index %s: %w", name, IndexName(ix), Translate("UpdateTable", "table "+name, err))
			}
		}
		waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 500 * time.Millisecond
			o.MaxDelay = 5 * time.Second
			o.Retryable = func(_ context.Context, _ *dynamodb.DescribeTableInput, out *dynamodb.DescribeTableOutput, err error) (bool, error) {
				if err != nil {
					return false, err
				}
				g := findIndex(out.Table, IndexName(ix))
				return out.Table.TableStatus != types.TableStatusActive || g == nil || g.IndexStatus != types.IndexStatusActive, nil
			}
		})
		if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, TableWait); err != nil {
			return fmt.Errorf("create table %s: waiting until index %s is active: %w", name, IndexName(ix), Translate("DescribeTable", "table "+name, err))
		}
	}
	return nil
}

func findIndex(t *types.TableDescription, name string) *types.GlobalSecondaryIndexDescription {
	if t == nil {
		return nil
	}
	for i := range t.GlobalSecondaryIndexes {
		if aws.ToString(t.GlobalSecondaryIndexes[i].IndexName) == name {
			return &t.GlobalSecondaryIndexes[i]
		}
	}
	return nil
}

// checkIndexes reports what is wrong with t's global secondary indexes:
// each store index must exist, be keyed by its attribute and sk (S),
// project all attributes, and be ACTIVE (one still being built misses
// records).
func checkIndexes(t *types.TableDescription, attrTypes map[string]types.ScalarAttributeType) []string {
	var problems []string
	for _, ix := range store.Indexes() {
		want := IndexName(ix)
		g := findIndex(t, want)
		if g == nil {
			problems = append(problems, fmt.Sprintf("index %s is missing", want))
			continue
		}
		keys := map[string]types.KeyType{}
		for _, k := range g.KeySchema {
			keys[aws.ToString(k.AttributeName)] = k.KeyType
		}
		switch {
		case len(keys) != 2 || keys[IndexAttr(ix)] != types.KeyTypeHash || keys[AttrSK] != types.KeyTypeRange ||
			attrTypes[IndexAttr(ix)] != types.ScalarAttributeTypeS:
			problems = append(problems, fmt.Sprintf("index %s has key schema %s, want partition key %s (S) and sort key sk (S)",
				want, describeKeys(g.KeySchema, attrTypes), IndexAttr(ix)))
		case g.Projection == nil || g.Projection.ProjectionType != types.ProjectionTypeAll:
			problems = append(problems, fmt.Sprintf("index %s does not project all attributes", want))
		case g.IndexStatus != types.IndexStatusActive:
			problems = append(problems, fmt.Sprintf("index %s is %s, not ACTIVE (wait until DynamoDB has built it)", want, g.IndexStatus))
		}
	}
	return problems
}

// CheckTable verifies that table name exists, is usable, and has the key
// schema this package needs: partition key pk (S) and sort key sk (S), and
// the ACTIVE global secondary indexes of TableInput. A
// missing table is ErrTableNotFound with a hint on how to create it; a
// table laid out differently is ErrTableSchema naming what is wrong; a TTL
// enabled on another attribute than expiresAt is ErrTableSchema too. TTL
// being off is accepted: readers ignore expired items by themselves, they
// are just never deleted.
func CheckTable(ctx context.Context, client TableAPI, name string) error {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("table %s not found; %s: %w", name, tableHint, ErrTableNotFound)
	}
	if err != nil {
		return fmt.Errorf("check table %s: %w", name, Translate("DescribeTable", "table "+name, err))
	}
	t := out.Table
	var problems []string
	keys := map[string]types.KeyType{}
	for _, k := range t.KeySchema {
		keys[aws.ToString(k.AttributeName)] = k.KeyType
	}
	types_ := map[string]types.ScalarAttributeType{}
	for _, a := range t.AttributeDefinitions {
		types_[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	for _, want := range []struct {
		name string
		kind types.KeyType
		role string
	}{{AttrPK, types.KeyTypeHash, "partition key"}, {AttrSK, types.KeyTypeRange, "sort key"}} {
		switch got, ok := keys[want.name]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is not a key attribute (want it as the %s)", want.name, want.role))
		case got != want.kind:
			problems = append(problems, fmt.Sprintf("%s is a %s key, want the %s", want.name, strings.ToLower(string(got)), want.role))
		case types_[want.name] != types.ScalarAttributeTypeS:
			problems = append(problems, fmt.Sprintf("%s has type %s, want S (string)", want.name, types_[want.name]))
		}
	}
	for n := range keys {
		if n != AttrPK && n != AttrSK {
			problems = append(problems, fmt.Sprintf("unexpected key attribute %s", n))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("table %s has key schema %s: %s; want partition key pk (S) and sort key sk (S): %w",
			name, describeKeys(t.KeySchema, types_), strings.Join(problems, "; "), ErrTableSchema)
	}
	switch t.TableStatus {
	case types.TableStatusActive, types.TableStatusUpdating:
	default:
		return fmt.Errorf("table %s is %s, not ACTIVE: %w", name, t.TableStatus, ErrTableSchema)
	}
	if problems := checkIndexes(t, types_); len(problems) > 0 {
		return fmt.Errorf("table %s: %s; run `autogate init table --table %s` to add the indexes (existing records join them when next written), or deploy the CDK stack: %w",
			name, strings.Join(problems, "; "), name, ErrTableSchema)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("check table %s: %w", name, Translate("DescribeTimeToLive", "table "+name, err))
	}
	if d := ttl.TimeToLiveDescription; d != nil && d.AttributeName != nil && *d.AttributeName != AttrExpiresAt &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return fmt.Errorf("table %s has TTL on %s, want %s: %w", name, *d.AttributeName, AttrExpiresAt, ErrTableSchema)
	}
	return nil
}

func describeKeys(ks []types.KeySchemaElement, ts map[string]types.ScalarAttributeType) string {
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", aws.ToString(k.AttributeName), k.KeyType, ts[aws.ToString(k.AttributeName)]))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
