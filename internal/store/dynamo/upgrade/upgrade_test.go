package upgrade_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/store/dynamo"
)

func TestMain(m *testing.M) { emulator.Main(m) }

// TestInitTableAddsIndexes: a table of an older release (the right keys, no
// indexes) is refused with a hint, and `init table` (CreateTable) adds the
// indexes so that the check passes.
func TestInitTableAddsIndexes(t *testing.T) {
	client := dynamo.NewClient(emulator.AWSConfig(t, emulator.DynamoDB(t)), dynamo.ClientOptions{MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond})
	name := fmt.Sprintf("old-%d", time.Now().UnixNano()%1_000_000_000)
	_, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = dynamo.CheckTable(t.Context(), client, name)
	if !errors.Is(err, dynamo.ErrTableSchema) {
		t.Fatalf("CheckTable without indexes err = %v, want ErrTableSchema", err)
	}
	for _, m := range []string{"index by-status is missing", "index by-service is missing", "autogate init table --table " + name} {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("CheckTable err = %q, want it to mention %q", err, m)
		}
	}
	if err := dynamo.CreateTable(t.Context(), client, name); err != nil {
		t.Fatalf("CreateTable on the old table: %v", err)
	}
	if err := dynamo.CheckTable(t.Context(), client, name); err != nil {
		t.Errorf("CheckTable after CreateTable added the indexes: %v", err)
	}
}
