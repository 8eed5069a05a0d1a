package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/autogate/autogate/internal/client"
	"github.com/autogate/autogate/internal/emulator"
	"github.com/autogate/autogate/internal/proctest"
	"github.com/autogate/autogate/internal/resource"
	"github.com/autogate/autogate/internal/wire"
)

// The deployed-shape test (issue 14): synthesize the stacks, and boot what
// the templates describe on this machine, with no hand-written
// configuration in between. Every task's command, environment and secrets
// come from the synthesized task definitions; references resolve to the
// emulators (tables and queues are created from their template
// resources, KMS keys are made in local-kms, secrets are files standing
// in for Secrets Manager); the
// load balancers in front of the services apply their target groups'
// health checks. What stands in for the platform, and only that:
//
//   - the task role: the emulators' credentials and endpoints;
//   - awsvpc networking: each task listens on 127.0.0.1 and a port of its
//     own where its definition binds ":port" (every Fargate task has its
//     own address);
//   - DNS and the public CA: the manager's URL resolves to the manager's
//     in-test load balancer, whose certificate the tasks trust through
//     SSL_CERT_FILE (ACM's certificates are publicly trusted);
//   - ECS: it starts DesiredCount tasks per service, registers load-
//     balanced ones with their target group, and replaces a killed task.

// cfnTemplate is a synthesized CloudFormation template.
type cfnTemplate struct {
	Resources map[string]struct {
		Type       string         `json:"Type"`
		Properties map[string]any `json:"Properties"`
	} `json:"Resources"`
}

func (c *cfnTemplate) ofType(typ string) []string {
	var ids []string
	for id, r := range c.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (c *cfnTemplate) props(id string) map[string]any { return c.Resources[id].Properties }

// shapeClusters is the clusters file synthesized: a manager of two tasks
// and a cluster of two gateways with ECS and Lambda runners, in a prebuilt
// image (no Docker build at synth).
const shapeClusters = `
manager:
  account: "111111111111"
  region: us-east-1
  certificateArn: arn:aws:acm:us-east-1:111111111111:certificate/0000-mgr
  url: https://manager.shape.example.com
  managers: 2
  image: 111111111111.dkr.ecr.us-east-1.amazonaws.com/autogate:shape
clusters:
  - id: shape
    account: "111111111111"
    region: us-east-1
    certificateArn: arn:aws:acm:us-east-1:111111111111:certificate/0000-shape
    gateways: 2
    runners: both
    image: 111111111111.dkr.ecr.us-east-1.amazonaws.com/autogate:shape
`

// synthShape runs `cdk synth` of shapeClusters (the app and CLI `make
// synth` runs) and returns the cluster's and the manager's templates.
func synthShape(t testing.TB) (cluster, mgr *cfnTemplate) {
	t.Helper()
	root := repoRootTB(t)
	if _, err := os.Stat(filepath.Join(root, "node_modules", ".bin", "cdk")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the CDK CLI is not installed (npm ci at the repository root; make synth does it)")
		}
		t.Skip("SKIPPING: the CDK CLI is not installed (npm ci); CI fails instead")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "clusters.yaml")
	if err := os.WriteFile(file, []byte(shapeClusters), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "cdk.out")
	cmd := exec.Command("npx", "--no-install", "cdk", "synth", "--quiet", "--no-lookups", "--no-notices",
		"-c", "clustersFile="+file, "-o", out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CDK_DISABLE_VERSION_CHECK=1", "CDK_DISABLE_CLI_TELEMETRY=true",
		"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20", "BUILDX_NO_DEFAULT_ATTESTATIONS=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cdk synth: %v\n%s", err, b)
	}
	read := func(name string) *cfnTemplate {
		raw, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		var c cfnTemplate
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	return read("Autogate-shape.template.json"), read("Autogate-manager.template.json")
}

