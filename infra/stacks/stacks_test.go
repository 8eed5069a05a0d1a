package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// The CDK tests share one package (compiling aws-cdk-go takes a minute) and
// run sequentially: every call goes through the one jsii Node process.

const (
	acctA, regionA = "111111111111", "us-east-1"
	acctB, regionB = "222222222222", "eu-west-1"
)

// must runs f and turns a panic (how a failed assertions check reports)
// into a test failure.
func must(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s: %v", what, r)
		}
	}()
	f()
}

// testApp is a CDK app writing to a temporary directory, with the
// availability zones of the test accounts in its context so nothing is
// looked up.
func testApp(t *testing.T) awscdk.App {
	t.Helper()
	return awscdk.NewApp(&awscdk.AppProps{
		Outdir: jsii.String(t.TempDir()),
		Context: &map[string]any{
			AZContextKey(acctA, regionA): []string{"us-east-1a", "us-east-1b", "us-east-1c"},
			AZContextKey(acctB, regionB): []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"},
		},
	})
}

// imageDir is a stand-in Docker build context: the tests check what the
// stacks do with the image, not the image.
func imageDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// clusterYAML is one cluster entry of a clusters file.
func clusterYAML(id, account, region string, gateways int, runners, extra string) string {
	return fmt.Sprintf(`
  - id: %s
    account: %q
    region: %s
    certificateArn: arn:aws:acm:%s:%s:certificate/0000-%s
    gateways: %d
    runners: %s
%s`, id, account, region, region, account, id, gateways, runners, extra)
}

// build parses a clusters file and builds the app from it.
func build(t *testing.T, doc string) (awscdk.App, *Stacks, *Config) {
	t.Helper()
	cfg, err := ParseConfig([]byte(doc))
	if err != nil {
		t.Fatalf("ParseConfig: %v\n%s", err, doc)
	}
	app := testApp(t)
	var st *Stacks
	must(t, "Build", func() { st = Build(app, cfg, imageDir(t)) })
	return app, st, cfg
}

