//go:build linux

package handler_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/logtest"
	"github.com/autogate/autogate/internal/queue"
)

// findRIE locates aws-lambda-rie (emulator.RIE: PATH or GOPATH/bin;
// missing, it fails the test in CI and skips it loudly elsewhere).
func findRIE(t *testing.T) string {
	t.Helper()
	return emulator.RIE(t)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRIE builds testdata/riefunc as a Lambda bootstrap and runs it under
// aws-lambda-rie with env; it returns the invoke URL.
func startRIE(t *testing.T, rie string, env ...string) (string, *logtest.Buffer) {
	t.Helper()
	bootstrap := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bootstrap, "./testdata/riefunc")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test function: %v\n%s", err, out)
	}
	invokeAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(freePort(t)), bootstrap)
	cmd.Env = append(append(os.Environ(), emulator.Env()...), env...)
	out := &logtest.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group (rie starts the bootstrap as its child), killed
	// with the test binary if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aws-lambda-rie: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // gone already is fine
		_ = cmd.Wait()                                      // "signal: killed" is expected
		if t.Failed() {
			t.Logf("aws-lambda-rie output:\n%s", out.String())
		}
	})
	// Wait until it accepts connections: polled, with a deadline.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aws-lambda-rie did not listen on %s: %v\n%s", invokeAddr, err, out.String())
		}
		<-time.After(20 * time.Millisecond)
	}
	return "http://" + invokeAddr + "/2015-03-31/functions/function/invocations", out
}

func TestThroughRuntimeInterfaceEmulator(t *testing.T) {
	rie := findRIE(t)
	f := newFixture(t)
	// The function's timeout is 30 s with a 5 s hand-back margin: the 1 s
	// services run, the 60 s one is handed back.
	url, _ := startRIE(t, rie, "AUTOGATE_QUEUE_URL="+f.qs.URL, "AWS_LAMBDA_FUNCTION_TIMEOUT=30", "AUTOGATE_HANDBACK_MARGIN=5s")

	envs := map[string]queue.Envelope{}
	for _, e := range []struct {
		id, service string
		timeout     int
	}{
		{"ok", "ok", 1}, {"fail", "fail", 1}, {"requeue", "requeue", 1}, {"long", "ok", 60},
	} {
		env := envelope(e.id, e.timeout)
		env.Service = e.service
		envs[e.id] = env
		f.send(t, env)
	}
	if _, err := f.qs.Client.SendMessage(t.Context(), &awssqs.SendMessageInput{
		QueueUrl: aws.String(f.qs.URL), MessageBody: aws.String("poison"),
	}); err != nil {
		t.Fatal(err)
	}
	ev := f.event(t, 5)
	var poisonID string
	for _, r := range ev.Records {
		if r.Body == "poison" {
			poisonID = r.MessageId
		}
	}

	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke: HTTP %d %s (%v)", resp.StatusCode, raw, err)
	}
	var out events.SQSEventResponse
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("the function's response %s is not an SQSEventResponse: %v", raw, err)
	}
	want := []string{messageID(t, ev, "fail"), messageID(t, ev, "requeue"), messageID(t, ev, "long"), poisonID}
	slices.Sort(want)
	if got := failures(out); !slices.Equal(got, want) {
		t.Errorf("batch item failures %v, want fail, requeue, long and the poison record %v (response %s)", got, want, raw)
	}
	// ok was deleted; long is visible again at once; fail, requeue and the
	// poison record stay in flight until their visibility runs out.
	if v, inFlight := f.qs.Count(t, f.qs.URL); v != 1 || inFlight != 3 {
		t.Errorf("queue: %d visible, %d in flight; want 1 (the handed-back one), 3", v, inFlight)
	}
	again := f.qs.ReceiveRaw(t, f.qs.URL, 10, 0)
	if len(again) != 1 || aws.ToString(again[0].MessageId) != messageID(t, ev, "long") {
		t.Errorf("visible after the invocation: %+v, want the handed-back 60 s record", again)
	}
}