func repoRootTB(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// world is the emulated account the templates are booted in.
type world struct {
	t       testing.TB
	bin     string
	dir     string
	region  string
	account string
	ddb     *dynamodb.Client
	sqs     *sqs.Client
	// queues by logical ID: URL and ARN.
	queueURL, queueARN map[string]string
	// secrets by name: what Secrets Manager would hold.
	secrets map[string]string
	// kms is local-kms; keyARN the key made for each AWS::KMS::Key, by
	// logical ID.
	kms    emulator.Endpoint
	keyARN map[string]string
	caFile string // the load balancers' certificate, trusted as a public CA
	// managerURL is where the manager's URL resolves (its load balancer).
	managerURL string
	mu         sync.Mutex
}

func newWorld(t testing.TB, bin string) *world {
	t.Helper()
	ddbEP, sqsEP := emulator.DynamoDB(t), emulator.SQS(t)
	w := &world{t: t, bin: bin, dir: t.TempDir(), region: "us-east-1", account: "111111111111",
		queueURL: map[string]string{}, queueARN: map[string]string{}, secrets: map[string]string{},
		kms: emulator.KMS(t), keyARN: map[string]string{}}
	w.ddb = dynamodb.NewFromConfig(emulator.AWSConfig(t, ddbEP), emulator.DynamoDBOptions)
	w.sqs = sqs.NewFromConfig(emulator.AWSConfig(t, sqsEP))
	return w
}

// resolve turns a template value into what CloudFormation would put there
// in this world.
func (w *world) resolve(tmpl *cfnTemplate, v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case map[string]any:
		if ref, ok := x["Ref"].(string); ok {
			switch ref {
			case "AWS::Partition":
				return "aws", nil
			case "AWS::Region":
				return w.region, nil
			case "AWS::AccountId":
				return w.account, nil
			case "AWS::URLSuffix":
				return "amazonaws.com", nil
			}
			switch tmpl.Resources[ref].Type {
			case "AWS::SQS::Queue":
				return w.queueURL[ref], nil
			case "AWS::DynamoDB::Table":
				return fmt.Sprint(tmpl.props(ref)["TableName"]), nil
			}
			return "", fmt.Errorf("Ref %s (%s): not emulated", ref, tmpl.Resources[ref].Type)
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			id, attr := fmt.Sprint(ga[0]), fmt.Sprint(ga[1])
			if tmpl.Resources[id].Type == "AWS::SQS::Queue" {
				switch attr {
				case "Arn":
					return w.queueARN[id], nil
				case "QueueUrl":
					return w.queueURL[id], nil
				case "QueueName":
					return fmt.Sprint(tmpl.props(id)["QueueName"]), nil
				}
			}
			if tmpl.Resources[id].Type == "AWS::KMS::Key" && attr == "Arn" {
				if arn, ok := w.keyARN[id]; ok {
					return arn, nil
				}
			}
			return "", fmt.Errorf("Fn::GetAtt %s.%s: not emulated", id, attr)
		}
		if j, ok := x["Fn::Join"].([]any); ok && len(j) == 2 {
			var parts []string
			for _, p := range j[1].([]any) {
				s, err := w.resolve(tmpl, p)
				if err != nil {
					return "", err
				}
				parts = append(parts, s)
			}
			return strings.Join(parts, fmt.Sprint(j[0])), nil
		}
	}
	return "", fmt.Errorf("cannot resolve %v", v)
}

// createTables creates every table of tmpl as its resource describes it.
func (w *world) createTables(tmpl *cfnTemplate) {
	t := w.t
	t.Helper()
	ctx := context.Background()
	for _, id := range tmpl.ofType("AWS::DynamoDB::Table") {
		p := tmpl.props(id)
		var in dynamodb.CreateTableInput
		raw, _ := json.Marshal(map[string]any{
			"TableName": p["TableName"], "KeySchema": p["KeySchema"], "AttributeDefinitions": p["AttributeDefinitions"],
			"GlobalSecondaryIndexes": p["GlobalSecondaryIndexes"], "BillingMode": p["BillingMode"],
		})
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatalf("table %s: %v", id, err)
		}
		_, _ = w.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: in.TableName}) // a previous run's
		if _, err := w.ddb.CreateTable(ctx, &in); err != nil {
			t.Fatalf("create table %s from the template: %v", *in.TableName, err)
		}
		if ttl, ok := p["TimeToLiveSpecification"].(map[string]any); ok {
			if _, err := w.ddb.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: in.TableName,
				TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(fmt.Sprint(ttl["AttributeName"])), Enabled: aws.Bool(ttl["Enabled"] == true)}}); err != nil {
				t.Fatalf("table %s TTL: %v", *in.TableName, err)
			}
		}
	}
}

// createKeys makes a local-kms key for every KMS key of tmpl.
func (w *world) createKeys(tmpl *cfnTemplate) {
	w.t.Helper()
	for _, id := range tmpl.ofType("AWS::KMS::Key") {
		w.keyARN[id] = createKMSKey(w.t, w.kms)
	}
}