// templateOf synthesizes a stack and returns its template, both as the
// assertions object and as plain JSON.
func templateOf(t *testing.T, stack awscdk.Stack) (assertions.Template, map[string]any) {
	t.Helper()
	var tmpl assertions.Template
	must(t, "synthesize "+*stack.StackName(), func() { tmpl = assertions.Template_FromStack(stack, nil) })
	raw, err := json.Marshal(tmpl.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return tmpl, m
}

// resources returns the template's resources of one type, by logical ID.
func resources(tmpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tmpl["Resources"].(map[string]any) {
		rm := r.(map[string]any)
		if rm["Type"] == typ {
			out[id] = rm
		}
	}
	return out
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

// nagErrors returns the unsuppressed cdk-nag AwsSolutions errors of a stack.
func nagErrors(t *testing.T, stack awscdk.Stack) []string {
	t.Helper()
	var out []string
	must(t, "annotations", func() {
		msgs := assertions.Annotations_FromStack(stack).FindError(jsii.String("*"),
			assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*")))
		for _, m := range *msgs {
			out = append(out, fmt.Sprintf("%s: %v", *m.Id, m.Entry.Data))
		}
	})
	return out
}

// statement is one IAM policy statement with its policy's logical ID.
type statement struct {
	policy    string
	sid       string
	actions   []string
	resources []any
	condition map[string]any
}

func asStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

func statements(tmpl map[string]any) []statement {
	var out []statement
	for id, r := range resources(tmpl, "AWS::IAM::Policy") {
		doc := props(r)["PolicyDocument"].(map[string]any)
		for _, s := range doc["Statement"].([]any) {
			sm := s.(map[string]any)
			st := statement{policy: id, actions: asStrings(sm["Action"])}
			st.sid, _ = sm["Sid"].(string)
			if rs, ok := sm["Resource"].([]any); ok {
				st.resources = rs
			} else {
				st.resources = []any{sm["Resource"]}
			}
			st.condition, _ = sm["Condition"].(map[string]any)
			out = append(out, st)
		}
	}
	return out
}

// starAllowed are the only actions that may have Resource "*": none of them
// supports resource-level permissions.
var starAllowed = []string{
	"ecr:GetAuthorizationToken",
	"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
	"ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
	"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
	"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel", "logs:DescribeLogGroups",
}

// checkIAM checks every IAM statement of a cluster stack: "*" only for
// actions without resource-level permissions, table access only under the
// cluster's own keys, and no resource naming another cluster.
func checkIAM(t *testing.T, tmpl map[string]any, clusterID string, others []string) {
	t.Helper()
	sts := statements(tmpl)
	if len(sts) == 0 {
		t.Fatal("no IAM statements")
	}
	for _, s := range sts {
		where := fmt.Sprintf("policy %s statement %q %v", s.policy, s.sid, s.actions)
		for _, r := range s.resources {
			if r == "*" {
				for _, a := range s.actions {
					if !slices.Contains(starAllowed, a) {
						t.Errorf("%s: action %s on Resource \"*\" though it supports narrower resources", where, a)
					}
				}
			}
			rs, _ := json.Marshal(r)
			for _, o := range others {
				if strings.Contains(string(rs), o) {
					t.Errorf("%s: resource %s names cluster %s", where, rs, o)
				}
			}
		}
		for _, a := range s.actions {
			if a == "dynamodb:Scan" || a == "dynamodb:*" {
				t.Errorf("%s: %s escapes the dynamodb:LeadingKeys condition", where, a)
			}
			if strings.HasPrefix(a, "dynamodb:") && !strings.HasPrefix(a, "dynamodb:Describe") {
				keys := fmt.Sprint(s.condition["ForAllValues:StringLike"])
				if want := fmt.Sprintf("map[dynamodb:LeadingKeys:[%s#*]]", clusterID); keys != want {
					t.Errorf("%s: table access condition %s, want %s", where, keys, want)
				}
			}
		}
	}
}

// containerEnv returns the environment and secret names of a container of
// the stack's task definitions.
func containerEnv(t *testing.T, tmpl map[string]any, container string) (env map[string]any, secrets []string) {
	t.Helper()
	for _, r := range resources(tmpl, "AWS::ECS::TaskDefinition") {
		for _, cd := range props(r)["ContainerDefinitions"].([]any) {
			c := cd.(map[string]any)
			if c["Name"] != container {
				continue
			}
			env = map[string]any{}
			for _, e := range c["Environment"].([]any) {
				em := e.(map[string]any)
				env[em["Name"].(string)] = em["Value"]
			}
			ss, _ := c["Secrets"].([]any) // absent when there are none
			for _, s := range ss {
				secrets = append(secrets, s.(map[string]any)["Name"].(string))
			}
			return env, secrets
		}
	}
	t.Fatalf("no container %q", container)
	return nil, nil
}

// wantBacklogExpression is the scaling metric written out (14.6): waiting
// plus in-flight messages per running task. Spelled here, not read from
// BacklogPerTaskExpression, so a return to visible-only fails the test.
const wantBacklogExpression = "IF(running > 0, (visible + inFlight) / running, visible + inFlight)"

// checkKeyRef checks that v is the ARN of the cluster's KMS key.
func checkKeyRef(t *testing.T, node string, v any) {
	t.Helper()
	js, _ := json.Marshal(v)
	if !regexp.MustCompile(`^\{"Fn::GetAtt":\["[A-Za-z0-9]*SecretsKey[A-Za-z0-9]+","Arn"\]\}$`).Match(js) {
		t.Errorf("%s: AUTOGATE_KMS_KEY_ID = %s, want the cluster key's ARN", node, js)
	}
}

// TestDeploymentModels synthesizes one cluster per deployment model and
// checks its resources, their key properties, its IAM and cdk-nag.
func TestDeploymentModels(t *testing.T) {
	models := []struct {
		name     string
		gateways int
		runners  string
		extra    string
	}{
		{"1-single-gateway", 1, RunnersNone, "    natGateways: 0\n    containerInsights: false\n"},
		{"2-active-standby", 2, RunnersNone, "    ecsExec: true\n"},
		{"3-distributed-ecs", 1, RunnersECS, "    ecsRunner: {minTasks: 2, maxTasks: 7, concurrency: 3}\n    maxReceiveCount: 5\n"},
		{"3-distributed-lambda", 1, RunnersLambda, "    maxServiceTimeout: 5m\n    lambdaRunner: {batchSize: 2, maxConcurrency: 4}\n"},
		{"4-ha-distributed", 3, RunnersBoth, "    maxServiceTimeout: 14m\n    architecture: arm64\n"},
	}
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			_, st, cfg := build(t, "clusters:"+clusterYAML("mdl", acctA, regionA, m.gateways, m.runners, m.extra))
			cc := &cfg.Clusters[0]
			stack := st.Clusters["mdl"]
			if got := *stack.StackName(); got != "Autogate-mdl" {
				t.Errorf("stack name: got %s, want Autogate-mdl", got)
			}
			tmpl, raw := templateOf(t, stack)
			if errs := nagErrors(t, stack); len(errs) > 0 {
				t.Errorf("unsuppressed cdk-nag errors:\n%s", strings.Join(errs, "\n"))
			}

			count := func(typ string, n int) {
				t.Helper()
				must(t, "count "+typ, func() { tmpl.ResourceCountIs(jsii.String(typ), jsii.Number(float64(n))) })
			}
			has := func(typ string, p map[string]any) {
				t.Helper()
				must(t, "properties of "+typ, func() { tmpl.HasResourceProperties(jsii.String(typ), p) })
			}

			// Table: keys, TTL, point-in-time recovery, deletion protection.
			count("AWS::DynamoDB::Table", 1)
			has("AWS::DynamoDB::Table", map[string]any{
				"TableName": "autogate-mdl",
				"KeySchema": []any{
					map[string]any{"AttributeName": "pk", "KeyType": "HASH"},
					map[string]any{"AttributeName": "sk", "KeyType": "RANGE"},
				},
				"AttributeDefinitions": assertions.Match_ArrayWith(&[]any{
					map[string]any{"AttributeName": "pk", "AttributeType": "S"},
					map[string]any{"AttributeName": "sk", "AttributeType": "S"},
				}),
				// The store's indexes (store/dynamo TableInput).
				"GlobalSecondaryIndexes": []any{
					map[string]any{"IndexName": "by-status", "Projection": map[string]any{"ProjectionType": "ALL"}, "KeySchema": []any{
						map[string]any{"AttributeName": "byStatus", "KeyType": "HASH"}, map[string]any{"AttributeName": "sk", "KeyType": "RANGE"}}},
					map[string]any{"IndexName": "by-service", "Projection": map[string]any{"ProjectionType": "ALL"}, "KeySchema": []any{
						map[string]any{"AttributeName": "byService", "KeyType": "HASH"}, map[string]any{"AttributeName": "sk", "KeyType": "RANGE"}}},
				},
				"BillingMode":                      "PAY_PER_REQUEST",
				"TimeToLiveSpecification":          map[string]any{"AttributeName": "expiresAt", "Enabled": true},
				"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
				// Off by default (14.4): a protected table cannot be deleted
				// when the first create rolls back; see TestTableDeletionProtection.
				"DeletionProtectionEnabled": false,
			})
			// Retained on update and delete, not when the first create
			// rolls back (14.4): the retry would fail on the fixed name.
			must(t, "table retained", func() {
				tmpl.HasResource(jsii.String("AWS::DynamoDB::Table"), map[string]any{"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"})
			})
			must(t, "access logs retained", func() {
				tmpl.HasResource(jsii.String("AWS::S3::Bucket"), map[string]any{"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"})
			})

			// Gateways behind HTTPS, every live one healthy on /healthz
			// (14.1): ECS's ordinary rolling deployment.
			count("AWS::ECS::Service", map[bool]int{false: 1, true: 2}[cc.HasECSRunner()])
			has("AWS::ECS::Service", map[string]any{
				"ServiceName":                   "gateway",
				"DesiredCount":                  m.gateways,
				"HealthCheckGracePeriodSeconds": HealthCheckGrace.Seconds(),
				"DeploymentConfiguration":       assertions.Match_ObjectLike(&map[string]any{"MinimumHealthyPercent": 100, "MaximumPercent": 200}),
				"LoadBalancers":                 []any{map[string]any{"ContainerName": "gateway", "ContainerPort": 8443, "TargetGroupArn": assertions.Match_AnyValue()}},
			})
			if cc.ECSExec {
				has("AWS::ECS::Service", map[string]any{"ServiceName": "gateway", "EnableExecuteCommand": true})
			} else {
				has("AWS::ECS::Service", map[string]any{"ServiceName": "gateway", "EnableExecuteCommand": false})
			}
			has("AWS::ElasticLoadBalancingV2::TargetGroup", map[string]any{
				"Port": 8443, "Protocol": "HTTPS", "TargetType": "ip",
				"HealthCheckPath": "/healthz", "HealthCheckProtocol": "HTTPS",
				"Matcher": map[string]any{"HttpCode": "200"},
			})
			has("AWS::ElasticLoadBalancingV2::Listener", map[string]any{
				"Port": 443, "Protocol": "HTTPS",
				"Certificates": []any{map[string]any{"CertificateArn": cc.CertificateARN}},
			})
			has("AWS::CloudWatch::Alarm", map[string]any{
				"MetricName": "HealthyHostCount", "ComparisonOperator": "LessThanThreshold", "Threshold": 1,
			})
			has("AWS::Logs::LogGroup", map[string]any{"RetentionInDays": 30})

			env, secrets := containerEnv(t, raw, "gateway")
			wantExec := map[bool]string{false: "local", true: "queue"}[cc.HasQueue()]
			for k, want := range map[string]any{
				"AUTOGATE_STORE": "dynamodb", "AUTOGATE_CLUSTER": "mdl", "AUTOGATE_TABLE": "autogate-mdl",
				"AUTOGATE_EXECUTION": wantExec, "AUTOGATE_LISTEN": ":8443",
			} {
				if env[k] != want {
					t.Errorf("gateway env %s: got %v, want %v", k, env[k], want)
				}
			}
			// Stored secrets are sealed under the cluster's KMS key; no
			// legacy key without secretKeySecret (TestKMSKey).
			if _, ok := env["AUTOGATE_SECRET_KEY"]; ok || len(secrets) != 0 {
				t.Errorf("gateway: no legacy secret key without secretKeySecret: env has it=%v, secrets=%v", ok, secrets)
			}
			checkKeyRef(t, "gateway", env["AUTOGATE_KMS_KEY_ID"])

			// Queues: only with runners; SSE, redrive, derived visibility.
			if !cc.HasQueue() {
				count("AWS::SQS::Queue", 0)
				if _, ok := env["AUTOGATE_QUEUE_URL"]; ok {
					t.Error("AUTOGATE_QUEUE_URL set without a queue")
				}
			} else {
				count("AWS::SQS::Queue", 2)
				has("AWS::SQS::Queue", map[string]any{
					"QueueName":            "autogate-mdl-work",
					"SqsManagedSseEnabled": true,
					"VisibilityTimeout":    cc.VisibilityTimeout().Seconds(),
					"RedrivePolicy": map[string]any{
						"maxReceiveCount":     cc.MaxReceiveCount,
						"deadLetterTargetArn": assertions.Match_AnyValue(),
					},
				})
				has("AWS::SQS::Queue", map[string]any{"QueueName": "autogate-mdl-dlq", "SqsManagedSseEnabled": true})
				// Enforced TLS on both queues.
				count("AWS::SQS::QueuePolicy", 2)
				has("AWS::CloudWatch::Alarm", map[string]any{
					"MetricName": "ApproximateNumberOfMessagesVisible", "Threshold": 0, "ComparisonOperator": "GreaterThanThreshold",
				})
				has("AWS::CloudWatch::Alarm", map[string]any{"MetricName": "ApproximateAgeOfOldestMessage"})
			}

			// ECS runner: service scaled on backlog per task.
			if cc.HasECSRunner() {
				r := cc.ECSRunner
				has("AWS::ECS::Service", map[string]any{"ServiceName": "runner", "DesiredCount": r.MinTasks})
				has("AWS::ApplicationAutoScaling::ScalableTarget", map[string]any{
					"MinCapacity": r.MinTasks, "MaxCapacity": r.MaxTasks,
					"ResourceId": "service/autogate-mdl/runner", "ScalableDimension": "ecs:service:DesiredCount",
				})
				has("AWS::ApplicationAutoScaling::ScalingPolicy", map[string]any{
					"PolicyType": "TargetTrackingScaling",
					"TargetTrackingScalingPolicyConfiguration": assertions.Match_ObjectLike(&map[string]any{
						"TargetValue": r.BacklogPerTask,
						"CustomizedMetricSpecification": map[string]any{"Metrics": assertions.Match_ArrayWith(&[]any{
							assertions.Match_ObjectLike(&map[string]any{"Id": "visible", "MetricStat": assertions.Match_ObjectLike(&map[string]any{
								"Metric": assertions.Match_ObjectLike(&map[string]any{"MetricName": "ApproximateNumberOfMessagesVisible", "Namespace": "AWS/SQS"}),
							})}),
							// In flight at runners (14.6): a busy fleet is
							// not scaled in for an empty queue.
							assertions.Match_ObjectLike(&map[string]any{"Id": "inFlight", "MetricStat": assertions.Match_ObjectLike(&map[string]any{
								"Metric": assertions.Match_ObjectLike(&map[string]any{"MetricName": "ApproximateNumberOfMessagesNotVisible", "Namespace": "AWS/SQS"}),
							})}),
							assertions.Match_ObjectLike(&map[string]any{"Id": "running", "MetricStat": assertions.Match_ObjectLike(&map[string]any{
								"Metric": assertions.Match_ObjectLike(&map[string]any{"MetricName": "RunningTaskCount", "Namespace": "ECS/ContainerInsights"}),
							})}),
							map[string]any{"Id": "backlogPerTask", "Expression": wantBacklogExpression, "Label": assertions.Match_AnyValue(), "ReturnData": true},
						})},
					}),
				})
				renv, rsecrets := containerEnv(t, raw, "runner")
				// The runner always works from the queue and reads no
				// AUTOGATE_EXECUTION (issue 11: nothing set that is never read).
				if _, set := renv["AUTOGATE_EXECUTION"]; renv["AUTOGATE_RUNNER_CONCURRENCY"] != fmt.Sprint(r.Concurrency) || set || renv["AUTOGATE_STORE"] != "dynamodb" {
					t.Errorf("runner env: %v", renv)
				}
				if len(rsecrets) != 0 {
					t.Errorf("runner secrets without secretKeySecret: got %v, want none", rsecrets)
				}
				checkKeyRef(t, "runner", renv["AUTOGATE_KMS_KEY_ID"])
				has("AWS::ECS::Cluster", map[string]any{
					"ClusterName":     "autogate-mdl",
					"ClusterSettings": []any{map[string]any{"Name": "containerInsights", "Value": "enabled"}},
				})
			} else {
				count("AWS::ApplicationAutoScaling::ScalingPolicy", 0)
			}
			insights := map[bool]string{true: "enabled", false: "disabled"}[*cc.ContainerInsights]
			has("AWS::ECS::Cluster", map[string]any{
				"ClusterSettings": []any{map[string]any{"Name": "containerInsights", "Value": insights}},
			})
			if *cc.NATGateways == 0 {
				count("AWS::EC2::NatGateway", 0)
				has("AWS::ECS::Service", map[string]any{"ServiceName": "gateway", "NetworkConfiguration": map[string]any{
					"AwsvpcConfiguration": assertions.Match_ObjectLike(&map[string]any{"AssignPublicIp": "ENABLED"}),
				}})
			}

			// Lambda runner: the same image, SQS event source with partial
			// batch failures.
			if cc.HasLambdaRunner() {
				l := cc.LambdaRunner
				count("AWS::Lambda::Function", 1)
				arch := map[string]string{ArchAMD64: "x86_64", ArchARM64: "arm64"}[cc.Architecture]
				has("AWS::Lambda::Function", map[string]any{
					"PackageType":   "Image",
					"Architectures": []any{arch},
					"Timeout":       cc.LambdaTimeout().Seconds(),
					"ImageConfig":   map[string]any{"EntryPoint": []any{lambdaEntrypoint}},
					"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{
						"AUTOGATE_CLUSTER": "mdl", "AUTOGATE_EXECUTION": assertions.Match_Absent(), "AUTOGATE_SECRET_KEY_SECRET_ID": assertions.Match_Absent(),
						"AUTOGATE_KMS_KEY_ID": map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("SecretsKey")), "Arn"}},
					})},
				})
				has("AWS::Lambda::EventSourceMapping", map[string]any{
					"BatchSize":             l.BatchSize,
					"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
					"ScalingConfig":         map[string]any{"MaximumConcurrency": l.MaxConcurrency},
					"EventSourceArn":        map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("WorkQueue")), "Arn"}},
				})
				if lt := cc.LambdaTimeout(); cc.VisibilityTimeout() <= lt {
					t.Errorf("visibility timeout %s must exceed the Lambda timeout %s", cc.VisibilityTimeout(), lt)
				}
			} else {
				count("AWS::Lambda::Function", 0)
			}

			checkIAM(t, raw, "mdl", nil)
		})
	}
}

