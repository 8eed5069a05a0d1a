package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// Template assertions for issue 14's items 2-5 and 7-13 (the manager stack
// and the manager URL are in TestManagerStack).

// TestIdleTimeoutOutlastsSyncWaits (14.7): the load balancer's idle timeout
// is longer than the longest sync wait the API accepts, read from the
// product's route definition.
func TestIdleTimeoutOutlastsSyncWaits(t *testing.T) {
	src := productFiles(t, false, "internal/api")
	re := regexp.MustCompile(`maximum:"(\d+)" doc:"seconds to wait`)
	longest := 0
	for _, s := range src {
		for _, m := range re.FindAllStringSubmatch(s, -1) {
			n, _ := strconv.Atoi(m[1])
			longest = max(longest, n)
		}
	}
	if longest == 0 {
		t.Fatal(`no "seconds to wait" maximum in internal/api: teach this test where the API bounds sync waits`)
	}
	if wait := time.Duration(longest) * time.Second; wait != maxSyncWait || IdleTimeout() <= wait {
		t.Errorf("API waits up to %s; stacks assume %s with idle timeout %s", wait, maxSyncWait, IdleTimeout())
	}
	_, st, _ := build(t, "clusters:"+clusterYAML("idle", acctA, regionA, 2, RunnersNone, ""))
	tmpl, _ := templateOf(t, st.Clusters["idle"])
	must(t, "idle timeout", func() {
		tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), map[string]any{
			"LoadBalancerAttributes": assertions.Match_ArrayWith(&[]any{map[string]any{"Key": "idle_timeout.timeout_seconds", "Value": fmt.Sprint(IdleTimeout().Seconds())}}),
		})
	})
}

// TestAlarmsNotify (14.9): without alarmTopicArn the stack creates a topic
// and every alarm notifies it; with one, that topic; the Lambda runner's
// errors and throttles raise alarms.
func TestAlarmsNotify(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		topics      int
		action      any
	}{
		{"own topic", "", 1, map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("AlarmTopic"))}},
		{"given topic", "    alarmTopicArn: arn:aws:sns:us-east-1:111111111111:ops\n", 0, "arn:aws:sns:us-east-1:111111111111:ops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, st, _ := build(t, "clusters:"+clusterYAML("alm", acctA, regionA, 2, RunnersBoth, tc.extra))
			tmpl, raw := templateOf(t, st.Clusters["alm"])
			must(t, "topics", func() { tmpl.ResourceCountIs(jsii.String("AWS::SNS::Topic"), jsii.Number(float64(tc.topics))) })
			alarms := resources(raw, "AWS::CloudWatch::Alarm")
			names := map[string]bool{}
			for id, a := range alarms {
				p := props(a)
				names[fmt.Sprint(p["MetricName"])] = true
				if _, ok := p["AlarmActions"]; !ok {
					t.Errorf("alarm %s notifies nobody", id)
				}
			}
			for _, m := range []string{"HealthyHostCount", "Errors", "Throttles", "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"} {
				if !names[m] {
					t.Errorf("no alarm on %s (alarms on %v)", m, names)
				}
			}
			for _, m := range []string{"Errors", "Throttles"} {
				must(t, "lambda alarm "+m, func() {
					tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
						"MetricName": m, "Namespace": "AWS/Lambda", "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold",
						"AlarmActions": assertions.Match_ArrayWith(&[]any{tc.action}),
					})
				})
			}
		})
	}
}

