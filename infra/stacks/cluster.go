package stacks

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapplicationautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecr"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecrassets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Ports and paths of the autogate binary (see DESIGN.md).
const (
	// gatewayPort serves the API, /healthz and /readyz over HTTPS. The load
	// balancer terminates clients' TLS with the ACM certificate and speaks
	// HTTPS to the gateway too, which serves a self-signed certificate when
	// given none (load balancers do not verify target certificates): traffic
	// inside the VPC stays encrypted, and the health check sees the same
	// listener clients use.
	gatewayPort = 8443
	// readyPath answers 200 only on the active gateway, so the load balancer
	// sends traffic to the active gateway alone.
	readyPath = "/readyz"
	// lambdaEntrypoint is the Lambda runner binary inside the image.
	lambdaEntrypoint = "/usr/local/bin/autogate-lambda-runner"
)

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

	secret      awssecretsmanager.ISecret
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
	c.secret = awssecretsmanager.Secret_FromSecretNameV2(c.Scope, jsii.String("SecretKey"), jsii.String(cfg.SecretKeySecret))

	c.addTable()
	if cfg.HasQueue() {
		c.addQueues()
	}
	c.addNetwork()
	c.addImage(props.RepoRoot)
	clusterProps := &awsecs.ClusterProps{
		ClusterName:         jsii.String("autogate-" + cfg.ID),
		Vpc:                 c.VPC,
		ContainerInsightsV2: containerInsights(*cfg.ContainerInsights),
	}
	if cfg.ECSExec {
		// Exec sessions are logged to their own group, so the task role's
		// log permissions name that group instead of "*".
		clusterProps.ExecuteCommandConfiguration = &awsecs.ExecuteCommandConfiguration{
			Logging: awsecs.ExecuteCommandLogging_OVERRIDE,
			LogConfiguration: &awsecs.ExecuteCommandLogConfiguration{
				CloudWatchLogGroup: c.newLogGroup("ExecLogs"),
			},
		}
	}
	c.ECSCluster = awsecs.NewCluster(c.Scope, jsii.String("ECS"), clusterProps)
	if !*cfg.ContainerInsights {
		suppress(c.ECSCluster, "AwsSolutions-ECS4",
			"Container Insights is turned off in the cluster config (containerInsights: false) to save its metric charges; the cluster has no ECS runners, whose scaling needs it.")
	}
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
		DeletionProtection: jsii.Bool(true),
		// The table holds every resource and execution record of the
		// cluster (and of clusters sharing it): never deleted with the stack.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	// The store's indexes (store/dynamo IndexName, IndexAttr, TableInput):
	// open and terminal executions by status, and by service, so periodic
	// work and filters read what they select, not the retained history.
	// CloudFormation creates one index per update of an existing table: a
	// table deployed before them gets them from `autogate init table`, or
	// from two deploys adding one each.
	for _, ix := range []struct{ name, attr string }{{"by-status", "byStatus"}, {"by-service", "byService"}} {
		table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
			IndexName:      jsii.String(ix.name),
			PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String(ix.attr), Type: awsdynamodb.AttributeType_STRING},
			SortKey:        &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
			ProjectionType: awsdynamodb.ProjectionType_ALL,
		})
	}
	c.Table = table
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