// TestTwoClustersIndependent synthesizes two clusters in different accounts
// and regions and checks that their stacks share nothing.
func TestTwoClustersIndependent(t *testing.T) {
	doc := "clusters:" + clusterYAML("east", acctA, regionA, 2, RunnersECS, "") +
		clusterYAML("west", acctB, regionB, 1, RunnersLambda, "")
	app, st, _ := build(t, doc)
	if len(st.Clusters) != 2 || st.Manager != nil {
		t.Fatalf("stacks: got %d clusters, manager %v; want 2, none", len(st.Clusters), st.Manager != nil)
	}
	want := map[string][2]string{"east": {acctA, regionA}, "west": {acctB, regionB}}
	for id, env := range want {
		stack := st.Clusters[id]
		if *stack.Account() != env[0] || *stack.Region() != env[1] {
			t.Errorf("%s: env %s/%s, want %s/%s", id, *stack.Account(), *stack.Region(), env[0], env[1])
		}
		if n := len(*stack.Dependencies()); n != 0 {
			t.Errorf("%s: %d stack dependencies, want none", id, n)
		}
		_, raw := templateOf(t, stack)
		js, _ := json.Marshal(raw)
		other := map[string]string{"east": "west", "west": "east"}[id]
		for _, bad := range []string{"Fn::ImportValue", "autogate-" + other, want[other][0], want[other][1]} {
			if strings.Contains(string(js), bad) {
				t.Errorf("%s: template mentions %q, which belongs to the other cluster", id, bad)
			}
		}
		checkIAM(t, raw, id, []string{other})
		if errs := nagErrors(t, stack); len(errs) > 0 {
			t.Errorf("%s: unsuppressed cdk-nag errors:\n%s", id, strings.Join(errs, "\n"))
		}
	}
	var names []string
	must(t, "synth", func() {
		for _, s := range *app.Synth(nil).Stacks() {
			names = append(names, *s.StackName()+"@"+*s.Environment().Account+"/"+*s.Environment().Region)
		}
	})
	slices.Sort(names)
	if w := []string{"Autogate-east@" + acctA + "/" + regionA, "Autogate-west@" + acctB + "/" + regionB}; !slices.Equal(names, w) {
		t.Errorf("cloud assembly stacks: got %v, want %v", names, w)
	}
}