// createQueues creates every queue of tmpl, dead-letter queues first.
func (w *world) createQueues(tmpl *cfnTemplate) {
	t := w.t
	t.Helper()
	ctx := context.Background()
	ids := tmpl.ofType("AWS::SQS::Queue")
	slices.SortStableFunc(ids, func(a, b string) int {
		_, ra := tmpl.props(a)["RedrivePolicy"]
		_, rb := tmpl.props(b)["RedrivePolicy"]
		if ra == rb {
			return 0
		}
		if !ra {
			return -1
		}
		return 1
	})
	for _, id := range ids {
		p := tmpl.props(id)
		name := fmt.Sprint(p["QueueName"])
		attrs := map[string]string{}
		for _, k := range []string{"VisibilityTimeout", "MessageRetentionPeriod"} {
			if v, ok := p[k]; ok {
				attrs[k], _ = w.resolve(tmpl, v)
			}
		}
		if rp, ok := p["RedrivePolicy"].(map[string]any); ok {
			arn, err := w.resolve(tmpl, rp["deadLetterTargetArn"])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(map[string]any{"deadLetterTargetArn": arn, "maxReceiveCount": rp["maxReceiveCount"]})
			attrs["RedrivePolicy"] = string(b)
		}
		if old, err := w.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)}); err == nil {
			_, _ = w.sqs.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: old.QueueUrl}) // a previous run's
		}
		out, err := w.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			t.Fatalf("create queue %s from the template: %v", name, err)
		}
		a, err := w.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		w.queueURL[id], w.queueARN[id] = *out.QueueUrl, a.Attributes["QueueArn"]
	}
}

// taskSpec is one ECS service as its template describes it.
type taskSpec struct {
	tmpl    *cfnTemplate
	service string
	command []string
	env     []any // [{Name, Value}]
	secrets []any // [{Name, ValueFrom}]
	desired int
	// targetGroup is the service's target group's properties (nil: none).
	targetGroup map[string]any
	grace       time.Duration
}

// services reads every ECS service of tmpl.
func services(t testing.TB, tmpl *cfnTemplate) map[string]*taskSpec {
	t.Helper()
	out := map[string]*taskSpec{}
	for _, id := range tmpl.ofType("AWS::ECS::Service") {
		p := tmpl.props(id)
		td := tmpl.props(p["TaskDefinition"].(map[string]any)["Ref"].(string))
		cds := td["ContainerDefinitions"].([]any)
		if len(cds) != 1 {
			t.Fatalf("service %s: %d containers, this test boots one", id, len(cds))
		}
		cd := cds[0].(map[string]any)
		s := &taskSpec{tmpl: tmpl, service: fmt.Sprint(p["ServiceName"]), desired: int(p["DesiredCount"].(float64))}
		for _, c := range cd["Command"].([]any) {
			s.command = append(s.command, fmt.Sprint(c))
		}
		s.env, _ = cd["Environment"].([]any)
		s.secrets, _ = cd["Secrets"].([]any)
		if lbs, ok := p["LoadBalancers"].([]any); ok && len(lbs) > 0 {
			s.targetGroup = tmpl.props(lbs[0].(map[string]any)["TargetGroupArn"].(map[string]any)["Ref"].(string))
		}
		if g, ok := p["HealthCheckGracePeriodSeconds"].(float64); ok {
			s.grace = time.Duration(g) * time.Second
		}
		out[s.service] = s
	}
	return out
}

// task is one running task of a service.
type task struct {
	*server
	home string
}

// environ is the task's environment: the platform's, then the task
// definition's (resolved), then its secrets.
func (w *world) environ(s *taskSpec, home string) []string {
	t := w.t
	t.Helper()
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "SSL_CERT_FILE=" + w.caFile},
		emulator.Env()...) // the task role and the service endpoints
	// The image's own ENV (Dockerfile).
	env = append(env, "AUTOGATE_LISTEN=:8443", "PYTHONDONTWRITEBYTECODE=1")
	for _, e := range s.env {
		m := e.(map[string]any)
		name := fmt.Sprint(m["Name"])
		v, err := w.resolve(s.tmpl, m["Value"])
		if err != nil {
			t.Fatalf("service %s: %s: %v", s.service, name, err)
		}
		env = append(env, name+"="+w.platform(name, v))
	}
	for _, e := range s.secrets {
		m := e.(map[string]any)
		arn, err := w.resolve(s.tmpl, m["ValueFrom"])
		if err != nil {
			t.Fatalf("service %s: secret %s: %v", s.service, m["Name"], err)
		}
		_, name, ok := strings.Cut(arn, ":secret:")
		w.mu.Lock()
		val, found := w.secrets[name]
		w.mu.Unlock()
		if !ok || !found {
			t.Fatalf("service %s: secret %s = %s: no such secret in Secrets Manager", s.service, m["Name"], arn)
		}
		env = append(env, fmt.Sprint(m["Name"])+"="+val)
	}
	return env
}

// platform maps a value that names the platform: a bind to every
// interface becomes this task's own address, the manager's DNS name its
// load balancer.
func (w *world) platform(name, v string) string {
	if strings.HasPrefix(v, ":") {
		if _, err := strconv.Atoi(v[1:]); err == nil {
			return proctest.FreeAddr(w.t)
		}
	}
	if name == "AUTOGATE_MANAGER_URL" && w.managerURL != "" {
		return w.managerURL
	}
	return v
}

