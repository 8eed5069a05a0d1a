package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/autogate/autogate/internal/execution"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// A run whose message is deleted before any runner claims it, for a service
// with a 30 s timeout, is re-sent once the queue's visibility timeout (2 s
// here) says the message is lost, and succeeds: it is not failed unstarted at
// submission + timeout + 1 min, before a fixed 2-minute re-send.
func TestDistributedLostMessageResent(t *testing.T) {
	t.Setenv("AUTOGATE_SWEEP_INTERVAL", "1s") // gateways read it; the queue's visibility is 2 s
	d := newDistributedID(t, "sb-1", 1)
	a := d.active(-1)
	cl := d.client(a)
	d.setup(cl)
	ctx := context.Background()
	if err := cl.Create(ctx, &resource.Service{Meta: resource.Meta{Name: "quick"}, Type: resource.Executable,
		Repository: "r", Filename: "noop.sh", TimeoutSeconds: 30}); err != nil {
		t.Fatal(err)
	}
	e, err := cl.Run(ctx, "quick", wire.RunRequest{Async: true})
	if err != nil {
		t.Fatal(err)
	}
	// No runner is up yet: take the run's message off the queue and delete it.
	deleted := false
	for deadline := time.Now().Add(20 * time.Second); !deleted && time.Now().Before(deadline); {
		out, err := d.q.Client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(d.q.URL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if !strings.Contains(aws.ToString(m.Body), e.ID) {
				continue
			}
			if _, err := d.q.Client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(d.q.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
			deleted = true
		}
	}
	if !deleted {
		t.Fatal("the run's message never showed up on the queue")
	}
	if got, err := cl.Execution(ctx, e.ID); err != nil || got.Status != execution.Queued {
		t.Fatalf("after deleting its message: %v, %v; want queued", got, err)
	}
	start := time.Now()
	d.startRunner(0)
	got := await(t, cl, e.ID)
	if got.Status != execution.Succeeded || got.Attempt != 1 {
		t.Fatalf("run whose message was lost: %s attempt %d (%s); want re-sent and succeeded", got.Status, got.Attempt, got.Reason)
	}
	t.Logf("succeeded %v after the runner started", time.Since(start).Round(time.Millisecond))
}