// TestSharedTable: a cluster that uses another's table creates none, and
// its roles reach only its own keys of that table.
func TestSharedTable(t *testing.T) {
	doc := "clusters:" + clusterYAML("owner", acctA, regionA, 1, RunnersNone, "") +
		clusterYAML("tenant", acctA, regionA, 1, RunnersECS, "    sharedTable: owner\n")
	_, st, _ := build(t, doc)
	tmpl, raw := templateOf(t, st.Clusters["tenant"])
	must(t, "no table", func() { tmpl.ResourceCountIs(jsii.String("AWS::DynamoDB::Table"), jsii.Number(0)) })
	env, _ := containerEnv(t, raw, "gateway")
	if env["AUTOGATE_TABLE"] != "autogate-owner" || env["AUTOGATE_CLUSTER"] != "tenant" {
		t.Errorf("tenant env: table %v cluster %v", env["AUTOGATE_TABLE"], env["AUTOGATE_CLUSTER"])
	}
	checkIAM(t, raw, "tenant", nil)
	found := false
	for _, s := range statements(raw) {
		if s.sid == "ClusterItemsOnly" {
			js, _ := json.Marshal(s.resources)
			found = true
			if !strings.Contains(string(js), ":table/autogate-owner") {
				t.Errorf("table statement resources %s: want the owner's table", js)
			}
		}
	}
	if !found {
		t.Error("no table statement")
	}
	deps := *st.Clusters["tenant"].Dependencies()
	if len(deps) != 1 || *deps[0].StackName() != "Autogate-owner" {
		t.Errorf("tenant dependencies: want Autogate-owner")
	}
}

