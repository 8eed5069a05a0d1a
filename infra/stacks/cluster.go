package stacks

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapplicationautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecrassets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Ports and paths of the autogate binary (see DESIGN.md).
const (
	// gatewayPort serves the API, /healthz and /readyz over HTTPS (see
	// [newFronted] for the TLS between the load balancer and the tasks).
	gatewayPort = 8443
	// livePath answers 200 on every live gateway or manager, active or
	// standby (a standby forwards requests to the active), so the load
	// balancer may send traffic to any of them. /readyz stays 200 on the
	// active only, for operators.
	livePath = "/healthz"
	// lambdaEntrypoint is the Lambda runner binary inside the image.
	lambdaEntrypoint = "/usr/local/bin/autogate-lambda-runner"
)

// HealthCheckGrace is how long ECS ignores a new task's health check: its
// start-up (table check, first certificate) and two passing checks.
const HealthCheckGrace = 60 * time.Second

// StopTimeout is the container stop timeout of the nodes that run services
// (the ECS runner, and the gateway, which runs them itself without
// runners): Fargate's maximum, so the longest ECS allows between SIGTERM
// and SIGKILL. It cannot keep a 10-30 min service alive: scale-in
// protection does that (a runner protects its task while it holds work, so
// scale-in never picks it); the stop timeout only covers a task that is
// stopped anyway (a deployment, a failed health check, a protection that
// lapsed).
const StopTimeout = 120 * time.Second

// KillMargin is the part of [StopTimeout] kept for the kill path once the
// shutdown grace is over: killing the services' process groups (SIGTERM,
// then SIGKILL after the executor's wait delay), recording their attempts
// lost, handing the messages back to the queue and leaving the node list.
const KillMargin = 30 * time.Second

// ShutdownGrace is AUTOGATE_SHUTDOWN_GRACE of the nodes that run services:
// how long SIGTERM lets running services finish before they are killed,
// derived so the kill path ends before ECS sends SIGKILL.
const ShutdownGrace = StopTimeout - KillMargin

// KMSContextCluster is the encryption-context key naming the cluster in
// every KMS call of the binary's keyring (internal/secret/kms): the roles'
// KMS grants are conditioned on it.
const KMSContextCluster = "autogate:cluster"

// KeyAlias is the alias of a cluster's KMS key.
func KeyAlias(clusterID string) string { return "alias/autogate-" + clusterID }

// NoAttestationsEnv turns BuildKit's default provenance attestation off
// for the image build of `cdk deploy`.
const NoAttestationsEnv = "BUILDX_NO_DEFAULT_ATTESTATIONS"

// ImageExcludes are left out of the image build context (and of the asset
// hash and the copy staged in cdk.out), in .dockerignore syntax, on top of
// what the repository's .dockerignore lists.
var ImageExcludes = []string{".git", "**/node_modules", "**/cdk.out", "infra", "**/.cache", "bin"}

// ClusterProps configures a [Cluster].
type ClusterProps struct {
	// Config is the validated cluster configuration.
	Config *ClusterConfig
	// Manager is the manager the gateways connect to (nil: none).
	Manager *ManagerConfig
	// RepoRoot is the Docker build context when Config.Image is empty.
	RepoRoot string
}

// Cluster is one Autogate cluster: table (or a shared one), work queue and
// dead-letter queue (when it has runners), VPC, ECS cluster, gateway service
// behind an HTTPS load balancer, runners, log groups, alarms and IAM.
type Cluster struct {
	// Scope is the construct everything of the cluster is created under.
	Scope constructs.Construct

	Config       *ClusterConfig
	Table        awsdynamodb.ITable
	Queue        awssqs.Queue // nil without runners
	DLQ          awssqs.Queue // nil without runners
	VPC          awsec2.Vpc
	ECSCluster   awsecs.Cluster
	LoadBalancer awselasticloadbalancingv2.ApplicationLoadBalancer
	TargetGroup  awselasticloadbalancingv2.ApplicationTargetGroup
	Gateway      awsecs.FargateService
	GatewayRole  awsiam.Role
	Runner       awsecs.FargateService // nil without ECS runners
	RunnerRole   awsiam.Role           // nil without ECS runners
	Lambda       awslambda.Function    // nil without the Lambda runner
	LambdaRole   awsiam.Role           // nil without the Lambda runner
	Alarms       []awscloudwatch.Alarm
	// Key wraps the data keys of the cluster's stored secrets.
	Key awskms.Key

	secret      awssecretsmanager.ISecret
	net         *network
	topic       awssns.ITopic
	gatewayLogs awslogs.LogGroup
	retention   awslogs.RetentionDays
	ecsImage    awsecs.ContainerImage
	lambdaCode  func(entrypoint string) awslambda.DockerImageCode
}