// TestLambdaQueueSettings (14.11): visibility at least 6× the function
// timeout, at least 5 receives; 14.8: the function runs in private subnets.
func TestLambdaQueueSettings(t *testing.T) {
	_, st, cfg := build(t, "clusters:"+clusterYAML("lq", acctA, regionA, 1, RunnersLambda, ""))
	cc := &cfg.Clusters[0]
	tmpl, raw := templateOf(t, st.Clusters["lq"])
	if cc.MaxReceiveCount < 5 {
		t.Errorf("default maxReceiveCount with the Lambda runner: %d, want at least 5", cc.MaxReceiveCount)
	}
	var fnTimeout float64
	for _, f := range resources(raw, "AWS::Lambda::Function") {
		fnTimeout = props(f)["Timeout"].(float64)
	}
	for _, q := range resources(raw, "AWS::SQS::Queue") {
		p := props(q)
		if p["QueueName"] != "autogate-lq-work" {
			continue
		}
		if v := p["VisibilityTimeout"].(float64); v < 6*fnTimeout {
			t.Errorf("visibility %v s < 6 × function timeout %v s", v, fnTimeout)
		}
		if n := p["RedrivePolicy"].(map[string]any)["maxReceiveCount"].(float64); n < 5 {
			t.Errorf("maxReceiveCount %v, want at least 5", n)
		}
	}
	must(t, "private subnets", func() {
		tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"VpcConfig": assertions.Match_ObjectLike(&map[string]any{
				"SubnetIds": assertions.Match_ArrayWith(&[]any{map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("privateSubnet"))}}),
			}),
		})
	})
}

// TestEndpointOverride (14.12): awsEndpointUrl reaches every task and the
// Lambda runner as AWS_ENDPOINT_URL; without it nothing is set.
func TestEndpointOverride(t *testing.T) {
	const ep = "http://localhost.localstack.cloud:4566"
	_, st, _ := build(t, "clusters:"+clusterYAML("ls", acctA, regionA, 2, RunnersBoth, "    awsEndpointUrl: "+ep+"\n")+
		clusterYAML("aws", acctA, regionA, 2, RunnersBoth, ""))
	for id, want := range map[string]string{"ls": ep, "aws": ""} {
		_, raw := templateOf(t, st.Clusters[id])
		nodes := stackEnv(t, raw)
		for _, kind := range []string{"gateway", "runner", "lambda"} {
			if len(nodes[kind]) == 0 {
				t.Fatalf("%s: no %s", id, kind)
			}
			for _, env := range nodes[kind] {
				if env["AWS_ENDPOINT_URL"] != want {
					t.Errorf("%s %s: AWS_ENDPOINT_URL = %q, want %q", id, kind, env["AWS_ENDPOINT_URL"], want)
				}
			}
		}
	}
	// The LocalStack cluster file uses it.
	cfg, err := LoadConfig("../../localstack/clusters.local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Clusters[0].AWSEndpointURL == "" {
		t.Error("localstack/clusters.local.yaml sets no awsEndpointUrl: the deployed tasks would call AWS")
	}
}

// TestImageAssetSinglePlatform (14.5): the one asset feeding ECS and Lambda
// is built for exactly the cluster's platform, and synth warns when the
// deploy would let BuildKit add attestations (an OCI index Lambda rejects).
func TestImageAssetSinglePlatform(t *testing.T) {
	t.Setenv(NoAttestationsEnv, "")
	app, st, _ := build(t, "clusters:"+clusterYAML("img", acctA, regionA, 1, RunnersBoth, "    architecture: arm64\n"))
	var warned bool
	must(t, "annotations", func() {
		msgs := assertions.Annotations_FromStack(st.Clusters["img"]).FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String(NoAttestationsEnv)))
		warned = len(*msgs) > 0
	})
	if !warned {
		t.Errorf("no warning about %s with the Lambda runner", NoAttestationsEnv)
	}
	var dir string
	must(t, "synth", func() { dir = *app.Synth(nil).Directory() })
	manifest, err := os.ReadFile(filepath.Join(dir, "Autogate-img.assets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var assets struct {
		DockerImages map[string]struct {
			Source map[string]any `json:"source"`
		} `json:"dockerImages"`
	}
	if err := json.Unmarshal(manifest, &assets); err != nil {
		t.Fatal(err)
	}
	if len(assets.DockerImages) != 1 {
		t.Errorf("%d image assets, want one for ECS and Lambda", len(assets.DockerImages))
	}
	for h, img := range assets.DockerImages {
		if img.Source["platform"] != "linux/arm64" {
			t.Errorf("image asset %s: platform %v, want linux/arm64 only", h, img.Source["platform"])
		}
	}
	t.Setenv(NoAttestationsEnv, "1")
	_, st, _ = build(t, "clusters:"+clusterYAML("img", acctA, regionA, 1, RunnersBoth, ""))
	must(t, "annotations", func() {
		msgs := assertions.Annotations_FromStack(st.Clusters["img"]).FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String(NoAttestationsEnv)))
		if len(*msgs) > 0 {
			t.Errorf("warning although %s=1", NoAttestationsEnv)
		}
	})
}