// managerYAML is a manager block; extra is spliced in.
func managerYAML(extra string) string {
	return "manager:\n  account: \"333333333333\"\n  region: us-east-1\n" +
		"  certificateArn: arn:aws:acm:us-east-1:333333333333:certificate/0000-mgr\n" + extra
}

// TestManagerStack (14.3): the manager stack runs `autogate manager` the way
// a cluster runs its gateways: an ECS service of 2 tasks, active/standby on
// the manager's table, behind an HTTPS load balancer, with an alarm that
// notifies a topic. No cross-account role, no sts:AssumeRole anywhere.
func TestManagerStack(t *testing.T) {
	doc := managerYAML("  url: https://manager.example.com\n") + "clusters:" +
		clusterYAML("east", acctA, regionA, 2, RunnersBoth, "") + clusterYAML("west", acctB, regionB, 1, RunnersNone, "")
	_, st, _ := build(t, doc)
	if st.Manager == nil || *st.Manager.StackName() != ManagerStackName || *st.Manager.Account() != "333333333333" {
		t.Fatal("no manager stack in account 333333333333")
	}
	tmpl, raw := templateOf(t, st.Manager)
	if errs := nagErrors(t, st.Manager); len(errs) > 0 {
		t.Errorf("unsuppressed cdk-nag errors:\n%s", strings.Join(errs, "\n"))
	}
	has := func(typ string, p map[string]any) {
		t.Helper()
		must(t, "properties of "+typ, func() { tmpl.HasResourceProperties(jsii.String(typ), p) })
	}
	has("AWS::DynamoDB::Table", map[string]any{
		"TableName":                        "autogate-manager-registry",
		"KeySchema":                        assertions.Match_ArrayWith(&[]any{map[string]any{"AttributeName": "pk", "KeyType": "HASH"}}),
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
		"TimeToLiveSpecification":          map[string]any{"AttributeName": "expiresAt", "Enabled": true},
	})
	must(t, "registry retained except on create", func() {
		tmpl.HasResource(jsii.String("AWS::DynamoDB::Table"), map[string]any{"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain"})
	})
	must(t, "manager access logs retained except on create", func() {
		tmpl.HasResource(jsii.String("AWS::S3::Bucket"), map[string]any{"DeletionPolicy": "RetainExceptOnCreate"})
	})
	has("AWS::ECS::Service", map[string]any{
		"ServiceName": "manager", "DesiredCount": 2,
		"HealthCheckGracePeriodSeconds": HealthCheckGrace.Seconds(),
		"DeploymentConfiguration":       assertions.Match_ObjectLike(&map[string]any{"MinimumHealthyPercent": 100, "MaximumPercent": 200}),
		"LoadBalancers":                 []any{map[string]any{"ContainerName": "manager", "ContainerPort": 9443, "TargetGroupArn": assertions.Match_AnyValue()}},
	})
	has("AWS::ElasticLoadBalancingV2::TargetGroup", map[string]any{
		"Port": 9443, "Protocol": "HTTPS", "HealthCheckPath": "/healthz", "HealthCheckProtocol": "HTTPS",
	})
	has("AWS::ElasticLoadBalancingV2::Listener", map[string]any{
		"Port": 443, "Protocol": "HTTPS",
		"Certificates": []any{map[string]any{"CertificateArn": "arn:aws:acm:us-east-1:333333333333:certificate/0000-mgr"}},
	})
	has("AWS::ElasticLoadBalancingV2::LoadBalancer", map[string]any{
		"LoadBalancerAttributes": assertions.Match_ArrayWith(&[]any{map[string]any{"Key": "idle_timeout.timeout_seconds", "Value": fmt.Sprint(IdleTimeout().Seconds())}}),
	})
	has("AWS::CloudWatch::Alarm", map[string]any{
		"MetricName": "HealthyHostCount", "ComparisonOperator": "LessThanThreshold", "Threshold": 1,
		"AlarmActions": assertions.Match_ArrayWith(&[]any{map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("AlarmTopic"))}}),
	})
	must(t, "topic", func() { tmpl.ResourceCountIs(jsii.String("AWS::SNS::Topic"), jsii.Number(1)) })

	env, secrets := containerEnv(t, raw, "manager")
	for k, want := range map[string]any{
		"AUTOGATE_MANAGER_STORE": "dynamodb", "AUTOGATE_MANAGER_TABLE": "autogate-manager-registry",
		"AUTOGATE_MANAGER_LISTEN": ":9443",
	} {
		if env[k] != want {
			t.Errorf("manager env %s: got %v, want %v", k, env[k], want)
		}
	}
	if len(secrets) != 0 {
		t.Errorf("manager secrets: got %v, want none", secrets)
	}
	// The manager's items live under its own namespace.
	checkIAM(t, raw, ManagerNamespace, nil)
	for _, s := range statements(raw) {
		if slices.Contains(s.actions, "sts:AssumeRole") {
			t.Errorf("manager policy %s grants sts:AssumeRole", s.policy)
		}
	}
	for _, r := range resources(raw, "AWS::IAM::Role") {
		if n, _ := props(r)["RoleName"].(string); strings.HasPrefix(n, "autogate-manager-access-") {
			t.Errorf("cross-account access role %s still created", n)
		}
	}

	// The cluster side (14.2): the gateways get the URL and the cluster's
	// credential as an ECS secret from Secrets Manager, and no role to
	// assume.
	for _, id := range []string{"east", "west"} {
		_, craw := templateOf(t, st.Clusters[id])
		for _, s := range statements(craw) {
			if slices.Contains(s.actions, "sts:AssumeRole") {
				t.Errorf("%s: gateway may still assume %v", id, s.resources)
			}
		}
		env, secrets := containerEnv(t, craw, "gateway")
		if env["AUTOGATE_MANAGER_URL"] != "https://manager.example.com" {
			t.Errorf("%s: AUTOGATE_MANAGER_URL = %v", id, env["AUTOGATE_MANAGER_URL"])
		}
		if _, ok := env[droppedRoleARN]; ok {
			t.Errorf("%s: %s is still set", id, droppedRoleARN)
		}
		if _, ok := env["AUTOGATE_MANAGER_CREDENTIAL"]; ok || !slices.Contains(secrets, "AUTOGATE_MANAGER_CREDENTIAL") {
			t.Errorf("%s: the credential must be an ECS secret only: in env %v, secrets %v", id, ok, secrets)
		}
		js, _ := json.Marshal(craw)
		if !strings.Contains(string(js), ":secret:autogate/"+id+"/manager-credential") {
			t.Errorf("%s: the credential secret is not autogate/%s/manager-credential", id, id)
		}
	}
}