// NewCluster builds the cluster under scope, which must be inside a stack
// whose account and region are the cluster's.
func NewCluster(scope constructs.Construct, id string, props *ClusterProps) *Cluster {
	cfg := props.Config
	c := &Cluster{Scope: constructs.NewConstruct(scope, jsii.String(id)), Config: cfg}
	c.retention = retentionDays[cfg.LogRetentionDays]
	// The KMS key seals stored secrets; the legacy secret key, only when
	// the cluster config names one, still opens values sealed before it
	// (the binary needs one or the other, and takes both).
	if cfg.SecretKeySecret != "" {
		c.secret = awssecretsmanager.Secret_FromSecretNameV2(c.Scope, jsii.String("SecretKey"), jsii.String(cfg.SecretKeySecret))
	}

	c.addTable()
	c.addKey()
	if cfg.HasQueue() {
		c.addQueues()
	}
	c.net = newNetwork(c.Scope, cfg.VPCCIDR, *cfg.NATGateways, cfg.AvailabilityZones, c.retention)
	c.VPC = c.net.VPC
	c.addImage(props.RepoRoot)
	c.ECSCluster = newECSCluster(c.Scope, "autogate-"+cfg.ID, c.VPC, *cfg.ContainerInsights, cfg.ECSExec, c.retention)
	if !*cfg.ContainerInsights {
		suppress(c.ECSCluster, "AwsSolutions-ECS4",
			"Container Insights is turned off in the cluster config (containerInsights: false) to save its metric charges; the cluster has no ECS runners, whose scaling needs it.")
	}
	c.topic = alarmTopic(c.Scope, cfg.AlarmTopicARN, "autogate-"+cfg.ID+"-alarms")
	c.addGateway(props.Manager)
	if cfg.HasECSRunner() {
		c.addECSRunner()
	}
	if cfg.HasLambdaRunner() {
		c.addLambdaRunner()
	}
	c.addAlarms()
	c.addOutputs()
	return c
}

func containerInsights(on bool) awsecs.ContainerInsights {
	if on {
		return awsecs.ContainerInsights_ENABLED
	}
	return awsecs.ContainerInsights_DISABLED
}

// addTable creates the cluster's table or references the shared one.
func (c *Cluster) addTable() {
	cfg := c.Config
	if !cfg.OwnsTable() {
		c.Table = awsdynamodb.Table_FromTableName(c.Scope, jsii.String("Table"), jsii.String(cfg.TableName()))
		return
	}
	table := awsdynamodb.NewTable(c.Scope, jsii.String("Table"), &awsdynamodb.TableProps{
		TableName:           jsii.String(cfg.TableName()),
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute: jsii.String("expiresAt"),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		// Off until the operator turns it on: CloudFormation cannot delete
		// a protected table when the first create rolls back.
		DeletionProtection: jsii.Bool(cfg.TableDeletionProtection),
		// The table holds every resource and execution record of the
		// cluster (and of clusters sharing it): never deleted with the
		// stack, but not left behind by a first create that rolls back
		// (its fixed name would make the retry fail with "already exists").
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
	})
	addStoreIndexes(table)
	c.Table = table
}

// addKey creates the cluster's KMS key, which wraps the data keys of its
// stored secrets (envelope encryption, internal/secret/kms). It outlives the
// stack like the table whose secrets it opens, but not a first create that
// rolls back. Its alias is destroyed with the stack, so a new stack of the
// same cluster can take it.
func (c *Cluster) addKey() {
	cfg := c.Config
	c.Key = awskms.NewKey(c.Scope, jsii.String("SecretsKey"), &awskms.KeyProps{
		Alias:             jsii.String(KeyAlias(cfg.ID)),
		Description:       jsii.String("Autogate cluster " + cfg.ID + ": wraps the data keys of stored secrets"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
	})
}

// grantKey lets a node's role make the KMS calls its keyring makes at run
// time: GenerateDataKey (the first process to open the keyring creates its
// record, whichever node that is) and Decrypt (unwrap a data key), only on
// the cluster's key and only with an encryption context naming the cluster.
// ReEncrypt is the operator's `autogate rotate secret-key`, not a node's.
func (c *Cluster) grantKey(role awsiam.Role) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("SecretDataKeys"),
		Actions:   jsii.Strings("kms:GenerateDataKey", "kms:Decrypt"),
		Resources: jsii.Strings(*c.Key.KeyArn()),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"kms:EncryptionContext:" + KMSContextCluster: c.Config.ID},
		},
	}))
}

// keyEnv adds what a node's binary reads to open the cluster's secrets:
// the KMS key, and the legacy key's ECS secret when there is one.
func (c *Cluster) keyEnv(env map[string]*string, secrets map[string]awsecs.Secret) {
	env["AUTOGATE_KMS_KEY_ID"] = c.Key.KeyArn()
	if c.secret != nil && secrets != nil {
		secrets["AUTOGATE_SECRET_KEY"] = awsecs.Secret_FromSecretsManager(c.secret, nil)
	}
}