// start runs task i of s, as ECS would, and waits for it to start.
func (w *world) start(s *taskSpec, i int) *task {
	w.t.Helper()
	home := filepath.Join(w.dir, fmt.Sprintf("%s-%d-%d", s.service, i, time.Now().UnixNano()))
	ready := "listening on"
	if s.command[0] == "runner" {
		ready = "receiving from"
	}
	srv := startExact(w.t, w.bin, home, w.environ(s, home), ready, s.command...)
	return &task{server: srv, home: home}
}

// adminPassword reads the first admin password a task of tasks wrote (how
// an operator reads it with ECS Exec).
func adminPassword(t testing.TB, tasks []*task) string {
	t.Helper()
	var pw string
	waitForTB(t, 30*time.Second, func() bool {
		for _, k := range tasks {
			m, _ := filepath.Glob(filepath.Join(k.home, ".local", "share", "*", "admin-password"))
			for _, f := range m {
				if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
					pw = strings.TrimSpace(string(b))
					return true
				}
			}
		}
		return false
	})
	return pw
}

func waitForTB(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		tick(50 * time.Millisecond)
	}
}

// lb is an application load balancer in front of one target group: HTTPS
// in, HTTPS to the targets (unverified, as ALB does), round robin over the
// targets its health check finds healthy, 502 when a target fails.
type lb struct {
	t        testing.TB
	srv      *httptest.Server
	path     string
	interval time.Duration
	timeout  time.Duration
	up, down int
	codes    []string
	tr       *http.Transport
	proxy    *httputil.ReverseProxy
	mu       sync.Mutex
	targets  []*target
	next     int
	stop     chan struct{}
}

type target struct {
	url              string
	healthy, removed bool
	okRun, failRun   int
}

// newLB applies tg's health check: path, interval, timeout, thresholds
// and matcher, read from the template.
func newLB(t testing.TB, tg map[string]any) *lb {
	t.Helper()
	sec := func(k string) time.Duration { return time.Duration(tg[k].(float64)) * time.Second }
	l := &lb{t: t, path: tg["HealthCheckPath"].(string), interval: sec("HealthCheckIntervalSeconds"),
		timeout: sec("HealthCheckTimeoutSeconds"), up: int(tg["HealthyThresholdCount"].(float64)),
		down: int(tg["UnhealthyThresholdCount"].(float64)), stop: make(chan struct{}),
		codes: strings.Split(tg["Matcher"].(map[string]any)["HttpCode"].(string), ",")}
	if tg["Protocol"] != "HTTPS" || tg["HealthCheckProtocol"] != "HTTPS" {
		t.Fatalf("target group protocol %v / health check %v: this load balancer speaks HTTPS to targets", tg["Protocol"], tg["HealthCheckProtocol"])
	}
	l.tr = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 64} //nolint:gosec // ALB does not verify targets
	l.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u, _ := url.Parse(pr.In.Context().Value(lbTargetKey{}).(string))
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: l.tr, FlushInterval: -1,
		ErrorLog: log.New(io.Discard, "", 0), // a dead target's 502s are counted, not logged
	}
	l.srv = httptest.NewUnstartedServer(l)
	l.srv.StartTLS()
	t.Cleanup(func() { close(l.stop); l.srv.Close() })
	return l
}

type lbTargetKey struct{}

func (l *lb) url() string { return l.srv.URL }

// certPEM is the listener's certificate.
func (l *lb) certPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.srv.Certificate().Raw})
}

func (l *lb) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	var healthy []*target
	for _, tg := range l.targets {
		if tg.healthy && !tg.removed {
			healthy = append(healthy, tg)
		}
	}
	var pick *target
	if len(healthy) > 0 {
		pick = healthy[l.next%len(healthy)]
		l.next++
	}
	l.mu.Unlock()
	if pick == nil {
		http.Error(w, "no healthy target", http.StatusServiceUnavailable)
		return
	}
	l.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), lbTargetKey{}, pick.url)))
}

// register adds a target (initial: not healthy) and health-checks it every
// interval until it is deregistered.
func (l *lb) register(u string) {
	tg := &target{url: u}
	l.mu.Lock()
	l.targets = append(l.targets, tg)
	l.mu.Unlock()
	hc := &http.Client{Transport: l.tr, Timeout: l.timeout}
	go func() {
		tk := time.NewTicker(l.interval)
		defer tk.Stop()
		for {
			ok := false
			if resp, err := hc.Get(u + l.path); err == nil {
				resp.Body.Close()
				ok = slices.Contains(l.codes, strconv.Itoa(resp.StatusCode))
			}
			l.mu.Lock()
			if tg.removed {
				l.mu.Unlock()
				return
			}
			if ok {
				tg.okRun, tg.failRun = tg.okRun+1, 0
				if tg.okRun >= l.up {
					tg.healthy = true
				}
			} else {
				tg.okRun, tg.failRun = 0, tg.failRun+1
				if tg.failRun >= l.down {
					tg.healthy = false
				}
			}
			l.mu.Unlock()
			select {
			case <-l.stop:
				return
			case <-tk.C:
			}
		}
	}()
}