// TestManagerURLWithoutURL: with a manager that has neither url nor
// domainName the gateways get no manager settings (and so do not crash
// looking for a credential).
func TestManagerURLWithoutURL(t *testing.T) {
	_, st, _ := build(t, managerYAML("")+"clusters:"+clusterYAML("solo", acctA, regionA, 1, RunnersNone, ""))
	_, craw := templateOf(t, st.Clusters["solo"])
	env, secrets := containerEnv(t, craw, "gateway")
	if _, ok := env["AUTOGATE_MANAGER_URL"]; ok || slices.Contains(secrets, "AUTOGATE_MANAGER_CREDENTIAL") {
		t.Errorf("manager settings without a manager URL: env %v secrets %v", env, secrets)
	}
	// domainName alone gives https://<domainName>.
	_, st, _ = build(t, managerYAML("  domainName: mgr.example.com\n")+"clusters:"+clusterYAML("solo", acctA, regionA, 1, RunnersNone, ""))
	_, craw = templateOf(t, st.Clusters["solo"])
	env, secrets = containerEnv(t, craw, "gateway")
	if env["AUTOGATE_MANAGER_URL"] != "https://mgr.example.com" || !slices.Contains(secrets, "AUTOGATE_MANAGER_CREDENTIAL") {
		t.Errorf("manager from domainName: env %v secrets %v", env["AUTOGATE_MANAGER_URL"], secrets)
	}
}