// addQueues creates the work queue and its dead-letter queue.
func (c *Cluster) addQueues() {
	cfg := c.Config
	c.DLQ = awssqs.NewQueue(c.Scope, jsii.String("DeadLetterQueue"), &awssqs.QueueProps{
		QueueName:       jsii.String("autogate-" + cfg.ID + "-dlq"),
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	c.Queue = awssqs.NewQueue(c.Scope, jsii.String("WorkQueue"), &awssqs.QueueProps{
		QueueName:         jsii.String("autogate-" + cfg.ID + "-work"),
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		VisibilityTimeout: seconds(cfg.VisibilityTimeout()),
		RetentionPeriod:   awscdk.Duration_Days(jsii.Number(4)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			Queue:           c.DLQ,
			MaxReceiveCount: jsii.Number(float64(cfg.MaxReceiveCount)),
		},
	})
}

// addImage sets the image of the services and the Lambda runner.
func (c *Cluster) addImage(repoRoot string) {
	c.ecsImage, c.lambdaCode = newImage(c.Scope, c.Config.Image, c.Config.Architecture, repoRoot, c.Config.HasLambdaRunner())
}

// newImage is the image of a stack's services and Lambda runner: the
// repository's Dockerfile built as one asset, or a prebuilt image
// (lambdaCode is nil for a prebuilt image outside ECR, which validation
// refuses with the Lambda runner).
func newImage(scope constructs.Construct, image, arch, repoRoot string, lambda bool) (ecsImage awsecs.ContainerImage, lambdaCode func(entrypoint string) awslambda.DockerImageCode) {
	if image == "" {
		asset := awsecrassets.NewDockerImageAsset(scope, jsii.String("Image"), &awsecrassets.DockerImageAssetProps{
			Directory: jsii.String(repoRoot),
			Exclude:   jsii.Strings(ImageExcludes...),
			Platform:  assetPlatform(arch),
		})
		// Lambda rejects an OCI image index, which BuildKit pushes when it
		// attaches provenance or SBOM attestations (provenance is on by
		// default). The asset has no flag for that, so the deploy turns
		// them off for the docker build the CDK CLI runs: `make cdk-deploy`
		// sets BUILDX_NO_DEFAULT_ATTESTATIONS=1 (and SBOM is off unless
		// asked for); the asset is built for one platform only.
		if lambda && os.Getenv(NoAttestationsEnv) == "" {
			awscdk.Annotations_Of(asset).AddWarningV2(jsii.String("autogate:attestations"), jsii.String(
				"The Lambda runner needs a single-manifest image: deploy with "+NoAttestationsEnv+"=1 (make cdk-deploy sets it), or Lambda rejects the image index BuildKit's provenance attestation makes"))
		}
		return awsecs.ContainerImage_FromDockerImageAsset(asset), func(entrypoint string) awslambda.DockerImageCode {
			return awslambda.DockerImageCode_FromEcr(asset.Repository(), &awslambda.EcrImageCodeProps{
				TagOrDigest: asset.ImageTag(),
				Entrypoint:  jsii.Strings(entrypoint),
			})
		}
	}
	img, isECR := ParseECRImage(image)
	if !isECR {
		return awsecs.ContainerImage_FromRegistry(jsii.String(image), nil), nil
	}
	repo := awsecr.Repository_FromRepositoryAttributes(scope, jsii.String("ImageRepository"), &awsecr.RepositoryAttributes{
		RepositoryArn:  jsii.String(fmt.Sprintf("arn:%s:ecr:%s:%s:repository/%s", partition(img.Region), img.Region, img.Account, img.Repository)),
		RepositoryName: jsii.String(img.Repository),
	})
	ref := img.Tag
	if img.Digest != "" {
		ref = img.Digest
	}
	return awsecs.ContainerImage_FromEcrRepository(repo, jsii.String(ref)), func(entrypoint string) awslambda.DockerImageCode {
		return awslambda.DockerImageCode_FromEcr(repo, &awslambda.EcrImageCodeProps{
			TagOrDigest: jsii.String(ref),
			Entrypoint:  jsii.Strings(entrypoint),
		})
	}
}

func assetPlatform(arch string) awsecrassets.Platform {
	if arch == ArchARM64 {
		return awsecrassets.Platform_LINUX_ARM64()
	}
	return awsecrassets.Platform_LINUX_AMD64()
}

func runtimePlatform(arch string) *awsecs.RuntimePlatform {
	cpu := awsecs.CpuArchitecture_X86_64()
	if arch == ArchARM64 {
		cpu = awsecs.CpuArchitecture_ARM64()
	}
	return &awsecs.RuntimePlatform{CpuArchitecture: cpu, OperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX()}
}

// baseEnv is the environment every node of the cluster shares. Each node
// adds only what its binary reads (TestEnvMatchesProduct holds the names
// against the product's source).
func (c *Cluster) baseEnv() map[string]*string {
	cfg := c.Config
	env := map[string]*string{
		"AUTOGATE_CLUSTER": jsii.String(cfg.ID),
		"AUTOGATE_TABLE":   jsii.String(cfg.TableName()),
		"AWS_REGION":       jsii.String(cfg.Region),
	}
	if c.Queue != nil {
		env["AUTOGATE_QUEUE_URL"] = c.Queue.QueueUrl()
	}
	if cfg.AWSEndpointURL != "" {
		env["AWS_ENDPOINT_URL"] = jsii.String(cfg.AWSEndpointURL)
	}
	return env
}

func (c *Cluster) newLogGroup(id string) awslogs.LogGroup {
	return awslogs.NewLogGroup(c.Scope, jsii.String(id), &awslogs.LogGroupProps{
		Retention:     c.retention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
}

// addGateway creates the gateway service, its load balancer and its role.
func (c *Cluster) addGateway(mgr *ManagerConfig) {
	cfg := c.Config
	c.GatewayRole = newTaskRole(c.Scope, "GatewayTaskRole", GatewayRoleName(cfg.ID),
		"Autogate gateway tasks of cluster "+cfg.ID, cfg.Account, cfg.Region)
	grantTable(c.GatewayRole, *c.Table.TableArn(), cfg.ID)
	c.grantKey(c.GatewayRole)
	if c.Queue != nil {
		// Enqueue, and read the depth for the metrics.
		c.GatewayRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("EnqueueWork"),
			Actions:   jsii.Strings("sqs:SendMessage", "sqs:GetQueueAttributes"),
			Resources: jsii.Strings(*c.Queue.QueueArn()),
		}))
		// Redrive moves messages by hand (receive from the DLQ, send to the
		// work queue, delete), and reads the DLQ's depth.
		c.GatewayRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("RedriveDeadLetters"),
			Actions: jsii.Strings("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
				"sqs:GetQueueAttributes"),
			Resources: jsii.Strings(*c.DLQ.QueueArn()),
		}))
	}

	env := c.baseEnv()
	env["AUTOGATE_STORE"] = jsii.String("dynamodb")
	env["AUTOGATE_EXECUTION"] = jsii.String(executionMode(cfg))
	// The gateway refuses services declaring a longer timeout: the queue's
	// visibility and the Lambda timeout are sized from it.
	env["AUTOGATE_MAX_SERVICE_TIMEOUT"] = jsii.String(cfg.MaxServiceTimeout.D().String())
	env["AUTOGATE_LISTEN"] = jsii.String(fmt.Sprintf(":%d", gatewayPort))
	if c.DLQ != nil {
		env["AUTOGATE_DLQ_URL"] = c.DLQ.QueueUrl()
	}
	env["AUTOGATE_SHUTDOWN_GRACE"] = jsii.String(ShutdownGrace.String())
	// The active writes Autogate/ActiveHolder, the no-active-gateway alarm's metric.
	env["AUTOGATE_EMF_METRICS"] = jsii.String("true")
	secrets := map[string]awsecs.Secret{}
	c.keyEnv(env, secrets)
	if mgr != nil && mgr.ManagerURL() != "" {
		// The cluster's credential for the manager reaches the gateways as
		// an ECS secret, like the secret key; the URL is validated the way
		// the binary's tunnel connector checks it (ValidateManagerURL).
		env["AUTOGATE_MANAGER_URL"] = jsii.String(mgr.ManagerURL())
		cred := awssecretsmanager.Secret_FromSecretNameV2(c.Scope, jsii.String("ManagerCredential"), jsii.String(cfg.ManagerCredentialSecret))
		secrets["AUTOGATE_MANAGER_CREDENTIAL"] = awsecs.Secret_FromSecretsManager(cred, nil)
	}
	f := newFronted(c.Scope, &frontedProps{
		Name: "gateway", Describe: "gateways of " + cfg.ID, Net: c.net, Cluster: c.ECSCluster,
		Image: c.ecsImage, Role: c.GatewayRole, Size: cfg.Gateway, Arch: cfg.Architecture,
		Command: []string{"server"}, Env: env, Secrets: secrets, Port: gatewayPort, Count: *cfg.Gateways,
		StopTimeout: StopTimeout,
		HealthPath:  livePath, Internal: cfg.Internal, AllowedCIDRs: cfg.AllowedCIDRs, CertARN: cfg.CertificateARN,
		Retention: c.retention, LogDays: cfg.LogRetentionDays,
		// ECS Exec: how an operator reads the first admin password (see
		// README.md, "Deploying a cluster to AWS"); off unless the cluster
		// config turns it on.
		ECSExec: cfg.ECSExec,
	})
	c.Gateway, c.LoadBalancer, c.TargetGroup, c.gatewayLogs = f.Service, f.LoadBalancer, f.TargetGroup, f.Logs
	if cfg.ECSExec {
		suppressExec(c.GatewayRole, "Cluster")
	}
}

