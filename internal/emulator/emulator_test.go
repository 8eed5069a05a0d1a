package emulator

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestMain(m *testing.M) { Main(m) }

func TestDynamoDBAnswers(t *testing.T) {
	ep := DynamoDB(t)
	if again := DynamoDB(t); again != ep {
		t.Errorf("second DynamoDB() = %v, want the same endpoint %v", again, ep)
	}
	if !strings.HasPrefix(ep.URL, "http://127.0.0.1:") {
		t.Errorf("endpoint %q is not on loopback", ep.URL)
	}
	client := dynamodb.NewFromConfig(AWSConfig(t, ep), DynamoDBOptions)
	name := "emulator-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	// A conditional write that fails must come back as the typed error even
	// though DynamoDB Local sends no CRC32 header.
	put := &dynamodb.PutItemInput{
		TableName:           aws.String(name),
		Item:                map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}
	if _, err := client.PutItem(t.Context(), put); err != nil {
		t.Fatalf("PutItem: %v", err)
	}
	_, err = client.PutItem(t.Context(), put)
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("second conditional PutItem err = %v, want ConditionalCheckFailedException", err)
	}
}

func TestSQSAnswers(t *testing.T) {
	ep := SQS(t)
	client := sqs.NewFromConfig(AWSConfig(t, ep))
	out, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("emulator-test")})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String("hi")}); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
}

func TestKMSAnswers(t *testing.T) {
	ep := KMS(t)
	if again := KMS(t); again != ep {
		t.Errorf("second KMS() = %v, want the same endpoint %v", again, ep)
	}
	if !strings.HasPrefix(ep.URL, "http://127.0.0.1:") {
		t.Errorf("endpoint %q is not on loopback", ep.URL)
	}
	// A raw CreateKey: this package does not import the KMS SDK.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ep.URL+"/", strings.NewReader(`{"Description":"emulator test"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.CreateKey")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"KeyId"`) {
		t.Fatalf("CreateKey = HTTP %d %s, want 200 with a KeyId", resp.StatusCode, body)
	}
	found := false
	for _, kv := range Env() {
		found = found || kv == "AWS_ENDPOINT_URL_KMS="+ep.URL
	}
	if !found {
		t.Errorf("Env() lacks AWS_ENDPOINT_URL_KMS=%s", ep.URL)
	}
}

func TestEnv(t *testing.T) {
	ddb, q := DynamoDB(t), SQS(t)
	env := map[string]string{}
	for _, kv := range Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, want := range map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB": ddb.URL,
		"AWS_ENDPOINT_URL_SQS":      q.URL,
		"AWS_REGION":                "us-east-1",
		"AWS_ACCESS_KEY_ID":         AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":     SecretAccessKey,
	} {
		if got := env[k]; got != want {
			t.Errorf("Env %s = %q, want %q", k, got, want)
		}
	}
}

// TestNoLeakOnKill runs this test binary as a child that starts DynamoDB
// Local, kills the child with SIGKILL (as `go test -timeout` would), and
// checks that the java process died with it.
func TestNoLeakOnKill(t *testing.T) {
	if os.Getenv("EMULATOR_LEAK_CHILD") == "1" {
		DynamoDB(t)
		os.Stdout.WriteString("java-pid " + strconv.Itoa(dynamoPID()) + "\n")
		select {} // wait to be killed
	}
	DynamoDB(t) // skip or fail here, not in the child, if there is no emulator
	if testing.Short() {
		t.Skip("starts a second DynamoDB Local")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoLeakOnKill$", "-test.v")
	cmd.Env = append(os.Environ(), "EMULATOR_LEAK_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // already dead in the normal case
	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "java-pid "); ok {
			pid, _ = strconv.Atoi(v)
			break
		}
	}
	if pid == 0 {
		t.Fatalf("child never reported its java PID (scan err %v)", sc.Err())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // "signal: killed" is the expected result
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("java PID %d outlived its killed test binary", pid)
		}
		<-time.After(20 * time.Millisecond)
	}
}

func dynamoPID() int {
	p, _, _ := dynamoEmu.state()
	return p.cmd.Process.Pid
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestExternalEndpoints(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		want     string
		external bool
		wantErr  bool
	}{
		{"not external", map[string]string{"AWS_ENDPOINT_URL": "http://ls:4566"}, "", false, false},
		{"service endpoint wins", map[string]string{"AUTOGATE_EMULATORS": External, "AWS_ENDPOINT_URL": "http://ls:4566", "AWS_ENDPOINT_URL_DYNAMODB": "http://ddb:8000"}, "http://ddb:8000", true, false},
		{"general endpoint", map[string]string{"AUTOGATE_EMULATORS": External, "AWS_ENDPOINT_URL": "http://ls:4566"}, "http://ls:4566", true, false},
		{"external without endpoint", map[string]string{"AUTOGATE_EMULATORS": External}, "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"AUTOGATE_EMULATORS", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"} {
				t.Setenv(k, tt.env[k])
			}
			ep, ok, err := external("AWS_ENDPOINT_URL_DYNAMODB")
			if ok != tt.external || (err != nil) != tt.wantErr || ep.URL != tt.want {
				t.Errorf("external = %q, %v, %v; want %q, %v, error %v", ep.URL, ok, err, tt.want, tt.external, tt.wantErr)
			}
		})
	}
}