// TestImageSources: the default image is built from the Dockerfile as one
// asset shared by the services and the Lambda runner; a prebuilt ECR image
// is pulled from its repository.
func TestImageSources(t *testing.T) {
	t.Run("asset", func(t *testing.T) {
		_, st, _ := build(t, "clusters:"+clusterYAML("img", acctA, regionA, 1, RunnersBoth, ""))
		_, raw := templateOf(t, st.Clusters["img"])
		js, _ := json.Marshal(raw)
		if n := strings.Count(string(js), "cdk-hnb659fds-container-assets-"+acctA+"-"+regionA+":"); n < 3 {
			t.Errorf("asset image referenced %d times, want the gateway, runner and Lambda", n)
		}
	})
	t.Run("prebuilt ECR", func(t *testing.T) {
		img := acctA + ".dkr.ecr.us-east-1.amazonaws.com/autogate:v1.2.3"
		_, st, _ := build(t, "clusters:"+clusterYAML("prb", acctA, regionA, 1, RunnersBoth, "    image: "+img+"\n"))
		_, raw := templateOf(t, st.Clusters["prb"])
		js, _ := json.Marshal(raw)
		if strings.Contains(string(js), "container-assets") {
			t.Error("prebuilt image: template still references the CDK asset repository")
		}
		if !strings.Contains(string(js), "/autogate:v1.2.3") {
			t.Error("prebuilt image: template does not reference autogate:v1.2.3")
		}
		checkIAM(t, raw, "prb", nil)
	})
}