func (l *lb) deregister(u string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, tg := range l.targets {
		if tg.url == u {
			tg.removed = true
		}
	}
}

// isHealthy reports whether target u is registered and healthy.
func (l *lb) isHealthy(u string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, tg := range l.targets {
		if tg.url == u && !tg.removed {
			return tg.healthy
		}
	}
	return false
}

// fleet is a load-balanced service's running tasks.
type fleet struct {
	w     *world
	spec  *taskSpec
	lb    *lb
	tasks []*task
}

// steady waits for every task to be healthy, failing after the grace
// period plus the healthy threshold (what ECS would wait).
func (f *fleet) steady() {
	f.w.t.Helper()
	limit := f.spec.grace + time.Duration(f.lb.up+1)*f.lb.interval
	deadline := time.Now().Add(limit)
	for {
		var unhealthy []string
		for _, k := range f.tasks {
			if !f.lb.isHealthy(k.url) {
				unhealthy = append(unhealthy, k.url)
			}
		}
		if len(unhealthy) == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.w.t.Fatalf("service %s: tasks %v never passed the health check %s within %v: ECS would never reach steady state",
				f.spec.service, unhealthy, f.lb.path, limit)
		}
		tick(100 * time.Millisecond)
	}
}

// active returns the index of the task whose /readyz is 200 (the active).
func (f *fleet) active() int {
	f.w.t.Helper()
	var idx int
	waitForTB(f.w.t, 30*time.Second, func() bool {
		for i, k := range f.tasks {
			if k.Exited() {
				continue
			}
			if resp, err := insecureHTTP.Get(k.url + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					idx = i
					return true
				}
			}
		}
		return false
	})
	return idx
}

// kill kills task i with SIGKILL.
func (f *fleet) kill(i int) {
	f.w.t.Helper()
	k := f.tasks[i]
	if err := k.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		f.w.t.Fatal(err)
	}
	k.Killed = true
	k.wait()
}

// replace starts another task in place of task i, as ECS replaces a task
// that died, and deregisters the dead one.
func (f *fleet) replace(i int) {
	f.w.t.Helper()
	f.lb.deregister(f.tasks[i].url)
	k := f.w.start(f.spec, i)
	f.tasks[i] = k
	f.lb.register(k.url)
	f.steady()
}

// shape is the booted deployment.
type shape struct {
	w        *world
	managers *fleet
	gateways *fleet
	runners  []*task
	// runnerSpec is the ECS runner service (nil: none).
	runnerSpec *taskSpec
	lambda     *lambdaSpec // the Lambda runner (started by startLambda)
	mgrToken   string
	token      string
	hc         *http.Client // trusts the load balancers
}