// newECSCluster creates an ECS cluster; with exec, ECS Exec sessions are
// logged to their own group, so the task role's log permissions name that
// group instead of "*".
func newECSCluster(scope constructs.Construct, name string, vpc awsec2.IVpc, insights, exec bool, retention awslogs.RetentionDays) awsecs.Cluster {
	props := &awsecs.ClusterProps{
		ClusterName:         jsii.String(name),
		Vpc:                 vpc,
		ContainerInsightsV2: containerInsights(insights),
	}
	if exec {
		props.ExecuteCommandConfiguration = &awsecs.ExecuteCommandConfiguration{
			Logging: awsecs.ExecuteCommandLogging_OVERRIDE,
			LogConfiguration: &awsecs.ExecuteCommandLogConfiguration{
				CloudWatchLogGroup: awslogs.NewLogGroup(scope, jsii.String("ExecLogs"), &awslogs.LogGroupProps{
					Retention:     retention,
					RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
				}),
			},
		}
	}
	return awsecs.NewCluster(scope, jsii.String("ECS"), props)
}

// suppressExec records ECS Exec's findings on a task role; scopeID is the
// construct ID the exec log group sits under ("Cluster", "Manager").
func suppressExec(role awsiam.Role, scopeID string) {
	suppress(role, "AwsSolutions-IAM5",
		"ECS Exec (ecsExec: true) needs the ssmmessages channel actions and logs:DescribeLogGroups, which have no resource-level permissions, and writes session logs to new streams of its own exec log group (log-group:<ExecLogs>:*).",
		"Resource::*", `/^Resource::arn:<AWS::Partition>:logs:[a-z0-9-]+:[0-9]+:log-group:<`+scopeID+`ExecLogs[A-Z0-9]+>:\*$/g`)
}

func executionMode(cfg *ClusterConfig) string {
	if cfg.HasQueue() {
		return "queue"
	}
	return "local"
}