// addNetwork creates the VPC: public subnets for the load balancer (and for
// the tasks when natGateways is 0), private subnets with NAT egress for the
// tasks otherwise, free gateway endpoints for DynamoDB and S3 (image layers),
// and REJECT flow logs.
func (c *Cluster) addNetwork() {
	cfg := c.Config
	subnets := []*awsec2.SubnetConfiguration{{
		Name: jsii.String("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24),
	}}
	if *cfg.NATGateways > 0 {
		subnets = append(subnets, &awsec2.SubnetConfiguration{
			Name: jsii.String("private"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: jsii.Number(22),
		})
	}
	flowLogs := awslogs.NewLogGroup(c.Scope, jsii.String("FlowLogs"), &awslogs.LogGroupProps{
		Retention:     c.retention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	props := &awsec2.VpcProps{
		IpAddresses:         awsec2.IpAddresses_Cidr(jsii.String(cfg.VPCCIDR)),
		NatGateways:         jsii.Number(float64(*cfg.NATGateways)),
		SubnetConfiguration: &subnets,
		// The default security group is unused; restricting it needs a
		// custom-resource Lambda, which is more to review than it protects.
		RestrictDefaultSecurityGroup: jsii.Bool(false),
		GatewayEndpoints: &map[string]*awsec2.GatewayVpcEndpointOptions{
			"DynamoDB": {Service: awsec2.GatewayVpcEndpointAwsService_DYNAMODB()},
			"S3":       {Service: awsec2.GatewayVpcEndpointAwsService_S3()},
		},
		FlowLogs: &map[string]*awsec2.FlowLogOptions{
			"Rejected": {
				Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(flowLogs, nil),
				TrafficType: awsec2.FlowLogTrafficType_REJECT,
			},
		},
	}
	if len(cfg.AvailabilityZones) > 0 {
		props.AvailabilityZones = jsii.Strings(cfg.AvailabilityZones...)
	} else {
		props.MaxAzs = jsii.Number(2)
	}
	c.VPC = awsec2.NewVpc(c.Scope, jsii.String("VPC"), props)
}

// taskSubnets are where the tasks and the Lambda runner run.
func (c *Cluster) taskSubnets() *awsec2.SubnetSelection {
	if *c.Config.NATGateways == 0 {
		return &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC}
	}
	return &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
}

// addImage sets the image of the services and the Lambda runner: the
// repository's Dockerfile built as one asset, or a prebuilt image.
func (c *Cluster) addImage(repoRoot string) {
	cfg := c.Config
	if cfg.Image == "" {
		asset := awsecrassets.NewDockerImageAsset(c.Scope, jsii.String("Image"), &awsecrassets.DockerImageAssetProps{
			Directory: jsii.String(repoRoot),
			Exclude:   jsii.Strings(ImageExcludes...),
			Platform:  assetPlatform(cfg.Architecture),
		})
		c.ecsImage = awsecs.ContainerImage_FromDockerImageAsset(asset)
		c.lambdaCode = func(entrypoint string) awslambda.DockerImageCode {
			return awslambda.DockerImageCode_FromEcr(asset.Repository(), &awslambda.EcrImageCodeProps{
				TagOrDigest: asset.ImageTag(),
				Entrypoint:  jsii.Strings(entrypoint),
			})
		}
		return
	}
	img, isECR := ParseECRImage(cfg.Image)
	if !isECR {
		c.ecsImage = awsecs.ContainerImage_FromRegistry(jsii.String(cfg.Image), nil)
		return // validation rejects the Lambda runner with a non-ECR image
	}
	repo := awsecr.Repository_FromRepositoryAttributes(c.Scope, jsii.String("ImageRepository"), &awsecr.RepositoryAttributes{
		RepositoryArn:  jsii.String(fmt.Sprintf("arn:%s:ecr:%s:%s:repository/%s", partition(img.Region), img.Region, img.Account, img.Repository)),
		RepositoryName: jsii.String(img.Repository),
	})
	ref := img.Tag
	if img.Digest != "" {
		ref = img.Digest
	}
	c.ecsImage = awsecs.ContainerImage_FromEcrRepository(repo, jsii.String(ref))
	c.lambdaCode = func(entrypoint string) awslambda.DockerImageCode {
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

// baseEnv is the environment every node of the cluster shares.
func (c *Cluster) baseEnv(execution string) map[string]*string {
	cfg := c.Config
	env := map[string]*string{
		"AUTOGATE_STORE":               jsii.String("dynamodb"),
		"AUTOGATE_CLUSTER":             jsii.String(cfg.ID),
		"AUTOGATE_TABLE":               jsii.String(cfg.TableName()),
		"AUTOGATE_EXECUTION":           jsii.String(execution),
		"AUTOGATE_MAX_SERVICE_TIMEOUT": jsii.String(cfg.MaxServiceTimeout.D().String()),
		"AWS_REGION":                   jsii.String(cfg.Region),
	}
	if c.Queue != nil {
		env["AUTOGATE_QUEUE_URL"] = c.Queue.QueueUrl()
	}
	return env
}

// newTaskRole makes a role that only ECS tasks of this account and region
// can assume.
func (c *Cluster) newTaskRole(id, name, description string) awsiam.Role {
	cfg := c.Config
	var roleName *string
	if name != "" {
		roleName = jsii.String(name)
	}
	return awsiam.NewRole(c.Scope, jsii.String(id), &awsiam.RoleProps{
		RoleName:    roleName,
		Description: jsii.String(description),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("ecs-tasks.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"aws:SourceAccount": cfg.Account},
				"ArnLike":      map[string]any{"aws:SourceArn": fmt.Sprintf("arn:%s:ecs:%s:%s:*", partition(cfg.Region), cfg.Region, cfg.Account)},
			},
		}),
	})
}

// grantTable lets a role read and write the cluster's own items only: every
// item of cluster C has a partition key starting with "C#". Scan is left out
// on purpose: dynamodb:LeadingKeys is empty for a Scan, and
// ForAllValues over an empty set is true, so a Scan would escape the
// condition. The table's metadata (key schema, TTL) is readable so the store
// can check the table at start-up.
func (c *Cluster) grantTable(role awsiam.IGrantable) {
	role.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("ClusterItemsOnly"),
		Actions: jsii.Strings("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
			"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
			"dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"),
		// The index keys of cluster C start with "C#" too (store/dynamo
		// indexPK), so the condition holds for index queries.
		Resources: jsii.Strings(*c.Table.TableArn(), *c.Table.TableArn()+"/index/by-status", *c.Table.TableArn()+"/index/by-service"),
		Conditions: &map[string]any{
			"ForAllValues:StringLike": map[string]any{"dynamodb:LeadingKeys": []string{c.Config.ID + "#*"}},
		},
	}))
	role.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("TableMetadata"),
		Actions:   jsii.Strings("dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive"),
		Resources: jsii.Strings(*c.Table.TableArn()),
	}))
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
	c.GatewayRole = c.newTaskRole("GatewayTaskRole", GatewayRoleName(cfg.ID),
		"Autogate gateway tasks of cluster "+cfg.ID)
	c.grantTable(c.GatewayRole)
	if c.Queue != nil {
		c.GatewayRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("EnqueueWork"),
			Actions:   jsii.Strings("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
			Resources: jsii.Strings(*c.Queue.QueueArn()),
		}))
		// Redrive: either a message move task (DLQ -> its source queue) or
		// receive/inspect/delete on the DLQ and send to the work queue.
		c.GatewayRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("RedriveDeadLetters"),
			Actions: jsii.Strings("sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks", "sqs:CancelMessageMoveTask",
				"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
				"sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
			Resources: jsii.Strings(*c.DLQ.QueueArn()),
		}))
	}
	if mgr != nil {
		c.GatewayRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ReachManager"),
			Actions:   jsii.Strings("sts:AssumeRole"),
			Resources: jsii.Strings(ManagerAccessRoleARN(mgr, cfg.ID)),
		}))
	}

	logs := c.newLogGroup("GatewayLogs")
	c.gatewayLogs = logs
	task := awsecs.NewFargateTaskDefinition(c.Scope, jsii.String("GatewayTask"), &awsecs.FargateTaskDefinitionProps{
		Cpu:             jsii.Number(float64(cfg.Gateway.CPU)),
		MemoryLimitMiB:  jsii.Number(float64(cfg.Gateway.Memory)),
		RuntimePlatform: runtimePlatform(cfg.Architecture),
		TaskRole:        c.GatewayRole,
	})

	sg := awsec2.NewSecurityGroup(c.Scope, jsii.String("GatewaySG"), &awsec2.SecurityGroupProps{
		Vpc:         c.VPC,
		Description: jsii.String("Autogate gateways of " + cfg.ID + ": HTTPS 8443 from the load balancer only"),
	})
	lbSG := awsec2.NewSecurityGroup(c.Scope, jsii.String("LoadBalancerSG"), &awsec2.SecurityGroupProps{
		Vpc:              c.VPC,
		Description:      jsii.String("Autogate load balancer of " + cfg.ID + ": HTTPS 443 from the allowed CIDRs"),
		AllowAllOutbound: jsii.Bool(false),
	})
	for _, cidr := range cfg.AllowedCIDRs {
		lbSG.AddIngressRule(awsec2.Peer_Ipv4(jsii.String(cidr)), awsec2.Port_Tcp(jsii.Number(443)),
			jsii.String("HTTPS clients"), nil)
	}
	for _, cidr := range cfg.AllowedCIDRs {
		if strings.HasSuffix(cidr, "/0") {
			suppress(lbSG, "AwsSolutions-EC23",
				"The cluster endpoint is a public HTTPS API (allowedCidrs includes "+cidr+"): TLS 1.2+ with the ACM certificate and Autogate's own authentication protect it. Set allowedCidrs or internal: true to narrow it.")
			break
		}
	}

	c.LoadBalancer = awselasticloadbalancingv2.NewApplicationLoadBalancer(c.Scope, jsii.String("LoadBalancer"), &awselasticloadbalancingv2.ApplicationLoadBalancerProps{
		Vpc:                     c.VPC,
		InternetFacing:          jsii.Bool(!cfg.Internal),
		SecurityGroup:           lbSG,
		DropInvalidHeaderFields: jsii.Bool(true),
		VpcSubnets:              &awsec2.SubnetSelection{SubnetType: lbSubnetType(cfg)},
	})
	c.LoadBalancer.LogAccessLogs(c.accessLogBucket(), jsii.String("alb"))

	env := c.baseEnv(executionMode(cfg))
	env["AUTOGATE_LISTEN"] = jsii.String(fmt.Sprintf(":%d", gatewayPort))
	// Clients reach the cluster through the load balancer (or the DNS name
	// that points at it), never a task's own address.
	endpoint := c.LoadBalancer.LoadBalancerDnsName()
	if cfg.DomainName != "" {
		endpoint = jsii.String(cfg.DomainName)
	}
	env["AUTOGATE_ADVERTISE_ADDR"] = jsii.String("https://" + *endpoint)
	if c.DLQ != nil {
		env["AUTOGATE_DLQ_URL"] = c.DLQ.QueueUrl()
	}
	if mgr != nil {
		env["AUTOGATE_MANAGER_ROLE_ARN"] = jsii.String(ManagerAccessRoleARN(mgr, cfg.ID))
		if mgr.URL != "" {
			env["AUTOGATE_MANAGER_URL"] = jsii.String(mgr.URL)
		}
	}
	task.AddContainer(jsii.String("gateway"), &awsecs.ContainerDefinitionOptions{
		Image:       c.ecsImage,
		Command:     jsii.Strings("server"),
		Environment: &env,
		Secrets: &map[string]awsecs.Secret{
			"AUTOGATE_SECRET_KEY": awsecs.Secret_FromSecretsManager(c.secret, nil),
		},
		Logging: awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup: logs, StreamPrefix: jsii.String("gateway"),
		}),
		PortMappings: &[]*awsecs.PortMapping{{ContainerPort: jsii.Number(gatewayPort)}},
		// Time to release the lease and finish in-flight requests.
		StopTimeout: awscdk.Duration_Seconds(jsii.Number(60)),
	})

	c.Gateway = awsecs.NewFargateService(c.Scope, jsii.String("Gateway"), &awsecs.FargateServiceProps{
		Cluster:        c.ECSCluster,
		ServiceName:    jsii.String("gateway"),
		TaskDefinition: task,
		DesiredCount:   jsii.Number(float64(*cfg.Gateways)),
		SecurityGroups: &[]awsec2.ISecurityGroup{sg},
		VpcSubnets:     c.taskSubnets(),
		AssignPublicIp: jsii.Bool(*cfg.NATGateways == 0),
		// ECS stops a task whose target is unhealthy once the grace period
		// is over, and ECS has no readiness check: standbys answer /readyz
		// with 503 by design, so without this they would be killed over
		// and over. The grace period is therefore the maximum (ECS ignores
		// the load balancer's verdict; a gateway that is broken must exit,
		// and ECS replaces exited tasks), and deployments may stop old
		// tasks before new ones are "healthy" (only one task, the active,
		// ever is): minHealthyPercent 0, maxHealthyPercent 200 start the
		// new tasks as hot standbys next to the old ones.
		HealthCheckGracePeriod: awscdk.Duration_Seconds(jsii.Number(2147483647)),
		MinHealthyPercent:      jsii.Number(0),
		MaxHealthyPercent:      jsii.Number(200),
		CircuitBreaker:         &awsecs.DeploymentCircuitBreaker{Enable: jsii.Bool(true), Rollback: jsii.Bool(true)},
		// ECS Exec: how an operator reads the first admin password (see
		// README.md, "Deploying a cluster to AWS"); off unless the cluster config turns it on.
		EnableExecuteCommand: jsii.Bool(cfg.ECSExec),
	})
	if cfg.ECSExec {
		suppress(c.GatewayRole, "AwsSolutions-IAM5",
			"ECS Exec (ecsExec: true) needs the ssmmessages channel actions and logs:DescribeLogGroups, which have no resource-level permissions, and writes session logs to new streams of the cluster's own exec log group (log-group:<ExecLogs>:*).",
			"Resource::*", `/^Resource::arn:<AWS::Partition>:logs:[a-z0-9-]+:[0-9]+:log-group:<ClusterExecLogs[A-Z0-9]+>:\*$/g`)
	}

	c.TargetGroup = awselasticloadbalancingv2.NewApplicationTargetGroup(c.Scope, jsii.String("GatewayTargets"), &awselasticloadbalancingv2.ApplicationTargetGroupProps{
		Vpc:        c.VPC,
		Port:       jsii.Number(gatewayPort),
		Protocol:   awselasticloadbalancingv2.ApplicationProtocol_HTTPS,
		TargetType: awselasticloadbalancingv2.TargetType_IP,
		HealthCheck: &awselasticloadbalancingv2.HealthCheck{
			Path:                    jsii.String(readyPath),
			Protocol:                awselasticloadbalancingv2.Protocol_HTTPS,
			HealthyHttpCodes:        jsii.String("200"),
			Interval:                awscdk.Duration_Seconds(jsii.Number(10)),
			Timeout:                 awscdk.Duration_Seconds(jsii.Number(5)),
			HealthyThresholdCount:   jsii.Number(2),
			UnhealthyThresholdCount: jsii.Number(2),
		},
		DeregistrationDelay: awscdk.Duration_Seconds(jsii.Number(30)),
	})
	c.Gateway.AttachToApplicationTargetGroup(c.TargetGroup)

	c.LoadBalancer.AddListener(jsii.String("HTTPS"), &awselasticloadbalancingv2.BaseApplicationListenerProps{
		Port:                jsii.Number(443),
		Protocol:            awselasticloadbalancingv2.ApplicationProtocol_HTTPS,
		Certificates:        &[]awselasticloadbalancingv2.IListenerCertificate{awselasticloadbalancingv2.ListenerCertificate_FromArn(jsii.String(cfg.CertificateARN))},
		SslPolicy:           awselasticloadbalancingv2.SslPolicy_RECOMMENDED_TLS,
		DefaultTargetGroups: &[]awselasticloadbalancingv2.IApplicationTargetGroup{c.TargetGroup},
		Open:                jsii.Bool(false),
	})

	suppressTaskDefinition(task)
}

