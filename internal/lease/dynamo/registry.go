package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/autogate/autogate/internal/clock"
	"github.com/autogate/autogate/internal/resource"
	storedynamo "github.com/autogate/autogate/internal/store/dynamo"
)

// Node is one gateway (or runner) of a cluster as the registry lists it.
// Its fields and JSON names are those of the API's wire.Node, so one
// converts to the other with a plain type conversion.
type Node struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"` // gateway or runner
	Role          string    `json:"role"` // active, standby, runner
	Epoch         int64     `json:"epoch,omitempty"`
	Address       string    `json:"address,omitempty"`
	Load          int       `json:"load"`
	Capacity      int       `json:"capacity,omitempty"`
	LastHeartbeat time.Time `json:"lastHeartbeat"`
	Version       string    `json:"version,omitempty"`
}

// Registry is the list of a cluster's live nodes for `autogate get nodes`:
// one item per node under pk "<cluster>#node", sk = node ID, written in
// store/dynamo's record layout (the node as JSON in data, a TTL in
// expiresAt), so it is also readable as records of kind node.
type Registry struct {
	client  DynamoDBAPI
	table   string
	cluster string
	clk     clock.Clock
}

// NewRegistry returns the registry of cluster in table; clk nil means the
// real clock.
func NewRegistry(client DynamoDBAPI, table, cluster string, clk clock.Clock) (*Registry, error) {
	if client == nil || table == "" {
		return nil, fmt.Errorf("%w: node registry needs a client and a table", ErrConfig)
	}
	if err := resource.ValidateCluster(cluster); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Registry{client: client, table: table, cluster: cluster, clk: clk}, nil
}

func (r *Registry) key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		storedynamo.AttrPK: &types.AttributeValueMemberS{Value: storedynamo.RecordPK(r.cluster, resource.KindNode)},
		storedynamo.AttrSK: &types.AttributeValueMemberS{Value: id},
	}
}

// Heartbeat writes n (with LastHeartbeat set to now) so that it is listed
// until now+ttl. One unconditional UpdateItem: the record's version grows
// by one per heartbeat.
func (r *Registry) Heartbeat(ctx context.Context, n Node, ttl time.Duration) error {
	if n.ID == "" || strings.ContainsRune(n.ID, 0) || len(n.ID) > 1024 {
		return fmt.Errorf("%w node ID %q", resource.ErrInvalid, n.ID)
	}
	now := r.clk.Now().UTC()
	n.LastHeartbeat = now
	data, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode node %s: %v", n.ID, err)
	}
	var wid [16]byte
	if _, err := rand.Read(wid[:]); err != nil {
		return fmt.Errorf("node %s: %w", n.ID, err)
	}
	exp := now.Add(ttl)
	expSec := exp.Unix()
	if exp.Nanosecond() > 0 {
		expSec++
	}
	upd := expression.Set(expression.Name("data"), expression.Value(data)).
		Set(expression.Name("updatedAt"), expression.Value(now)).
		Set(expression.Name(storedynamo.AttrExpiresAt), expression.Value(expSec)).
		Set(expression.Name("writeId"), expression.Value(hex.EncodeToString(wid[:]))).
		Add(expression.Name("version"), expression.Value(1))
	x, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return fmt.Errorf("node %s: build expression: %v", n.ID, err)
	}
	_, err = r.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(r.table),
		Key:                       r.key(n.ID),
		UpdateExpression:          x.Update(),
		ExpressionAttributeNames:  x.Names(),
		ExpressionAttributeValues: x.Values(),
	})
	return storedynamo.Translate("UpdateItem", "node "+n.ID, err)
}

// Remove deletes a node's entry (on clean shutdown).
func (r *Registry) Remove(ctx context.Context, id string) error {
	_, err := r.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(r.table), Key: r.key(id)})
	return storedynamo.Translate("DeleteItem", "node "+id, err)
}

// List returns the cluster's nodes whose entry has not expired, active
// first, then by ID. One Query (paginated) on the registry's partition.
func (r *Registry) List(ctx context.Context) ([]Node, error) {
	kc := expression.Key(storedynamo.AttrPK).Equal(expression.Value(storedynamo.RecordPK(r.cluster, resource.KindNode)))
	x, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, fmt.Errorf("list nodes: build expression: %v", err)
	}
	now := r.clk.Now()
	var nodes []Node
	p := dynamodb.NewQueryPaginator(r.client, &dynamodb.QueryInput{
		TableName:                 aws.String(r.table),
		KeyConditionExpression:    x.KeyCondition(),
		ExpressionAttributeNames:  x.Names(),
		ExpressionAttributeValues: x.Values(),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, storedynamo.Translate("Query", "nodes of "+r.cluster, err)
		}
		for _, m := range out.Items {
			var it struct {
				Data      []byte `dynamodbav:"data"`
				ExpiresAt int64  `dynamodbav:"expiresAt"`
			}
			if err := attributevalue.UnmarshalMap(m, &it); err != nil {
				return nil, fmt.Errorf("decode node item: %v", err)
			}
			if it.ExpiresAt != 0 && it.ExpiresAt <= now.Unix() {
				continue
			}
			var n Node
			if err := json.Unmarshal(it.Data, &n); err != nil {
				return nil, fmt.Errorf("decode node: %v", err)
			}
			nodes = append(nodes, n)
		}
	}
	slices.SortFunc(nodes, func(a, b Node) int {
		if (a.Role == "active") != (b.Role == "active") {
			if a.Role == "active" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return nodes, nil
}

// ListNodes lists cluster's live nodes in table: Registry.List for callers
// without a registry at hand (`autogate get nodes`).
func ListNodes(ctx context.Context, client DynamoDBAPI, table, cluster string) ([]Node, error) {
	r, err := NewRegistry(client, table, cluster, nil)
	if err != nil {
		return nil, err
	}
	return r.List(ctx)
}