// addECSRunner creates the runner service scaled on backlog per task.
func (c *Cluster) addECSRunner() {
	cfg := c.Config
	r := cfg.ECSRunner
	c.RunnerRole = newTaskRole(c.Scope, "RunnerTaskRole", "", "Autogate ECS runner tasks of cluster "+cfg.ID, cfg.Account, cfg.Region)
	grantTable(c.RunnerRole, *c.Table.TableArn(), cfg.ID)
	c.grantKey(c.RunnerRole)
	c.RunnerRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ConsumeWork"),
		Actions:   jsii.Strings("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"),
		Resources: jsii.Strings(*c.Queue.QueueArn()),
	}))
	// A runner busy with an execution may protect its task from scale-in
	// (ECS agent endpoint /task-protection/v1/state).
	c.RunnerRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ScaleInProtection"),
		Actions:   jsii.Strings("ecs:UpdateTaskProtection", "ecs:GetTaskProtection"),
		Resources: jsii.Strings(fmt.Sprintf("arn:%s:ecs:%s:%s:task/autogate-%s/*", partition(cfg.Region), cfg.Region, cfg.Account, cfg.ID)),
	}))
	suppress(c.RunnerRole, "AwsSolutions-IAM5",
		"Task scale-in protection is granted on the tasks of this cluster's own ECS cluster (task/autogate-<id>/*); task IDs are not known before the tasks start.",
		fmt.Sprintf("Resource::arn:%s:ecs:%s:%s:task/autogate-%s/*", partition(cfg.Region), cfg.Region, cfg.Account, cfg.ID))

	logs := c.newLogGroup("RunnerLogs")
	task := awsecs.NewFargateTaskDefinition(c.Scope, jsii.String("RunnerTask"), &awsecs.FargateTaskDefinitionProps{
		Cpu:             jsii.Number(float64(r.CPU)),
		MemoryLimitMiB:  jsii.Number(float64(r.Memory)),
		RuntimePlatform: runtimePlatform(cfg.Architecture),
		TaskRole:        c.RunnerRole,
	})
	env := c.baseEnv()
	env["AUTOGATE_STORE"] = jsii.String("dynamodb")
	env["AUTOGATE_RUNNER_CONCURRENCY"] = jsii.String(strconv.Itoa(r.Concurrency))
	env["AUTOGATE_SHUTDOWN_GRACE"] = jsii.String(ShutdownGrace.String())
	secrets := map[string]awsecs.Secret{}
	c.keyEnv(env, secrets)
	task.AddContainer(jsii.String("runner"), &awsecs.ContainerDefinitionOptions{
		Image:       c.ecsImage,
		Command:     jsii.Strings("runner"),
		Environment: &env,
		Secrets:     &secrets,
		Logging: awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup: logs, StreamPrefix: jsii.String("runner"),
		}),
		// Fargate's maximum: the shutdown grace, then the kill path.
		StopTimeout: seconds(StopTimeout),
	})
	suppressTaskDefinition(task)

	sg := awsec2.NewSecurityGroup(c.Scope, jsii.String("RunnerSG"), &awsec2.SecurityGroupProps{
		Vpc:         c.VPC,
		Description: jsii.String("Autogate ECS runners of " + cfg.ID + ": no inbound, outbound to run services"),
	})
	c.Runner = awsecs.NewFargateService(c.Scope, jsii.String("Runner"), &awsecs.FargateServiceProps{
		Cluster:           c.ECSCluster,
		ServiceName:       jsii.String("runner"),
		TaskDefinition:    task,
		DesiredCount:      jsii.Number(float64(r.MinTasks)),
		SecurityGroups:    &[]awsec2.ISecurityGroup{sg},
		VpcSubnets:        c.net.taskSubnets(),
		AssignPublicIp:    jsii.Bool(*cfg.NATGateways == 0),
		MinHealthyPercent: jsii.Number(100),
		MaxHealthyPercent: jsii.Number(200),
		CircuitBreaker:    &awsecs.DeploymentCircuitBreaker{Enable: jsii.Bool(true), Rollback: jsii.Bool(true)},
	})

	target := awsapplicationautoscaling.NewScalableTarget(c.Scope, jsii.String("RunnerScaling"), &awsapplicationautoscaling.ScalableTargetProps{
		ServiceNamespace:  awsapplicationautoscaling.ServiceNamespace_ECS,
		ScalableDimension: jsii.String("ecs:service:DesiredCount"),
		ResourceId:        jsii.String(fmt.Sprintf("service/autogate-%s/runner", cfg.ID)),
		MinCapacity:       jsii.Number(float64(r.MinTasks)),
		MaxCapacity:       jsii.Number(float64(r.MaxTasks)),
		// Application Auto Scaling acts through its service-linked role for
		// ECS (created on first use); without this the CDK adds an empty
		// role of its own that nothing uses.
		Role: awsiam.Role_FromRoleArn(c.Scope, jsii.String("RunnerScalingRole"), jsii.String(fmt.Sprintf(
			"arn:%s:iam::%s:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
			partition(cfg.Region), cfg.Account)), &awsiam.FromRoleArnOptions{Mutable: jsii.Bool(false)}),
	})
	target.Node().AddDependency(c.Runner)
	// Target tracking on a metric-math expression (the L2 construct accepts
	// only a single metric): messages waiting or in flight at runners, per
	// running task (BacklogPerTaskExpression). A task busy with work counts
	// as busy, so a fleet working through long runs is not scaled in just
	// because the queue shows nothing visible.
	//
	// Scale-in never goes below the tasks holding work: target tracking
	// only lowers the desired count, and ECS stops only tasks without
	// scale-in protection, which every runner holding a message has
	// (runner/protect.go, through the ECS agent; renewed while it works).
	// The metric keeps scale-in from being asked for; protection is the
	// guard when it is.
	queueMetric := func(name string) *awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricStatProperty {
		return &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricStatProperty{
			Metric: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricProperty{
				Namespace:  jsii.String("AWS/SQS"),
				MetricName: jsii.String(name),
				Dimensions: []any{&awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDimensionProperty{
					Name: jsii.String("QueueName"), Value: c.Queue.QueueName(),
				}},
			},
			Stat: jsii.String("Average"),
		}
	}
	awsapplicationautoscaling.NewCfnScalingPolicy(c.Scope, jsii.String("RunnerBacklogPerTask"), &awsapplicationautoscaling.CfnScalingPolicyProps{
		PolicyName:      jsii.String("autogate-" + cfg.ID + "-runner-backlog-per-task"),
		PolicyType:      jsii.String("TargetTrackingScaling"),
		ScalingTargetId: target.ScalableTargetId(),
		TargetTrackingScalingPolicyConfiguration: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingScalingPolicyConfigurationProperty{
			TargetValue:      jsii.Number(float64(r.BacklogPerTask)),
			ScaleOutCooldown: jsii.Number(60),
			ScaleInCooldown:  jsii.Number(300),
			CustomizedMetricSpecification: &awsapplicationautoscaling.CfnScalingPolicy_CustomizedMetricSpecificationProperty{
				Metrics: []any{
					&awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDataQueryProperty{
						Id:         jsii.String("visible"),
						MetricStat: queueMetric("ApproximateNumberOfMessagesVisible"),
						ReturnData: jsii.Bool(false),
					},
					&awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDataQueryProperty{
						Id:         jsii.String("inFlight"),
						MetricStat: queueMetric("ApproximateNumberOfMessagesNotVisible"),
						ReturnData: jsii.Bool(false),
					},
					&awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDataQueryProperty{
						Id: jsii.String("running"),
						MetricStat: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricStatProperty{
							Metric: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricProperty{
								Namespace:  jsii.String("ECS/ContainerInsights"),
								MetricName: jsii.String("RunningTaskCount"),
								Dimensions: []any{
									&awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDimensionProperty{
										Name: jsii.String("ClusterName"), Value: jsii.String("autogate-" + cfg.ID),
									},
									&awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDimensionProperty{
										Name: jsii.String("ServiceName"), Value: jsii.String("runner"),
									},
								},
							},
							Stat: jsii.String("Average"),
						},
						ReturnData: jsii.Bool(false),
					},
					&awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDataQueryProperty{
						Id:         jsii.String("backlogPerTask"),
						Expression: jsii.String(BacklogPerTaskExpression),
						Label:      jsii.String("Visible and in-flight messages per running runner task"),
						ReturnData: jsii.Bool(true),
					},
				},
			},
		},
	})
}