func executionMode(cfg *ClusterConfig) string {
	if cfg.HasQueue() {
		return "queue"
	}
	return "local"
}

func lbSubnetType(cfg *ClusterConfig) awsec2.SubnetType {
	if cfg.Internal && *cfg.NATGateways > 0 {
		return awsec2.SubnetType_PRIVATE_WITH_EGRESS
	}
	return awsec2.SubnetType_PUBLIC
}

// accessLogBucket stores the load balancer's access logs.
func (c *Cluster) accessLogBucket() awss3.Bucket {
	b := awss3.NewBucket(c.Scope, jsii.String("AccessLogs"), &awss3.BucketProps{
		// Load balancer access logs support SSE-S3 only.
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration: awscdk.Duration_Days(jsii.Number(float64(c.Config.LogRetentionDays))),
		}},
		// Kept on stack deletion like any audit log; emptied and deleted by
		// hand (README.md, "Deploying a cluster to AWS", tear-down).
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	suppress(b, "AwsSolutions-S1",
		"This bucket only receives the load balancer's access logs; logging access to the log bucket itself would need another bucket and adds nothing an auditor uses here.")
	return b
}

// addECSRunner creates the runner service scaled on backlog per task.
func (c *Cluster) addECSRunner() {
	cfg := c.Config
	r := cfg.ECSRunner
	c.RunnerRole = c.newTaskRole("RunnerTaskRole", "", "Autogate ECS runner tasks of cluster "+cfg.ID)
	c.grantTable(c.RunnerRole)
	c.RunnerRole.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ConsumeWork"),
		Actions:   jsii.Strings("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"),
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
	env := c.baseEnv("queue")
	env["AUTOGATE_RUNNER_CONCURRENCY"] = jsii.String(strconv.Itoa(r.Concurrency))
	task.AddContainer(jsii.String("runner"), &awsecs.ContainerDefinitionOptions{
		Image:       c.ecsImage,
		Command:     jsii.Strings("runner"),
		Environment: &env,
		Secrets: &map[string]awsecs.Secret{
			"AUTOGATE_SECRET_KEY": awsecs.Secret_FromSecretsManager(c.secret, nil),
		},
		Logging: awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup: logs, StreamPrefix: jsii.String("runner"),
		}),
		// Fargate's maximum: time to hand an unfinished message back.
		StopTimeout: awscdk.Duration_Seconds(jsii.Number(120)),
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
		VpcSubnets:        c.taskSubnets(),
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
	})
	target.Node().AddDependency(c.Runner)
	// Target tracking on a metric-math expression (the L2 construct accepts
	// only a single metric): visible messages / running tasks.
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
						Id: jsii.String("visible"),
						MetricStat: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricStatProperty{
							Metric: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricProperty{
								Namespace:  jsii.String("AWS/SQS"),
								MetricName: jsii.String("ApproximateNumberOfMessagesVisible"),
								Dimensions: []any{&awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDimensionProperty{
									Name: jsii.String("QueueName"), Value: c.Queue.QueueName(),
								}},
							},
							Stat: jsii.String("Average"),
						},
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
						Label:      jsii.String("Visible messages per running runner task"),
						ReturnData: jsii.Bool(true),
					},
				},
			},
		},
	})
}

