package loadbench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/queue/sqs/sqstest"
)

// ceilingWorkers is how many goroutines drive each emulator operation.
const ceilingWorkers = 32

type ceiling struct {
	name   string
	perSec float64
}

// loop runs op from ceilingWorkers goroutines for d and returns the
// operations per second that succeeded (op returns how many it did).
func loop(tb testing.TB, d time.Duration, op func(ctx context.Context, worker, i int) (int, error)) float64 {
	tb.Helper()
	ctx := context.Background()
	var done, errs atomic.Int64
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for w := range ceilingWorkers {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				n, err := op(ctx, w, i)
				if err != nil {
					if errs.Add(1) == 1 {
						tb.Logf("ceiling op: %v", err)
					}
					continue
				}
				done.Add(int64(n))
			}
		})
	}
	wg.Wait()
	if n := errs.Load(); n > 0 {
		tb.Errorf("%d emulator calls failed in a ceiling loop", n)
	}
	return float64(done.Load()) / time.Since(start).Seconds()
}

func av(s string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: s} }

// ceilings measures what the emulators do alone, in tight loops shaped
// like the store's and the queue's calls: a PutItem of a small record, a
// TransactWriteItems of a put and a condition check on a lease item (a
// fenced write), SendMessage, and ReceiveMessage + DeleteMessage per
// message (the runner's pair).
func ceilings(tb testing.TB, d time.Duration) []ceiling {
	tb.Helper()
	ctx := context.Background()
	ddb := dynamodb.NewFromConfig(emulator.AWSConfig(tb, emulator.DynamoDB(tb)), emulator.DynamoDBOptions)
	table := aws.String(fmt.Sprintf("ceiling%d", time.Now().UnixNano()))
	if _, err := ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: table, BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: ddbtypes.KeyTypeRange}},
	}); err != nil {
		tb.Fatal(err)
	}
	if _, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: map[string]ddbtypes.AttributeValue{
		"pk": av("c#lease"), "sk": av("lease"), "holder": av("gw-0"), "epoch": &ddbtypes.AttributeValueMemberN{Value: "1"}}}); err != nil {
		tb.Fatal(err)
	}
	data := av(`{"service":"noop","status":"queued","inputs":{}}`)
	item := func(w, i int) map[string]ddbtypes.AttributeValue {
		return map[string]ddbtypes.AttributeValue{"pk": av("c#execution"), "sk": av(fmt.Sprintf("%02d-%09d", w, i)),
			"data": data, "ver": &ddbtypes.AttributeValueMemberN{Value: "1"}}
	}
	var out []ceiling
	out = append(out, ceiling{"DynamoDB PutItem", loop(tb, d, func(ctx context.Context, w, i int) (int, error) {
		_, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item(w, i),
			ConditionExpression: aws.String("attribute_not_exists(pk)")})
		return 1, err
	})})
	out = append(out, ceiling{"DynamoDB TransactWrite", loop(tb, d, func(ctx context.Context, w, i int) (int, error) {
		_, err := ddb.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
			{Put: &ddbtypes.Put{TableName: table, Item: item(w+ceilingWorkers, i), ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			{ConditionCheck: &ddbtypes.ConditionCheck{TableName: table,
				Key:                       map[string]ddbtypes.AttributeValue{"pk": av("c#lease"), "sk": av("lease")},
				ConditionExpression:       aws.String("holder = :h AND epoch = :e"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":h": av("gw-0"), ":e": &ddbtypes.AttributeValueMemberN{Value: "1"}}}},
		}})
		return 1, err
	})})

	q := sqstest.New(tb, sqstest.Options{MaxReceiveCount: 1000, Visibility: 60 * time.Second})
	body := aws.String(`{"v":1,"executionId":"01JD0000000000000000000000","cluster":"c","service":"noop"}`)
	out = append(out, ceiling{"SQS SendMessage", loop(tb, d, func(ctx context.Context, _, _ int) (int, error) {
		_, err := q.Client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: body})
		return 1, err
	})})
	// Top the queue up so receivers never starve within the window.
	for range 40 {
		entries := make([]sqstypes.SendMessageBatchRequestEntry, 10)
		for i := range entries {
			entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: body}
		}
		if _, err := q.Client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries}); err != nil {
			tb.Fatal(err)
		}
	}
	out = append(out, ceiling{"SQS receive+delete", loop(tb, d, func(ctx context.Context, _, _ int) (int, error) {
		r, err := q.Client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			return 0, err
		}
		for _, m := range r.Messages {
			if _, err := q.Client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return 0, err
			}
		}
		return len(r.Messages), nil
	})})
	return out
}