// BacklogPerTaskExpression is the metric-math expression the ECS runner
// scales on: messages waiting (visible) plus messages being worked on
// (inFlight: received by a runner, not yet deleted), per running task. With
// no running task the whole backlog counts as one task's.
const BacklogPerTaskExpression = "IF(running > 0, (visible + inFlight) / running, visible + inFlight)"

// addLambdaRunner creates the Lambda runner on the work queue.
func (c *Cluster) addLambdaRunner() {
	cfg := c.Config
	l := cfg.LambdaRunner
	logs := c.newLogGroup("LambdaRunnerLogs")
	c.LambdaRole = awsiam.NewRole(c.Scope, jsii.String("LambdaRunnerRole"), &awsiam.RoleProps{
		Description: jsii.String("Autogate Lambda runner of cluster " + cfg.ID),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
	})
	c.LambdaRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("WriteOwnLogs"),
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	c.LambdaRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("VpcNetworkInterfaces"),
		Actions: jsii.Strings("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
			"ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"),
		Resources: jsii.Strings("*"),
	}))
	// With a legacy secret key, the Lambda runner reads it itself at cold
	// start (AUTOGATE_SECRET_KEY_SECRET_ID): Lambda has no ECS-style
	// secrets. Only GetSecretValue, the one call it makes (grantRead would
	// add DescribeSecret).
	if c.secret != nil {
		c.LambdaRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ReadSecretKey"),
			Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
			Resources: jsii.Strings(*c.secret.SecretArn() + "-??????"),
		}))
	}
	c.grantKey(c.LambdaRole)
	grantTable(c.LambdaRole, *c.Table.TableArn(), cfg.ID)
	// The event source mapping receives and deletes with the function's
	// role; the function hands runs back (ChangeMessageVisibility). Written
	// out because the CDK's SqsEventSource grant adds sqs:GetQueueUrl,
	// which nothing calls.
	c.LambdaRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("ConsumeWork"),
		Actions: jsii.Strings("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
			"sqs:GetQueueAttributes"),
		Resources: jsii.Strings(*c.Queue.QueueArn()),
	}))
	suppress(c.LambdaRole, "AwsSolutions-IAM5",
		"Lambda manages the function's network interfaces in the VPC; the EC2 network-interface actions it needs do not support resource-level permissions (the same actions as AWSLambdaVPCAccessExecutionRole, written inline).",
		"Resource::*")

	sg := awsec2.NewSecurityGroup(c.Scope, jsii.String("LambdaRunnerSG"), &awsec2.SecurityGroupProps{
		Vpc:         c.VPC,
		Description: jsii.String("Autogate Lambda runner of " + cfg.ID + ": no inbound, outbound to run services"),
	})
	env := c.baseEnv()
	c.keyEnv(env, nil)
	if c.secret != nil {
		env["AUTOGATE_SECRET_KEY_SECRET_ID"] = jsii.String(cfg.SecretKeySecret)
	}
	// Lambda's file system is read-only except /tmp; Ansible and tofu write
	// under $HOME and $TMPDIR.
	env["HOME"] = jsii.String("/tmp")
	env["TMPDIR"] = jsii.String("/tmp")
	delete(env, "AWS_REGION") // reserved: Lambda sets it
	arch := awslambda.Architecture_X86_64()
	if cfg.Architecture == ArchARM64 {
		arch = awslambda.Architecture_ARM_64()
	}
	c.Lambda = awslambda.NewDockerImageFunction(c.Scope, jsii.String("LambdaRunner"), &awslambda.DockerImageFunctionProps{
		Description:          jsii.String("Autogate Lambda runner of cluster " + cfg.ID),
		Code:                 c.lambdaCode(lambdaEntrypoint),
		Architecture:         arch,
		MemorySize:           jsii.Number(float64(l.Memory)),
		EphemeralStorageSize: awscdk.Size_Mebibytes(jsii.Number(float64(l.EphemeralStorage))),
		Timeout:              seconds(cfg.LambdaTimeout()),
		Environment:          &env,
		Role:                 c.LambdaRole,
		LogGroup:             logs,
		Vpc:                  c.VPC,
		// Private subnets with NAT egress: validation refuses natGateways 0
		// with the Lambda runner.
		VpcSubnets:     c.net.taskSubnets(),
		SecurityGroups: &[]awsec2.ISecurityGroup{sg},
	})
	c.Lambda.AddEventSourceMapping(jsii.String("SqsEventSource"), &awslambda.EventSourceMappingOptions{
		EventSourceArn:          c.Queue.QueueArn(),
		BatchSize:               jsii.Number(float64(l.BatchSize)),
		MaxConcurrency:          jsii.Number(float64(l.MaxConcurrency)),
		ReportBatchItemFailures: jsii.Bool(true),
	})
}