// BacklogPerTaskExpression is the metric-math expression the ECS runner
// scales on. With no running task the whole backlog counts as one task's.
const BacklogPerTaskExpression = "IF(running > 0, visible / running, visible)"

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
	// The Lambda runner reads AUTOGATE_SECRET_KEY itself at cold start
	// (AUTOGATE_SECRET_KEY_SECRET_ID): Lambda has no ECS-style secrets.
	c.secret.GrantRead(c.LambdaRole, nil)
	c.grantTable(c.LambdaRole)
	suppress(c.LambdaRole, "AwsSolutions-IAM5",
		"Lambda manages the function's network interfaces in the VPC; the EC2 network-interface actions it needs do not support resource-level permissions (the same actions as AWSLambdaVPCAccessExecutionRole, written inline).",
		"Resource::*")

	sg := awsec2.NewSecurityGroup(c.Scope, jsii.String("LambdaRunnerSG"), &awsec2.SecurityGroupProps{
		Vpc:         c.VPC,
		Description: jsii.String("Autogate Lambda runner of " + cfg.ID + ": no inbound, outbound to run services"),
	})
	env := c.baseEnv("queue")
	env["AUTOGATE_SECRET_KEY_SECRET_ID"] = jsii.String(cfg.SecretKeySecret)
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
		VpcSubnets:           c.taskSubnets(),
		AllowPublicSubnet:    jsii.Bool(*cfg.NATGateways == 0),
		SecurityGroups:       &[]awsec2.ISecurityGroup{sg},
	})
	c.Lambda.AddEventSource(awslambdaeventsources.NewSqsEventSource(c.Queue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(float64(l.BatchSize)),
		MaxConcurrency:          jsii.Number(float64(l.MaxConcurrency)),
		ReportBatchItemFailures: jsii.Bool(true),
	}))
}