// bootShape synthesizes the stacks and boots them: the manager, the
// cluster's registration with it (its credential stored as the stack's
// secret), the gateways and the runner.
func bootShape(t testing.TB, bin string) *shape {
	t.Helper()
	ctmpl, mtmpl := synthShape(t)
	w := newWorld(t, bin)
	for _, tmpl := range []*cfnTemplate{ctmpl, mtmpl} {
		w.createTables(tmpl)
		w.createQueues(tmpl)
		w.createKeys(tmpl)
	}
	if len(w.keyARN) != 1 {
		t.Fatalf("the stacks make %d KMS keys, want the cluster's one", len(w.keyARN))
	}
	sh := &shape{w: w}

	msvc := services(t, mtmpl)["manager"]
	if msvc == nil || msvc.targetGroup == nil {
		t.Fatal("the manager stack has no load-balanced manager service")
	}
	// The load balancers exist before the tasks (their certificate is the
	// CA the tasks trust).
	mlb := newLB(t, msvc.targetGroup)
	csvcs := services(t, ctmpl)
	gsvc := csvcs["gateway"]
	if gsvc == nil || gsvc.targetGroup == nil {
		t.Fatal("the cluster stack has no load-balanced gateway service")
	}
	clb := newLB(t, gsvc.targetGroup)
	w.caFile = filepath.Join(w.dir, "public-ca.pem")
	if err := os.WriteFile(w.caFile, append(mlb.certPEM(), clb.certPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	w.managerURL = mlb.url()
	sh.hc = managerHTTP(t, w.caFile)

	sh.managers = w.launchOn(msvc, mlb)
	mpw := adminPassword(t, sh.managers.tasks)
	sh.mgrToken = apiLogin2(t, sh.hc, mlb.url(), mpw)
	// The operator registers the cluster and stores its credential in the
	// secret the cluster stack names (README, deploy guide).
	created := postJSON[wire.CreatedCluster](t, sh.hc, mlb.url()+"/v1/clusters", sh.mgrToken, `{"id":"shape"}`)
	w.secrets["autogate/shape/manager-credential"] = created.Credential

	sh.gateways = w.launchOn(gsvc, clb)
	sh.runnerSpec = csvcs["runner"] // startRunners starts them
	// The Lambda runner: every variable resolves now; startLambda boots
	// it. It opens secrets under the key the gateways seal with.
	if sh.lambda = w.lambdaOf(ctmpl); sh.lambda != nil {
		for _, arn := range w.keyARN {
			if sh.lambda.env["AUTOGATE_KMS_KEY_ID"] != arn {
				t.Errorf("the Lambda runner's AUTOGATE_KMS_KEY_ID = %q, want the cluster's key %s", sh.lambda.env["AUTOGATE_KMS_KEY_ID"], arn)
			}
		}
	}
	gpw := adminPassword(t, sh.gateways.tasks)
	sh.token = apiLogin2(t, sh.hc, clb.url(), gpw)
	return sh
}

// startRunners starts the ECS runner service's tasks.
func (sh *shape) startRunners() {
	if r := sh.runnerSpec; r != nil {
		for i := range r.desired {
			sh.runners = append(sh.runners, sh.w.start(r, i))
		}
	}
}

// launchOn is launch with the load balancer made beforehand.
func (w *world) launchOn(spec *taskSpec, l *lb) *fleet {
	w.t.Helper()
	f := &fleet{w: w, spec: spec, lb: l}
	for i := range spec.desired {
		k := w.start(spec, i)
		f.tasks = append(f.tasks, k)
		l.register(k.url)
	}
	f.steady()
	return f
}

// apiLogin2 logs in as admin through base. A 503 (a standby with no
// active yet, or an active whose term ended under the write: nothing was
// written) is tried again for up to 20 s, as the CLI's login would be
// repeated by hand.
func apiLogin2(t testing.TB, hc *http.Client, base, password string) string {
	t.Helper()
	b, _ := json.Marshal(wire.LoginRequest{Username: "admin", Password: password})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Post(base+"/v1/login", "application/json", strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("POST %s/v1/login: %v", base, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			tick(250 * time.Millisecond)
			continue
		}
		var out wire.LoginToken
		if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil {
			t.Fatalf("POST %s/v1/login: %d %s", base, resp.StatusCode, raw)
		}
		return out.Token
	}
}

func postJSON[T any](t testing.TB, hc *http.Client, u, token, body string) T {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	var out T
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %d %s", u, resp.StatusCode, raw)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	return out
}

// trial is one kill -9 of the active gateway under a workload through the
// load balancer.
type trial struct {
	failover time.Duration // first failed request's answer to the next success
	stall    time.Duration // the longest request
	failed   int
	total    int
	// The typed client's (the CLI's) reads alongside, with its retries:
	// what a CLI user sees.
	clientFailed, clientTotal, clientRetries int
	clientErrs                               []string
}

type sample struct {
	start, end time.Time
	ok         bool
}

// killActive kills the active gateway while a client sends requests
// through the load balancer (reads and writes in turn), until the dead
// task has left the target group and a second more has passed; then ECS
// replaces it.
func (sh *shape) killActive(t testing.TB, n int) trial {
	t.Helper()
	g := sh.gateways
	a := g.active()
	dead := g.tasks[a].url
	stop := make(chan struct{})
	var samples []sample
	done := untilClosed(stop, func(i int) {
		method, path, body := http.MethodGet, "/v1/whoami", ""
		if i%2 == 1 {
			method, path = http.MethodPost, "/v1/repositories"
			b, _ := json.Marshal(repo(fmt.Sprintf("t%d-r%d", n, i)))
			body = string(b)
		}
		req, _ := http.NewRequest(method, g.lb.url()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+sh.token)
		req.Header.Set("Content-Type", "application/json")
		s := sample{start: time.Now()}
		resp, err := sh.hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			s.ok = resp.StatusCode/100 == 2
		}
		s.end = time.Now()
		samples = append(samples, s)
		tick(10 * time.Millisecond)
	})
	// The typed client (what the CLI calls) reads alongside, with its
	// default retry (the CLI's).
	var tr trial
	var cmu sync.Mutex
	cl, err := client.New(g.lb.url(), sh.token, client.TLS{CAFile: sh.w.caFile})
	if err != nil {
		t.Fatal(err)
	}
	r := client.DefaultRetry
	r.Notify = func(client.RetryEvent) { cmu.Lock(); tr.clientRetries++; cmu.Unlock() }
	cl = cl.WithRetry(r)
	probe := fmt.Sprintf("probe-t%d", n)
	if err := cl.Create(t.Context(), repo(probe)); err != nil {
		t.Fatalf("trial %d: create %s: %v", n, probe, err)
	}
	cdone := untilClosed(stop, func(i int) {
		var err error
		if i%2 == 0 {
			_, err = cl.WhoAmI(context.Background())
		} else {
			_, err = cl.Get(context.Background(), resource.KindRepository, probe)
		}
		cmu.Lock()
		tr.clientTotal++
		if err != nil {
			tr.clientFailed++
			tr.clientErrs = append(tr.clientErrs, err.Error())
		}
		cmu.Unlock()
		tick(10 * time.Millisecond)
	})
	tick(300 * time.Millisecond)
	killed := time.Now()
	g.kill(a)
	waitForTB(t, time.Minute, func() bool { return !g.lb.isHealthy(dead) })
	tick(time.Second)
	close(stop)
	<-done
	<-cdone
	var firstFail *sample
	for i := range samples {
		s := &samples[i]
		if s.end.Before(killed) {
			continue
		}
		tr.total++
		tr.stall = max(tr.stall, s.end.Sub(s.start))
		if !s.ok {
			tr.failed++
			if firstFail == nil {
				firstFail = s
			}
			continue
		}
		if firstFail != nil && tr.failover == 0 && s.start.After(firstFail.end) {
			tr.failover = s.end.Sub(firstFail.end)
		}
	}
	if firstFail != nil && tr.failover == 0 {
		t.Fatalf("trial %d: no request succeeded after the first failure", n)
	}
	g.replace(a)
	return tr
}

// TestDeployedShape boots the synthesized stacks (see the top of this
// file): every task of each load-balanced service passes its target
// group's health check (ECS's rule for a deployment to finish), a run
// goes through the load balancer and a gateway to the Lambda runner (see
// deployed_lambda_test.go) and to the ECS runner, the manager reaches the
// cluster with the credential the stack hands its gateways, and kill -9
// of the active gateway fails over behind the load balancer with no
// failed read for the typed client (the CLI's retry); make
// bench-failover-lb measures it over more trials.
func TestDeployedShape(t *testing.T) {
	requireTool(t, "git")
	sh := bootShape(t, binPath)
	if sh.runnerSpec == nil || sh.lambda == nil {
		t.Fatalf("the shape has ECS runners %v and Lambda runner %v: the cluster config asks for both", sh.runnerSpec != nil, sh.lambda != nil)
	}
	// The manager reaches the cluster through its tunnel.
	waitForTB(t, 30*time.Second, func() bool {
		st, body, _ := httpGet(sh.hc, sh.managers.lb.url()+"/v1/clusters/shape/whoami", sh.mgrToken)
		return st == http.StatusOK && strings.Contains(string(body), "shape")
	})
	// A run through the load balancer, a gateway and the ECS runner.
	cl, err := client.New(sh.gateways.lb.url(), sh.token, client.TLS{CAFile: sh.w.caFile})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(sh.w.dir, "repo")
	// It uses a stored secret: the gateway seals it under a data key of
	// the stack's KMS key (local-kms), the runner opens it (13.8).
	gitRepo(t, dir, map[string]string{"hello.sh": "#!/bin/sh\necho \"deployed-shape ${#GREET}\"\n"}, map[string]os.FileMode{"hello.sh": 0o755})
	if err := cl.Create(t.Context(), &resource.Repository{Meta: resource.Meta{Name: "shape"}, URL: dir}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Create(t.Context(), &resource.Secret{Meta: resource.Meta{Name: "greet"}, Value: []byte("kms-sealed-value")}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Create(t.Context(), &resource.Service{Meta: resource.Meta{Name: "hello"}, Type: resource.Executable, Repository: "shape", Filename: "hello.sh",
		Secrets: []resource.SecretBinding{{Secret: "greet", Env: "GREET"}}}); err != nil {
		t.Fatal(err)
	}
	// A run on the Lambda runner, the one consumer of the shared work
	// queue while the ECS runner service is at zero tasks. (Lambda first:
	// a stopped ECS runner's long poll, up to 20 s, may still take a
	// message on fauxqs; the event source mapping here polls for 1 s.)
	lam := sh.startLambda(t)
	ex, err := cl.Run(t.Context(), "hello", wire.RunRequest{WaitSeconds: 60})
	if err != nil || ex.Status != "succeeded" || !strings.Contains(ex.Stdout.Data, "deployed-shape 16") {
		for _, k := range sh.gateways.tasks {
			raw, _ := os.ReadFile(k.LogPath)
			if len(raw) > 6<<10 {
				raw = raw[len(raw)-6<<10:]
			}
			t.Logf("gateway %s log ends:\n%s", k.url, raw)
		}
		t.Fatalf("run through the load balancer on the Lambda runner: %+v, %v\nevent source mapping: %v", ex, err, lam)
	}
	lam.mu.Lock()
	batches, lerrs := slices.Clone(lam.batches), slices.Clone(lam.errors)
	lam.mu.Unlock()
	if !lam.ran(ex.ID) || ex.Node != lam.stream {
		t.Fatalf("run %s went to node %q; want the Lambda runner %q to have taken it from the queue (invocations %v, errors %v)",
			ex.ID, ex.Node, lam.stream, batches, lerrs)
	}
	for _, b := range batches {
		if b > lam.spec.batch {
			t.Errorf("an invocation got %d records, the template's batch size is %d", b, lam.spec.batch)
		}
	}
	t.Logf("Lambda runner: run %s on %s, invocations with %v records, %d invocation errors (batch size %d, timeout %d s)",
		ex.ID, ex.Node, batches, len(lerrs), lam.spec.batch, lam.spec.timeout)

	// The same run through the ECS runner, once the Lambda's event
	// source mapping is disabled.
	lam.stop()
	sh.startRunners()
	if len(sh.runners) == 0 {
		t.Fatal("the shape has no ECS runner service: the cluster config asks for runners: both")
	}
	ex, err = cl.Run(t.Context(), "hello", wire.RunRequest{WaitSeconds: 60})
	if err != nil || ex.Status != "succeeded" || !strings.Contains(ex.Stdout.Data, "deployed-shape 16") || ex.Node == lam.stream || lam.ran(ex.ID) {
		t.Fatalf("run through the load balancer and the ECS runner: %+v, %v (Lambda %s)", ex, err, lam)
	}
	for n := range 2 {
		tr := sh.killActive(t, n)
		t.Logf("kill -9 of the active gateway: client-visible failover %v, longest request %v, %d of %d requests failed; typed client (CLI): %d of %d reads failed, %d retries",
			tr.failover.Round(time.Millisecond), tr.stall.Round(time.Millisecond), tr.failed, tr.total, tr.clientFailed, tr.clientTotal, tr.clientRetries)
		if tr.clientFailed > 0 || tr.clientTotal < 5 {
			t.Errorf("kill %d: the typed client (as the CLI retries) saw %d of %d reads fail across the failover, want 0 of at least 5: %v",
				n, tr.clientFailed, tr.clientTotal, tr.clientErrs)
		}
	}
}

// BenchmarkFailoverLB kills the active gateway of the booted shape once per
// iteration (make bench-failover-lb; BENCH_TRIALS, default 20) and reports
// client-visible failover through the load balancer, p50 and p99, with the
// failed requests. The binary is built without -race.
func BenchmarkFailoverLB(b *testing.B) {
	usePlainBinary(b)
	sh := bootShape(b, binPath)
	var fo, stalls []time.Duration
	failed, total, cfailed, ctotal, cretries := 0, 0, 0, 0, 0
	n := 0
	for b.Loop() {
		tr := sh.killActive(b, n)
		n++
		fo, stalls = append(fo, tr.failover), append(stalls, tr.stall)
		failed += tr.failed
		total += tr.total
		cfailed, ctotal, cretries = cfailed+tr.clientFailed, ctotal+tr.clientTotal, cretries+tr.clientRetries
		b.Logf("failover-lb trial %d: failover %v, longest request %v, %d of %d requests failed; typed client %d of %d failed, %d retries",
			n, tr.failover.Round(time.Millisecond), tr.stall.Round(time.Millisecond), tr.failed, tr.total, tr.clientFailed, tr.clientTotal, tr.clientRetries)
	}
	pct := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(p*float64(len(s)-1))].Seconds()
	}
	b.ReportMetric(pct(fo, 0.5), "failover-p50-s")
	b.ReportMetric(pct(fo, 0.99), "failover-p99-s")
	b.ReportMetric(pct(stalls, 0.99), "longest-request-p99-s")
	b.ReportMetric(float64(failed)/float64(n), "failed-requests/trial")
	b.ReportMetric(float64(cfailed)/float64(n), "client-failed-reads/trial")
	b.Logf("failover-lb: %d trials, %d of %d requests failed; typed client (CLI retry): %d of %d reads failed, %d retries (target group: %s every %v, healthy %d, unhealthy %d)",
		n, failed, total, cfailed, ctotal, cretries, sh.gateways.lb.path, sh.gateways.lb.interval, sh.gateways.lb.up, sh.gateways.lb.down)
}