// addAlarms creates the cluster's alarms: no active gateway (no lease
// holder), no healthy gateway, Lambda runner errors and throttles, DLQ not
// empty, oldest work message too old.
func (c *Cluster) addAlarms() {
	cfg := c.Config
	// Standbys pass /healthz too, so the target group's healthy count says
	// nothing about the lease: the holder's own metric does (--emf-metrics).
	c.alarm("NoActiveGateway", &awscloudwatch.CreateAlarmOptions{
		AlarmName: jsii.String("autogate-" + cfg.ID + "-no-active-gateway"),
		AlarmDescription: jsii.String("No gateway of cluster " + cfg.ID + " has held the lease for 3 minutes (no Autogate/ActiveHolder point, which the active writes once a minute): " +
			"the API answers 503 or forwards nowhere and nothing is dispatched. If no-healthy-gateway fires too, the tasks are down (see the ECS service's events); " +
			"else they are up as standbys: look in the gateway log group for lease renewal errors (DynamoDB throttling, IAM, network) and at the table's throttle metrics."),
		Threshold:          jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(3),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	}, activeHolderMetric(cfg.ID))
	healthy := c.TargetGroup.Metrics().HealthyHostCount(&awscloudwatch.MetricOptions{
		Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Minimum"),
	})
	c.alarm("NoHealthyGateway", &awscloudwatch.CreateAlarmOptions{
		AlarmName: jsii.String("autogate-" + cfg.ID + "-no-healthy-gateway"),
		AlarmDescription: jsii.String("No gateway task of cluster " + cfg.ID + " passes the load balancer's health check (/healthz) for 3 minutes: every task is down or unreachable. " +
			"See the gateway service's events and stopped tasks, and the gateway log group."),
		Threshold:          jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(3),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	}, healthy)
	if c.Lambda != nil {
		c.alarm("LambdaErrors", &awscloudwatch.CreateAlarmOptions{
			AlarmName:          jsii.String("autogate-" + cfg.ID + "-lambda-runner-errors"),
			AlarmDescription:   jsii.String("The Lambda runner of cluster " + cfg.ID + " failed invocations (crashed, timed out or could not start); see its log group."),
			Threshold:          jsii.Number(0),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			EvaluationPeriods:  jsii.Number(1),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		}, c.Lambda.MetricErrors(&awscloudwatch.MetricOptions{
			Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum"),
		}))
		c.alarm("LambdaThrottles", &awscloudwatch.CreateAlarmOptions{
			AlarmName:          jsii.String("autogate-" + cfg.ID + "-lambda-runner-throttles"),
			AlarmDescription:   jsii.String("The Lambda runner of cluster " + cfg.ID + " was throttled: the account's concurrency is exhausted, so work waits in the queue (and may reach the dead-letter queue)."),
			Threshold:          jsii.Number(0),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			EvaluationPeriods:  jsii.Number(1),
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		}, c.Lambda.MetricThrottles(&awscloudwatch.MetricOptions{
			Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum"),
		}))
	}
	if c.Queue == nil {
		return
	}
	c.alarm("DeadLetters", &awscloudwatch.CreateAlarmOptions{
		AlarmName:          jsii.String("autogate-" + cfg.ID + "-dlq-not-empty"),
		AlarmDescription:   jsii.String("Executions of cluster " + cfg.ID + " landed in the dead-letter queue; inspect and redrive them."),
		Threshold:          jsii.Number(0),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	}, c.DLQ.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
		Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Maximum"),
	}))
	c.alarm("OldestMessage", &awscloudwatch.CreateAlarmOptions{
		AlarmName:          jsii.String("autogate-" + cfg.ID + "-oldest-message-age"),
		AlarmDescription:   jsii.String(fmt.Sprintf("The oldest work message of cluster %s is older than %s: runners are not keeping up or not running.", cfg.ID, cfg.OldestMessageAlarm.D())),
		Threshold:          jsii.Number(cfg.OldestMessageAlarm.D().Seconds()),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(3),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	}, c.Queue.MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{
		Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum"),
	}))
}