// addAlarms creates the cluster's alarms: no active gateway, DLQ not empty,
// oldest work message too old.
func (c *Cluster) addAlarms() {
	cfg := c.Config
	healthy := c.TargetGroup.Metrics().HealthyHostCount(&awscloudwatch.MetricOptions{
		Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Minimum"),
	})
	c.alarm("NoActiveGateway", &awscloudwatch.CreateAlarmOptions{
		AlarmName:          jsii.String("autogate-" + cfg.ID + "-no-active-gateway"),
		AlarmDescription:   jsii.String("No gateway of cluster " + cfg.ID + " passes /readyz: the cluster has no active gateway and its API is down."),
		Threshold:          jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(3),
		TreatMissingData:   awscloudwatch.TreatMissingData_BREACHING,
	}, healthy)
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

func (c *Cluster) alarm(id string, opts *awscloudwatch.CreateAlarmOptions, m awscloudwatch.Metric) {
	a := m.CreateAlarm(c.Scope, jsii.String(id), opts)
	if c.Config.AlarmTopicARN != "" {
		topic := awssns.Topic_FromTopicArn(c.Scope, jsii.String(id+"Topic"), jsii.String(c.Config.AlarmTopicARN))
		a.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
		a.AddOkAction(awscloudwatchactions.NewSnsAction(topic))
	}
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
	if c.Queue != nil {
		out("WorkQueueUrl", "SQS work queue", c.Queue.QueueUrl())
		out("DeadLetterQueueUrl", "SQS dead-letter queue", c.DLQ.QueueUrl())
	}
}

// suppressTaskDefinition records the findings every task definition has.
func suppressTaskDefinition(task awsecs.FargateTaskDefinition) {
	suppress(task, "AwsSolutions-ECS2",
		"The environment variables hold only non-secret configuration (cluster ID, table name, queue URLs, listen address); the one secret, AUTOGATE_SECRET_KEY, comes from Secrets Manager through the task's secrets.")
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

// ManagerAccessRoleARN is the ARN of the role in the manager account that
// the gateways of a cluster assume.
func ManagerAccessRoleARN(mgr *ManagerConfig, clusterID string) string {
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", partition(mgr.Region), mgr.Account, ManagerAccessRoleName(clusterID))
}

// GatewayRoleARN is the ARN of a cluster's gateway task role.
func GatewayRoleARN(cfg *ClusterConfig) string {
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", partition(cfg.Region), cfg.Account, GatewayRoleName(cfg.ID))
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
