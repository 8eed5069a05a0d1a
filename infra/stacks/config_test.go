package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// validCluster is a minimal valid cluster entry; tests splice fields in.
const validCluster = `
  - id: c1
    account: "111111111111"
    region: us-east-1
    certificateArn: arn:aws:acm:us-east-1:111111111111:certificate/abc-123
    runners: ecs
`

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte("clusters:" + validCluster))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	c := cfg.Clusters[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"gateways", *c.Gateways, 2},
		{"natGateways", *c.NATGateways, 1},
		{"architecture", c.Architecture, ArchAMD64},
		{"maxServiceTimeout", c.MaxServiceTimeout.D(), 10 * time.Minute},
		{"visibility timeout", c.VisibilityTimeout(), 12 * time.Minute},
		{"maxReceiveCount", c.MaxReceiveCount, 3},
		{"managerCredentialSecret", c.ManagerCredentialSecret, "autogate/c1/manager-credential"},
		{"logRetentionDays", c.LogRetentionDays, 30},
		{"secretKeySecret (legacy key: none, the KMS key seals)", c.SecretKeySecret, ""},
		{"allowedCidrs", strings.Join(c.AllowedCIDRs, ","), "0.0.0.0/0"},
		{"ecsRunner.minTasks", c.ECSRunner.MinTasks, 1},
		{"ecsRunner.maxTasks", c.ECSRunner.MaxTasks, 10},
		{"ecsRunner.backlogPerTask", c.ECSRunner.BacklogPerTask, c.ECSRunner.Concurrency},
		{"gateway.memory", c.Gateway.Memory, 1024},
		{"table", c.TableName(), "autogate-c1"},
	}
	for _, tc := range checks {
		if fmt.Sprint(tc.got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestVisibilityTimeoutFollowsLongestRun(t *testing.T) {
	tests := []struct {
		runners string
		timeout string
		want    time.Duration
	}{
		{RunnersECS, "10m", 12 * time.Minute},
		{RunnersECS, "2h", 2*time.Hour + 2*time.Minute},
		// With the Lambda runner: six times the Lambda timeout (service
		// timeout + 30s), AWS's guidance for Lambda on SQS (14.11).
		{RunnersLambda, "10m", 6 * (10*time.Minute + 30*time.Second)},
		{RunnersBoth, "14m30s", 6 * 15 * time.Minute},
		{RunnersLambda, "10s", 6 * 40 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.runners+"/"+tc.timeout, func(t *testing.T) {
			doc := strings.Replace("clusters:"+validCluster, "runners: ecs", "runners: "+tc.runners+"\n    maxServiceTimeout: "+tc.timeout, 1)
			cfg, err := ParseConfig([]byte(doc))
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if got := cfg.Clusters[0].VisibilityTimeout(); got != tc.want {
				t.Errorf("visibility timeout: got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestParseConfigErrors feeds bad clusters files and checks that the error
// names the offending field by its path in the file.
func TestParseConfigErrors(t *testing.T) {
	with := func(extra string) string { return "clusters:" + validCluster + extra }
	replace := func(old, new string) string { return strings.Replace("clusters:"+validCluster, old, new, 1) }
	second := func(fields string) string {
		return "clusters:" + validCluster + "  - id: c2\n" + fields
	}
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error, the field path first
	}{
		{"empty file", "", []string{"clusters", "empty"}},
		{"no clusters", "clusters: []\n", []string{"clusters: list at least one cluster"}},
		{"yaml syntax", "clusters: [\n", []string{"yaml"}},
		{"unknown top-level field", "clusterz: []\n", []string{"clusterz", "not found", "line 1"}},
		{"unknown cluster field", with("    gatewayz: 2\n"), []string{"clusters[0].gatewayz", "not found"}},
		{"unknown nested field", with("    ecsRunner:\n      maxTask: 3\n"), []string{"clusters[0].ecsRunner.maxTask", "not found"}},
		{"wrong type", replace("runners: ecs", "runners: ecs\n    gateways: two"), []string{"clusters[0].gateways", "cannot unmarshal"}},
		{"bad duration", with("    maxServiceTimeout: ten minutes\n"), []string{"clusters[0].maxServiceTimeout", "not a duration"}},
		{"missing id", replace("id: c1", "id: \"\""), []string{"clusters[0].id: is required"}},
		{"bad id", replace("id: c1", "id: Prod_1"), []string{"clusters[0].id", "lower-case"}},
		{"reserved id", replace("id: c1", "id: manager"), []string{"clusters[0].id", "reserved"}},
		{"duplicate id", with("  - id: c1\n    account: \"111111111111\"\n    region: us-west-2\n    certificateArn: arn:aws:acm:us-west-2:111111111111:certificate/x\n    runners: none\n"), []string{"clusters[1].id", "already used"}},
		{"short account", replace(`account: "111111111111"`, "account: 12345"), []string{"clusters[0].account", "12-digit"}},
		{"bad region", replace("region: us-east-1", "region: Virginia"), []string{"clusters[0].region", "AWS region"}},
		{"missing runners", replace("    runners: ecs\n", ""), []string{"clusters[0].runners: is required"}},
		{"bad runners", replace("runners: ecs", "runners: k8s"), []string{"clusters[0].runners", "none, ecs, lambda, both"}},
		{"zero gateways", with("    gateways: 0\n"), []string{"clusters[0].gateways", "from 1 to 10"}},
		{"missing certificate", replace("    certificateArn: arn:aws:acm:us-east-1:111111111111:certificate/abc-123\n", ""), []string{"clusters[0].certificateArn: is required"}},
		{"certificate in another region", replace("acm:us-east-1", "acm:eu-west-1"), []string{"clusters[0].certificateArn", "account and region"}},
		{"bad architecture", with("    architecture: x86\n"), []string{"clusters[0].architecture", "amd64 or arm64"}},
		{"bad nat gateways", with("    natGateways: 3\n"), []string{"clusters[0].natGateways"}},
		{"bad vpc cidr", with("    vpcCidr: 10.0.0.0/8\n"), []string{"clusters[0].vpcCidr", "/16 to /20"}},
		{"bad allowed cidr", with("    allowedCidrs: [\"10.0.0.0/33\"]\n"), []string{"clusters[0].allowedCidrs[0]"}},
		{"one zone", with("    availabilityZones: [us-east-1a]\n"), []string{"clusters[0].availabilityZones", "at least two"}},
		{"zone of other region", with("    availabilityZones: [us-east-1a, us-west-2b]\n"), []string{"clusters[0].availabilityZones[1]"}},
		{"bad retention", with("    logRetentionDays: 10\n"), []string{"clusters[0].logRetentionDays"}},
		{"bad max receive", with("    maxReceiveCount: 1001\n"), []string{"clusters[0].maxReceiveCount"}},
		{"lambda timeout too long", replace("runners: ecs", "runners: lambda\n    maxServiceTimeout: 20m"), []string{"clusters[0].maxServiceTimeout", "Lambda"}},
		{"sqs visibility too long", with("    maxServiceTimeout: 12h\n"), []string{"clusters[0].maxServiceTimeout", "12h"}},
		{"lambda with non-ECR image", replace("runners: ecs", "runners: both\n    image: ghcr.io/autogate/autogate:1.0"), []string{"clusters[0].image", "ECR"}},
		{"lambda with ECR image of other region", replace("runners: ecs", "runners: lambda\n    image: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/autogate:1.0"), []string{"clusters[0].image", "region"}},
		{"runner min tasks", with("    ecsRunner: {minTasks: -1}\n"), []string{"clusters[0].ecsRunner.minTasks", "at least 1"}},
		{"runner max below min", with("    ecsRunner: {minTasks: 5, maxTasks: 2}\n"), []string{"clusters[0].ecsRunner.maxTasks"}},
		{"runner cpu", with("    ecsRunner: {cpu: 300}\n"), []string{"clusters[0].ecsRunner.cpu", "Fargate"}},
		{"gateway memory", with("    gateway: {cpu: 256, memory: 4096}\n"), []string{"clusters[0].gateway.memory", "512 to 2048"}},
		{"lambda concurrency", replace("runners: ecs", "runners: lambda\n    lambdaRunner: {maxConcurrency: 1}"), []string{"clusters[0].lambdaRunner.maxConcurrency"}},
		{"lambda batch", replace("runners: ecs", "runners: lambda\n    lambdaRunner: {batchSize: 11}"), []string{"clusters[0].lambdaRunner.batchSize"}},
		{"insights off with ecs runners", with("    containerInsights: false\n"), []string{"clusters[0].containerInsights"}},
		{"alarm topic region", with("    alarmTopicArn: arn:aws:sns:eu-west-1:111111111111:alarms\n"), []string{"clusters[0].alarmTopicArn", "region"}},
		{"shared table unknown", with("    sharedTable: nope\n"), []string{"clusters[0].sharedTable", "no configured cluster"}},
		{"shared table itself", with("    sharedTable: c1\n"), []string{"clusters[0].sharedTable", "itself"}},
		{"shared table other region", second("    account: \"111111111111\"\n    region: eu-west-1\n    certificateArn: arn:aws:acm:eu-west-1:111111111111:certificate/x\n    runners: none\n    sharedTable: c1\n"), []string{"clusters[1].sharedTable", "same account and region"}},
		{"manager account", "manager:\n  account: \"123\"\n  region: us-east-1\nclusters:" + validCluster, []string{"manager.account", "12-digit"}},
		{"manager url", "manager:\n  account: \"111111111111\"\n  region: us-east-1\n  url: http://x\nclusters:" + validCluster, []string{"manager.url", "https://"}},
		// 14.2: one URL form, https://host[:port], as the binary's tunnel dials it.
		{"manager url wss", "manager:\n  account: \"111111111111\"\n  region: us-east-1\n  url: wss://m.example.com\nclusters:" + validCluster, []string{"manager.url", "https://host"}},
		{"manager url no host", "manager:\n  account: \"111111111111\"\n  region: us-east-1\n  url: \"https://\"\nclusters:" + validCluster, []string{"manager.url"}},
		{"manager url path", "manager:\n  account: \"111111111111\"\n  region: us-east-1\n  url: https://m.example.com/x\nclusters:" + validCluster, []string{"manager.url", "no path"}},
		{"manager without certificate", "manager:\n  account: \"111111111111\"\n  region: us-east-1\nclusters:" + validCluster, []string{"manager.certificateArn: is required"}},
		{"manager zero tasks", "manager:\n  account: \"111111111111\"\n  region: us-east-1\n  managers: 0\nclusters:" + validCluster, []string{"manager.managers"}},
		// 14.8: no NAT gateway leaves a Lambda in a VPC without a route.
		{"lambda without nat", replace("runners: ecs", "runners: lambda\n    natGateways: 0"), []string{"clusters[0].natGateways", "Lambda"}},
		// 14.11: at least five receives with the Lambda runner.
		{"lambda receive count", replace("runners: ecs", "runners: both\n    maxReceiveCount: 3"), []string{"clusters[0].maxReceiveCount", "at least 5"}},
		// 14.12
		{"bad endpoint url", with("    awsEndpointUrl: localstack:4566\n"), []string{"clusters[0].awsEndpointUrl"}},
		{"bad credential secret", with("    managerCredentialSecret: \"a b\"\n"), []string{"clusters[0].managerCredentialSecret"}},
		{"several errors at once", replace("region: us-east-1", "region: nowhere\n    gateways: 0"), []string{"clusters[0].region", "clusters[0].gateways"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.doc))
			if err == nil {
				t.Fatalf("got no error, want one mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q: want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestShippedConfig checks the repository's clusters file: it is valid, and
// every cluster can be synthesized offline (its availability zones are in
// cdk.json's context or in the cluster entry).
func TestShippedConfig(t *testing.T) {
	cfg, err := LoadConfig("../clusters.yaml")
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	data, err := os.ReadFile("../../cdk.json")
	if err != nil {
		t.Fatalf("read cdk.json: %v", err)
	}
	var cdkJSON struct {
		App     string         `json:"app"`
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(data, &cdkJSON); err != nil {
		t.Fatalf("cdk.json: %v", err)
	}
	if cdkJSON.App != "cd infra && go run ." {
		t.Errorf("cdk.json app: got %q, want %q", cdkJSON.App, "cd infra && go run .")
	}
	for i, c := range cfg.Clusters {
		key := AZContextKey(c.Account, c.Region)
		if _, ok := cdkJSON.Context[key]; !ok && len(c.AvailabilityZones) == 0 {
			t.Errorf("clusters[%d] (%s): cdk.json has no context %q and the cluster sets no availabilityZones: offline synth would fail", i, c.ID, key)
		}
	}
}
