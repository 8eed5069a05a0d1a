package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/logtest"
	"github.com/autogate/autogate/internal/proctest"
	"github.com/autogate/autogate/internal/queue"
	"github.com/autogate/autogate/internal/queue/sqs/sqstest"
)

// The Lambda runner of the deployed shape: the function's image entry
// point (functions/runner, built as the Dockerfile builds it) under AWS's
// Runtime Interface Emulator with exactly the template's environment,
// fed by an in-test event source mapping with the template's batch size.
// What stands in for the platform, and only that: the execution role (the
// emulators' credentials and endpoints), Secrets Manager (the world's
// secrets behind its API), and the variables Lambda itself sets
// (function name, timeout and memory from the template, log stream).

// lambdaSpec is the Lambda runner as the cluster template describes it.
type lambdaSpec struct {
	id       string            // logical ID
	env      map[string]string // Environment.Variables, resolved
	timeout  int               // seconds
	memory   int               // MB
	batch    int               // the event source mapping's BatchSize
	queueURL string            // the mapping's queue
	queueARN string
}

// lambdaOf reads the cluster's one Lambda function and its SQS event
// source mapping (nil: the template has no Lambda runner).
func (w *world) lambdaOf(tmpl *cfnTemplate) *lambdaSpec {
	t := w.t
	t.Helper()
	fns := tmpl.ofType("AWS::Lambda::Function")
	if len(fns) == 0 {
		return nil
	}
	if len(fns) != 1 {
		t.Fatalf("the cluster template has %d Lambda functions, this test boots one: %v", len(fns), fns)
	}
	p := tmpl.props(fns[0])
	l := &lambdaSpec{id: fns[0], env: map[string]string{}}
	vars, _ := p["Environment"].(map[string]any)["Variables"].(map[string]any)
	for k, v := range vars {
		s, err := w.resolve(tmpl, v)
		if err != nil {
			t.Fatalf("Lambda runner %s: %v", k, err)
		}
		l.env[k] = s
	}
	l.timeout, l.memory = int(p["Timeout"].(float64)), int(p["MemorySize"].(float64))
	for _, id := range tmpl.ofType("AWS::Lambda::EventSourceMapping") {
		m := tmpl.props(id)
		if ref, _ := m["FunctionName"].(map[string]any)["Ref"].(string); ref != l.id {
			continue
		}
		arn, err := w.resolve(tmpl, m["EventSourceArn"])
		if err != nil {
			t.Fatalf("event source mapping %s: %v", id, err)
		}
		for qid, a := range w.queueARN {
			if a == arn {
				l.queueURL, l.queueARN = w.queueURL[qid], a
			}
		}
		l.batch = 10 // the SQS event source's default
		if b, ok := m["BatchSize"].(float64); ok {
			l.batch = int(b)
		}
	}
	if l.queueURL == "" {
		t.Fatalf("Lambda runner %s: no SQS event source mapping on a queue of the template", l.id)
	}
	return l
}

// secretsManager serves GetSecretValue of the world's secrets, as Secrets
// Manager would to the Lambda's role; it returns the endpoint.
func (w *world) secretsManager() string {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
		var in struct{ SecretId string }
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || json.NewDecoder(r.Body).Decode(&in) != nil {
			rw.WriteHeader(http.StatusBadRequest)
			io.WriteString(rw, `{"__type":"InvalidRequestException","message":"this stand-in answers GetSecretValue only"}`)
			return
		}
		name := in.SecretId
		if _, n, ok := strings.Cut(name, ":secret:"); ok { // an ARN: name-XXXXXX
			name = n[:max(0, len(n)-7)]
		}
		w.mu.Lock()
		v, ok := w.secrets[name]
		w.mu.Unlock()
		if !ok {
			rw.WriteHeader(http.StatusBadRequest)
			io.WriteString(rw, `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`)
			return
		}
		json.NewEncoder(rw).Encode(map[string]any{
			"ARN":  fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-AbCdEf", w.region, w.account, name),
			"Name": name, "SecretString": v, "VersionId": "v1", "VersionStages": []string{"AWSCURRENT"},
		})
	}))
	w.t.Cleanup(srv.Close)
	return srv.URL
}

// lambdaRunner is the booted Lambda runner and its event source mapping.
type lambdaRunner struct {
	spec   *lambdaSpec
	stream string // AWS_LAMBDA_LOG_STREAM_NAME: the runner's node ID
	invoke string
	out    *logtest.Buffer
	mu     sync.Mutex
	// delivered: execution IDs handed to the function and not reported
	// as failures; batches: records per invocation; errors: invocation
	// errors.
	delivered map[string]bool
	batches   []int
	errors    []string
	receives  int      // ReceiveMessage calls
	recvErrs  []string // the first failed ones
	stopOnce  sync.Once
	stopESM   func()
}