// TestNagFailsUnsuppressed proves the checks run: a non-compliant resource
// added to a cluster stack yields AwsSolutions errors (which make synth
// exit non-zero).
func TestNagFailsUnsuppressed(t *testing.T) {
	_, st, _ := build(t, "clusters:"+clusterYAML("nag", acctA, regionA, 1, RunnersNone, ""))
	must(t, "add queue", func() { awssqs.NewQueue(st.Clusters["nag"], jsii.String("Careless"), nil) })
	errs := nagErrors(t, st.Clusters["nag"])
	if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "AwsSolutions-SQS3") }) {
		t.Errorf("want AwsSolutions-SQS3 (queue without a DLQ) on the careless queue, got:\n%s", strings.Join(errs, "\n"))
	}
}

// TestManagerECSExec: ecsExec on the manager turns ECS Exec on for its
// tasks (how the first admin password is read) with cdk-nag clean.
func TestManagerECSExec(t *testing.T) {
	_, st, _ := build(t, managerYAML("  ecsExec: true\n")+"clusters:"+clusterYAML("xx", acctA, regionA, 1, RunnersNone, ""))
	tmpl, _ := templateOf(t, st.Manager)
	if errs := nagErrors(t, st.Manager); len(errs) > 0 {
		t.Errorf("unsuppressed cdk-nag errors:\n%s", strings.Join(errs, "\n"))
	}
	must(t, "exec on", func() {
		tmpl.HasResourceProperties(jsii.String("AWS::ECS::Service"), map[string]any{"ServiceName": "manager", "EnableExecuteCommand": true})
	})
}

// TestTableDeletionProtection (14.4): deletion protection is the operator's
// switch (off by default, so a failed first create rolls back cleanly), and
// the table is retained on update and delete either way.
func TestTableDeletionProtection(t *testing.T) {
	for _, on := range []bool{false, true} {
		extra := fmt.Sprintf("    tableDeletionProtection: %v\n", on)
		_, st, _ := build(t, managerYAML(extra[2:])+"clusters:"+clusterYAML("dp", acctA, regionA, 1, RunnersNone, extra))
		for _, stack := range []awscdk.Stack{st.Clusters["dp"], st.Manager} {
			tmpl, _ := templateOf(t, stack)
			must(t, fmt.Sprintf("%s protection %v", *stack.StackName(), on), func() {
				tmpl.HasResource(jsii.String("AWS::DynamoDB::Table"), map[string]any{
					"DeletionPolicy": "RetainExceptOnCreate", "UpdateReplacePolicy": "Retain",
					"Properties": assertions.Match_ObjectLike(&map[string]any{"DeletionProtectionEnabled": on}),
				})
			})
		}
	}
}