// sdkInputRE finds the AWS SDK operations a package calls, by their input
// types (dynamodb.PutItemInput, sqs.SendMessageInput, ...).
var sdkInputRE = regexp.MustCompile(`\b(?:aws)?(dynamodb|sqs|secretsmanager|ecs|sts|kms)\.([A-Z][A-Za-z]+)Input\b`)

// sdkActions are the IAM actions of the SDK calls in the product's dirs.
func sdkActions(t *testing.T, dirs ...string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, s := range productFiles(t, false, dirs...) {
		for _, m := range sdkInputRE.FindAllStringSubmatch(s, -1) {
			svc, op := m[1], m[2]
			switch {
			case svc == "dynamodb" && op == "TransactWriteItems":
				// Authorized per item: the store's transactions put,
				// update, delete and condition-check.
				for _, a := range []string{"PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"} {
					out["dynamodb:"+a] = true
				}
			case svc == "dynamodb" && op == "TransactGetItems":
				out["dynamodb:GetItem"] = true
			default:
				out[svc+":"+op] = true
			}
		}
	}
	return out
}

// TestRoleActionsMatchSDKCalls (14.10): every action a node's role grants
// is an SDK call that node's code makes (read from the product's source),
// or one the platform makes on its behalf (listed with the reason); and
// every SDK call the node makes at run time is granted.
func TestRoleActionsMatchSDKCalls(t *testing.T) {
	store := []string{"internal/store/dynamo"}
	lease := []string{"internal/lease/dynamo"}
	queue := []string{"internal/queue/sqs"}
	// The stored-secret keyring: every node that opens secrets (the
	// gateway seals and opens, the runners open; whichever starts first
	// creates the keyring). The manager stores no secrets.
	keyring := []string{"internal/secret/kms"}
	nodes := map[string]map[string]bool{
		"gateway": sdkActions(t, slices.Concat(store, lease, queue, keyring)...),
		"runner":  sdkActions(t, slices.Concat(store, lease, queue, keyring)...),
		"lambda":  sdkActions(t, slices.Concat(store, queue, keyring, []string{"functions/runner"})...),
		"manager": sdkActions(t, slices.Concat(store, lease)...),
	}
	// Calls of `autogate init table` and `autogate rotate secret-key`
	// (ReEncrypt: re-wrap the data keys under the configured KMS key),
	// an operator's one-offs with the operator's credentials, not of a
	// running node.
	notAtRunTime := []string{"dynamodb:CreateTable", "dynamodb:UpdateTable", "dynamodb:UpdateTimeToLive", "kms:ReEncrypt"}
	// platform lists actions no product SDK call makes, by role kind.
	platform := map[string]map[string]string{
		"lambda": {
			"logs:CreateLogStream": "Lambda writes the function's logs", "logs:PutLogEvents": "Lambda writes the function's logs",
			"ec2:CreateNetworkInterface": "Lambda's VPC access", "ec2:DescribeNetworkInterfaces": "Lambda's VPC access",
			"ec2:DescribeSubnets": "Lambda's VPC access", "ec2:DeleteNetworkInterface": "Lambda's VPC access",
			"ec2:AssignPrivateIpAddresses": "Lambda's VPC access", "ec2:UnassignPrivateIpAddresses": "Lambda's VPC access",
		},
		"runner": {
			// The runner calls the ECS agent's /task-protection/v1/state,
			// which calls these with the task role (issue 14.6, another
			// branch); they are not SDK calls of the product.
			"ecs:UpdateTaskProtection": "ECS agent task protection", "ecs:GetTaskProtection": "ECS agent task protection",
		},
		"manager": {
			"ssmmessages:CreateControlChannel": "ECS Exec", "ssmmessages:CreateDataChannel": "ECS Exec",
			"ssmmessages:OpenControlChannel": "ECS Exec", "ssmmessages:OpenDataChannel": "ECS Exec",
			"logs:DescribeLogGroups": "ECS Exec", "logs:DescribeLogStreams": "ECS Exec session logs",
			"logs:CreateLogStream": "ECS Exec session logs", "logs:PutLogEvents": "ECS Exec session logs",
		},
		"gateway": {
			"ssmmessages:CreateControlChannel": "ECS Exec", "ssmmessages:CreateDataChannel": "ECS Exec",
			"ssmmessages:OpenControlChannel": "ECS Exec", "ssmmessages:OpenDataChannel": "ECS Exec",
			"logs:DescribeLogGroups": "ECS Exec", "logs:DescribeLogStreams": "ECS Exec session logs",
			"logs:CreateLogStream": "ECS Exec session logs", "logs:PutLogEvents": "ECS Exec session logs",
		},
	}
	// With a legacy secret key, so the Lambda runner's GetSecretValue is
	// granted (it is called only then).
	doc := managerYAML("  url: https://m.example.com\n  ecsExec: true\n") + "clusters:" +
		clusterYAML("iam", acctA, regionA, 2, RunnersBoth, "    ecsExec: true\n    secretKeySecret: autogate/iam/secret-key\n")
	_, st, _ := build(t, doc)
	_, craw := templateOf(t, st.Clusters["iam"])
	_, mraw := templateOf(t, st.Manager)

	// The role each policy belongs to, by the role's logical ID.
	kindOf := func(tmpl map[string]any, policy map[string]any) string {
		js, _ := json.Marshal(props(policy)["Roles"])
		switch r := string(js); {
		case strings.Contains(r, "ExecutionRole"):
			return "execution"
		case strings.Contains(r, "GatewayTaskRole"):
			return "gateway"
		case strings.Contains(r, "RunnerTaskRole"):
			return "runner"
		case strings.Contains(r, "LambdaRunnerRole"):
			return "lambda"
		case strings.Contains(r, "ManagerTaskRole"):
			return "manager"
		case strings.Contains(r, "FlowLog"), strings.Contains(r, "VPCRejected"):
			return "flowlogs"
		}
		t.Errorf("policy for roles %s: unknown kind of role", js)
		return ""
	}
	granted := map[string]map[string]bool{}
	for _, tmpl := range []map[string]any{craw, mraw} {
		for id, pol := range resources(tmpl, "AWS::IAM::Policy") {
			kind := kindOf(tmpl, pol)
			if granted[kind] == nil {
				granted[kind] = map[string]bool{}
			}
			for _, s := range props(pol)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				for _, a := range asStrings(s.(map[string]any)["Action"]) {
					granted[kind][a] = true
					switch kind {
					case "execution":
						// The execution role pulls the image, writes the
						// container's logs and reads the ECS secrets.
						if !strings.HasPrefix(a, "ecr:") && !slices.Contains([]string{"logs:CreateLogStream", "logs:PutLogEvents",
							"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}, a) {
							t.Errorf("execution role policy %s grants %s", id, a)
						}
					case "flowlogs":
						if !strings.HasPrefix(a, "logs:") && a != "iam:PassRole" {
							t.Errorf("flow log role policy %s grants %s", id, a)
						}
					default:
						if !nodes[kind][a] {
							if _, ok := platform[kind][a]; !ok {
								t.Errorf("%s role grants %s, which no SDK call of the %s makes (policy %s)", kind, a, kind, id)
							}
						}
					}
				}
			}
		}
	}
	// The runners share the queue package with the gateway but never
	// enqueue (they hand messages back with ChangeMessageVisibility): held
	// by checking that their sources call no Send.
	runnerSrc := productFiles(t, true, "runner", "functions/runner", "cmd/autogate/runner.go")
	for f, src := range runnerSrc {
		if strings.Contains(src, ".Send(ctx") {
			t.Errorf("%s enqueues (.Send): grant sqs:SendMessage to the runners", f)
		}
	}
	notCalledBy := map[string][]string{"runner": {"sqs:SendMessage"}, "lambda": {"sqs:SendMessage"}}
	for kind, calls := range nodes {
		var missing []string
		for a := range calls {
			if !granted[kind][a] && !slices.Contains(notAtRunTime, a) && !slices.Contains(notCalledBy[kind], a) {
				missing = append(missing, a)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s makes SDK calls its role is not granted: %v", kind, missing)
		}
	}
	// No empty roles (the scaling target uses the service-linked role).
	for _, tmpl := range []map[string]any{craw, mraw} {
		used := map[string]bool{}
		for _, pol := range resources(tmpl, "AWS::IAM::Policy") {
			for _, r := range props(pol)["Roles"].([]any) {
				if ref, ok := r.(map[string]any)["Ref"].(string); ok {
					used[ref] = true
				}
			}
		}
		for id, r := range resources(tmpl, "AWS::IAM::Role") {
			_, inline := props(r)["Policies"]
			_, managed := props(r)["ManagedPolicyArns"]
			if !used[id] && !inline && !managed {
				t.Errorf("role %s has no policy: remove it", id)
			}
		}
	}
	// The drift check bites: a made-up grant is not an SDK call.
	if nodes["gateway"]["sqs:StartMessageMoveTask"] || nodes["gateway"]["sqs:GetQueueUrl"] || nodes["gateway"]["dynamodb:BatchWriteItem"] {
		t.Error("the product calls an action the stacks dropped as unused; grant it again")
	}
	// ... and the keyring's calls are read from its source.
	for _, a := range []string{"kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncrypt"} {
		if !nodes["gateway"][a] {
			t.Errorf("no %s call read from internal/secret/kms: teach sdkInputRE its input type", a)
		}
	}
}

// TestStandbysReachTheActive (14.1): the tasks of a service may reach each
// other on the service port (a standby forwards to the active task), and
// no task is told to advertise the load balancer's name (the lease item
// must name the active task itself, or a standby would forward to the
// load balancer).
func TestStandbysReachTheActive(t *testing.T) {
	doc := managerYAML("  url: https://m.example.com\n") + "clusters:" + clusterYAML("fwd", acctA, regionA, 2, RunnersNone, "    domainName: fwd.example.com\n")
	_, st, _ := build(t, doc)
	_, craw := templateOf(t, st.Clusters["fwd"])
	_, mraw := templateOf(t, st.Manager)
	for name, tc := range map[string]struct {
		raw  map[string]any
		port float64
	}{"cluster": {craw, gatewayPort}, "manager": {mraw, managerPort}} {
		raw := tc.raw
		found := false
		for id, r := range resources(raw, "AWS::EC2::SecurityGroupIngress") {
			p := props(r)
			if p["Description"] != "standbys forward to the active" {
				continue
			}
			found = true
			g, _ := json.Marshal(p["GroupId"])
			src, _ := json.Marshal(p["SourceSecurityGroupId"])
			if string(g) != string(src) || p["FromPort"] != tc.port || p["ToPort"] != tc.port {
				t.Errorf("%s: ingress %s = %v, want the service's own group on port %v", name, id, p, tc.port)
			}
		}
		if !found {
			t.Errorf("%s: no ingress rule lets standbys reach the active task", name)
		}
		for kind, envs := range stackEnv(t, raw) {
			for _, env := range envs {
				for k := range env {
					if strings.HasSuffix(k, "ADVERTISE_ADDR") {
						t.Errorf("%s %s: %s is set; the task must advertise its own address", name, kind, k)
					}
				}
			}
		}
	}
}