// activeHolderMetric is Autogate/ActiveHolder of cluster id, summed per
// minute: the lease holder writes 1 a minute as an Embedded Metric Format
// line on stdout (--emf-metrics), which the awslogs driver ships to
// CloudWatch Logs; no point in a minute means no node held the lease.
func activeHolderMetric(id string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String("Autogate"), MetricName: jsii.String("ActiveHolder"),
		DimensionsMap: &map[string]*string{"Cluster": jsii.String(id)},
		Period:        awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Sum"),
	})
}

func (c *Cluster) alarm(id string, opts *awscloudwatch.CreateAlarmOptions, m awscloudwatch.Metric) {
	a := m.CreateAlarm(c.Scope, jsii.String(id), opts)
	notify(a, c.topic)
	c.Alarms = append(c.Alarms, a)
}

func (c *Cluster) addOutputs() {
	stack := awscdk.Stack_Of(c.Scope)
	out := func(id, desc string, v *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Description: jsii.String(desc), Value: v})
	}
	out("Endpoint", "HTTPS endpoint of the cluster (point your DNS name here)", c.LoadBalancer.LoadBalancerDnsName())
	out("TableName", "DynamoDB table of the cluster", jsii.String(c.Config.TableName()))
	out("GatewayRoleArn", "IAM role of the gateway tasks", c.GatewayRole.RoleArn())
	out("GatewayLogGroup", "CloudWatch Logs group of the gateways", c.gatewayLogs.LogGroupName())
	out("EcsCluster", "ECS cluster name", c.ECSCluster.ClusterName())
	out("KmsKeyArn", "KMS key wrapping the data keys of stored secrets (AUTOGATE_KMS_KEY_ID; autogate rotate secret-key --kms-key-id)", c.Key.KeyArn())
	out("AlarmTopicArn", "SNS topic every alarm notifies (subscribe to it)", c.topic.TopicArn())
	if c.Queue != nil {
		out("WorkQueueUrl", "SQS work queue", c.Queue.QueueUrl())
		out("DeadLetterQueueUrl", "SQS dead-letter queue", c.DLQ.QueueUrl())
	}
}

// suppressTaskDefinition records the findings every task definition has.
func suppressTaskDefinition(task awsecs.FargateTaskDefinition) {
	suppress(task, "AwsSolutions-ECS2",
		"The environment variables hold only non-secret configuration (cluster ID, table name, queue URLs, listen address, the KMS key's ARN); the one secret, the legacy AUTOGATE_SECRET_KEY when a cluster still has one, comes from Secrets Manager through the task's secrets.")
	suppress(task.ObtainExecutionRole(), "AwsSolutions-IAM5",
		"ecr:GetAuthorizationToken has no resource-level permissions, so the execution role that pulls the image needs it on '*'; pulls themselves are limited to the image's repository.",
		"Resource::*")
}

// suppress records a cdk-nag suppression with its reason on a construct and
// its children. appliesTo narrows it to specific findings
// ("Resource::*", or a regular expression written "/^Resource::.*$/g").
func suppress(scope constructs.IConstruct, rule, reason string, appliesTo ...string) {
	s := &cdknag.NagPackSuppression{Id: jsii.String(rule), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		a := make([]any, len(appliesTo))
		for i, v := range appliesTo {
			a[i] = v
			if strings.HasPrefix(v, "/") { // a regular expression, "/.../g"
				a[i] = &cdknag.RegexAppliesTo{Regex: jsii.String(v)}
			}
		}
		s.AppliesTo = &a
	}
	cdknag.NagSuppressions_AddResourceSuppressions(scope, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}

// partition is the ARN partition of a region.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	default:
		return "aws"
	}
}

func seconds(d time.Duration) awscdk.Duration {
	return awscdk.Duration_Seconds(jsii.Number(d.Round(time.Second).Seconds()))
}

// retentionDays maps the retention values CloudWatch Logs accepts to the
// CDK's names for them.
var retentionDays = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 120: awslogs.RetentionDays_FOUR_MONTHS,
	150: awslogs.RetentionDays_FIVE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS, 731: awslogs.RetentionDays_TWO_YEARS,
	1096: awslogs.RetentionDays_THREE_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS, 3288: awslogs.RetentionDays_NINE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}