// stop disables the event source mapping: no receive is pending once it
// returns, bar one short poll fauxqs may still answer for a second.
func (l *lambdaRunner) stop() { l.stopOnce.Do(l.stopESM) }

// String summarizes the mapping's work for failure messages.
func (l *lambdaRunner) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("queue %s: %d receives (errors %v), invocations with %v records, invocation errors %v",
		l.spec.queueURL, l.receives, l.recvErrs, l.batches, l.errors)
}

func (l *lambdaRunner) ran(execID string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.delivered[execID]
}

// startLambda boots the Lambda runner: the function's binary, built as the
// image builds it, under aws-lambda-rie, with the template's environment;
// then polls its queue as the event source mapping does.
func (sh *shape) startLambda(t testing.TB) *lambdaRunner {
	t.Helper()
	spec := sh.lambda
	rie := emulator.RIE(t)
	bootstrap := filepath.Join(sh.w.dir, "autogate-lambda-runner")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bootstrap, "../../functions/runner")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the Lambda runner (as the Dockerfile does): %v\n%s", err, out)
	}
	var id [8]byte
	rand.Read(id[:])
	l := &lambdaRunner{spec: spec, delivered: map[string]bool{}, out: &logtest.Buffer{},
		stream: time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + hex.EncodeToString(id[:])}
	invokeAddr := "127.0.0.1:" + strconv.Itoa(proctest.FreePort(t))
	l.invoke = "http://" + invokeAddr + "/2015-03-31/functions/function/invocations"
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(proctest.FreePort(t)), bootstrap)
	// The platform's: the role (emulators), Secrets Manager, what Lambda
	// sets; then the template's variables.
	env := append([]string{"PATH=" + os.Getenv("PATH")}, emulator.Env()...)
	env = append(env, "AWS_ENDPOINT_URL_SECRETS_MANAGER="+sh.w.secretsManager(),
		"AWS_LAMBDA_FUNCTION_NAME=autogate-shape-lambda-runner", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(spec.timeout), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(spec.memory),
		"AWS_LAMBDA_LOG_STREAM_NAME="+l.stream)
	for k, v := range spec.env {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = l.out, l.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aws-lambda-rie: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.stopESM = func() {
		cancel()
		<-done
		tick(1500 * time.Millisecond) // the last poll's WaitTimeSeconds, on the emulator's side
	}
	t.Cleanup(func() {
		cancel()
		<-done
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait() // killed, as expected
		if t.Failed() {
			t.Logf("Lambda runner (aws-lambda-rie) output:\n%s", l.out.String())
		}
	})
	waitForTB(t, 30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	go func() {
		defer close(done)
		l.mapSource(ctx, sh.w.sqs)
	}()
	return l
}

// mapSource is the SQS event source mapping: receive up to the batch
// size, invoke synchronously, delete the records the function did not
// report as failed (ReportBatchItemFailures), leave the rest to their
// visibility timeout. One poller: aws-lambda-rie runs one invocation at a
// time.
func (l *lambdaRunner) mapSource(ctx context.Context, client *sqs.Client) {
	qs := sqstest.Queues{Client: client, URL: l.spec.queueURL, ARN: l.spec.queueARN}
	hc := &http.Client{}
	for ctx.Err() == nil {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(qs.URL), MaxNumberOfMessages: int32(l.spec.batch), WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			MessageAttributeNames:       []string{"All"},
		})
		l.mu.Lock()
		l.receives++
		if err != nil && ctx.Err() == nil && len(l.recvErrs) < 5 {
			l.recvErrs = append(l.recvErrs, err.Error())
		}
		l.mu.Unlock()
		if err != nil || len(out.Messages) == 0 {
			if err != nil && ctx.Err() == nil {
				tick(200 * time.Millisecond)
			}
			continue
		}
		ev := qs.Event(out.Messages...)
		payload, _ := json.Marshal(ev)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.invoke, bytes.NewReader(payload))
		resp, err := hc.Do(req)
		var res events.SQSEventResponse
		var raw []byte
		if err == nil {
			raw, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &res) != nil || bytes.Contains(raw, []byte(`"errorMessage"`)) {
				err = fmt.Errorf("HTTP %d %s", resp.StatusCode, raw)
			}
		}
		l.mu.Lock()
		l.batches = append(l.batches, len(ev.Records))
		if err != nil {
			l.errors = append(l.errors, err.Error()) // the whole batch returns after its visibility
			l.mu.Unlock()
			continue
		}
		failed := map[string]bool{}
		for _, f := range res.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for i, r := range ev.Records {
			if failed[r.MessageId] {
				continue
			}
			var env queue.Envelope
			if json.Unmarshal([]byte(r.Body), &env) == nil {
				l.delivered[env.ExecutionID] = true
			}
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r.ReceiptHandle)})
		}
		l.mu.Unlock()
		if len(del) > 0 {
			_, _ = client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(qs.URL), Entries: del})
		}
	}
}
