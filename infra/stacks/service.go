package stacks

import (
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// This file holds what the cluster stack and the manager stack share: the
// VPC, the task roles, the table grant, the load-balanced active/standby
// service and the alarm topic. Both stacks run their servers the same way.

// network is where a stack's tasks run.
type network struct {
	VPC awsec2.Vpc
	// nat is the number of NAT gateways; with 0 the tasks run in public
	// subnets with public addresses.
	nat int
}

// newNetwork creates a VPC: public subnets for the load balancer (and for
// the tasks when nat is 0), private subnets with NAT egress for the tasks
// otherwise, free gateway endpoints for DynamoDB and S3 (image layers), and
// REJECT flow logs.
func newNetwork(scope constructs.Construct, cidr string, nat int, azs []string, retention awslogs.RetentionDays) *network {
	subnets := []*awsec2.SubnetConfiguration{{
		Name: jsii.String("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24),
	}}
	if nat > 0 {
		subnets = append(subnets, &awsec2.SubnetConfiguration{
			Name: jsii.String("private"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: jsii.Number(22),
		})
	}
	flowLogs := awslogs.NewLogGroup(scope, jsii.String("FlowLogs"), &awslogs.LogGroupProps{
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	props := &awsec2.VpcProps{
		IpAddresses:         awsec2.IpAddresses_Cidr(jsii.String(cidr)),
		NatGateways:         jsii.Number(float64(nat)),
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
	if len(azs) > 0 {
		props.AvailabilityZones = jsii.Strings(azs...)
	} else {
		props.MaxAzs = jsii.Number(2)
	}
	return &network{VPC: awsec2.NewVpc(scope, jsii.String("VPC"), props), nat: nat}
}

// taskSubnets are where the tasks (and the Lambda runner) run.
func (n *network) taskSubnets() *awsec2.SubnetSelection {
	if n.nat == 0 {
		return &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC}
	}
	return &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
}

// lbSubnetType is where the load balancer runs.
func (n *network) lbSubnetType(internal bool) awsec2.SubnetType {
	if internal && n.nat > 0 {
		return awsec2.SubnetType_PRIVATE_WITH_EGRESS
	}
	return awsec2.SubnetType_PUBLIC
}

// newTaskRole makes a role that only ECS tasks of this account and region
// can assume.
func newTaskRole(scope constructs.Construct, id, name, description, account, region string) awsiam.Role {
	var roleName *string
	if name != "" {
		roleName = jsii.String(name)
	}
	return awsiam.NewRole(scope, jsii.String(id), &awsiam.RoleProps{
		RoleName:    roleName,
		Description: jsii.String(description),
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("ecs-tasks.amazonaws.com"), &awsiam.ServicePrincipalOpts{
			Conditions: &map[string]any{
				"StringEquals": map[string]any{"aws:SourceAccount": account},
				"ArnLike":      map[string]any{"aws:SourceArn": fmt.Sprintf("arn:%s:ecs:%s:%s:*", partition(region), region, account)},
			},
		}),
	})
}

// TableActions are the item actions a node's role gets on its table: the
// DynamoDB calls of the store and the lease (TransactWriteItems is
// authorized per item as PutItem, UpdateItem, DeleteItem and
// ConditionCheckItem). TestRoleActionsMatchSDKCalls holds them against the
// product's source.
var TableActions = []string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem",
	"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}

// addStoreIndexes adds the store's indexes (store/dynamo IndexName,
// IndexAttr, TableInput) to a table: open and terminal executions by
// status, and by service, so periodic work and filters read what they
// select, not the retained history. The store refuses a table without them
// at start-up. CloudFormation creates one index per update of an existing
// table: a table deployed before them gets them from `autogate init table`,
// or from two deploys adding one each.
func addStoreIndexes(table awsdynamodb.Table) {
	for _, ix := range []struct{ name, attr string }{{"by-status", "byStatus"}, {"by-service", "byService"}} {
		table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
			IndexName:      jsii.String(ix.name),
			PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String(ix.attr), Type: awsdynamodb.AttributeType_STRING},
			SortKey:        &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
			ProjectionType: awsdynamodb.ProjectionType_ALL,
		})
	}
}

// grantTable lets a role read and write the items of one key namespace
// only: every item of cluster C has a partition key starting with "C#".
// Scan is left out on purpose: dynamodb:LeadingKeys is empty for a Scan,
// and ForAllValues over an empty set is true, so a Scan would escape the
// condition. The table's metadata (key schema, TTL) is readable so the
// store can check the table at start-up.
func grantTable(role awsiam.IGrantable, tableARN, namespace string) {
	role.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:     jsii.String("ClusterItemsOnly"),
		Actions: jsii.Strings(TableActions...),
		// The store's index keys start with the namespace too (store/dynamo
		// indexPK), so the condition holds for index queries.
		Resources: jsii.Strings(tableARN, tableARN+"/index/by-status", tableARN+"/index/by-service"),
		Conditions: &map[string]any{
			"ForAllValues:StringLike": map[string]any{"dynamodb:LeadingKeys": []string{namespace + "#*"}},
		},
	}))
	role.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("TableMetadata"),
		Actions:   jsii.Strings("dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive"),
		Resources: jsii.Strings(tableARN),
	}))
}

// frontedProps configures a [fronted] service.
type frontedProps struct {
	// Name is the container and ECS service name ("gateway", "manager").
	Name string
	// Describe is the owner in resource descriptions ("gateways of prod").
	Describe string
	Net      *network
	Cluster  awsecs.Cluster
	Image    awsecs.ContainerImage
	Role     awsiam.Role
	Size     TaskSize
	Arch     string
	Command  []string
	Env      map[string]*string
	Secrets  map[string]awsecs.Secret
	Port     int
	Count    int
	// HealthPath is the target group's health check path (livePath).
	HealthPath   string
	Internal     bool
	AllowedCIDRs []string
	CertARN      string
	// Retention and LogDays are the log groups' retention and the access
	// log bucket's expiry.
	Retention awslogs.RetentionDays
	LogDays   int
	// ECSExec turns on ECS Exec for the service.
	ECSExec bool
	// StopTimeout is the container's stop timeout: time to release the
	// lease and drain (finish in-flight requests and, on a gateway that
	// runs services, AUTOGATE_SHUTDOWN_GRACE); at most 120 s on Fargate.
	StopTimeout time.Duration
}

// fronted is an active/standby server behind an HTTPS load balancer, the
// way the gateways and the manager run: every live task is a target, and a
// standby forwards what it gets to the active task (see the binary's
// httpapi.Forwarder).
type fronted struct {
	Service      awsecs.FargateService
	Task         awsecs.FargateTaskDefinition
	LoadBalancer awselasticloadbalancingv2.ApplicationLoadBalancer
	TargetGroup  awselasticloadbalancingv2.ApplicationTargetGroup
	Logs         awslogs.LogGroup
}

// newFronted creates the task definition, the service, its security
// groups, the load balancer with its access-log bucket, the target group
// and the HTTPS listener.
//
// The load balancer terminates clients' TLS with the ACM certificate and
// speaks HTTPS to the server too, which serves a self-signed certificate
// when given none (load balancers do not verify target certificates):
// traffic inside the VPC stays encrypted, and the health check sees the
// same listener clients use. Its idle timeout outlasts the longest sync
// wait, so a client waiting on a run never gets the load balancer's 504.
func newFronted(scope constructs.Construct, p *frontedProps) *fronted {
	f := &fronted{}
	id := strings.ToUpper(p.Name[:1]) + p.Name[1:]
	f.Logs = awslogs.NewLogGroup(scope, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     p.Retention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	f.Task = awsecs.NewFargateTaskDefinition(scope, jsii.String(id+"Task"), &awsecs.FargateTaskDefinitionProps{
		Cpu:             jsii.Number(float64(p.Size.CPU)),
		MemoryLimitMiB:  jsii.Number(float64(p.Size.Memory)),
		RuntimePlatform: runtimePlatform(p.Arch),
		TaskRole:        p.Role,
	})
	sg := awsec2.NewSecurityGroup(scope, jsii.String(id+"SG"), &awsec2.SecurityGroupProps{
		Vpc:         p.Net.VPC,
		Description: jsii.String(fmt.Sprintf("Autogate %s: HTTPS %d from the load balancer and from each other", p.Describe, p.Port)),
	})
	// Standbys forward requests to the active task over HTTPS.
	sg.AddIngressRule(sg, awsec2.Port_Tcp(jsii.Number(float64(p.Port))), jsii.String("standbys forward to the active"), nil)
	lbSG := awsec2.NewSecurityGroup(scope, jsii.String("LoadBalancerSG"), &awsec2.SecurityGroupProps{
		Vpc:              p.Net.VPC,
		Description:      jsii.String("Autogate load balancer of " + p.Describe + ": HTTPS 443 from the allowed CIDRs"),
		AllowAllOutbound: jsii.Bool(false),
	})
	for _, cidr := range p.AllowedCIDRs {
		lbSG.AddIngressRule(awsec2.Peer_Ipv4(jsii.String(cidr)), awsec2.Port_Tcp(jsii.Number(443)),
			jsii.String("HTTPS clients"), nil)
	}
	for _, cidr := range p.AllowedCIDRs {
		if strings.HasSuffix(cidr, "/0") {
			suppress(lbSG, "AwsSolutions-EC23",
				"The endpoint is a public HTTPS API (allowedCidrs includes "+cidr+"): TLS 1.2+ with the ACM certificate and Autogate's own authentication protect it. Set allowedCidrs or internal: true to narrow it.")
			break
		}
	}
	f.LoadBalancer = awselasticloadbalancingv2.NewApplicationLoadBalancer(scope, jsii.String("LoadBalancer"), &awselasticloadbalancingv2.ApplicationLoadBalancerProps{
		Vpc:                     p.Net.VPC,
		InternetFacing:          jsii.Bool(!p.Internal),
		SecurityGroup:           lbSG,
		DropInvalidHeaderFields: jsii.Bool(true),
		VpcSubnets:              &awsec2.SubnetSelection{SubnetType: p.Net.lbSubnetType(p.Internal)},
		IdleTimeout:             seconds(IdleTimeout()),
	})
	f.LoadBalancer.LogAccessLogs(accessLogBucket(scope, p.LogDays), jsii.String("alb"))

	// No advertise address: each task advertises its own (its ENI's
	// address and the port), which the lease item names so that standbys
	// forward to the active task, never to the load balancer.
	env := map[string]*string{}
	for k, v := range p.Env {
		env[k] = v
	}
	secrets := p.Secrets
	f.Task.AddContainer(jsii.String(p.Name), &awsecs.ContainerDefinitionOptions{
		Image:       p.Image,
		Command:     jsii.Strings(p.Command...),
		Environment: &env,
		Secrets:     &secrets,
		Logging: awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup: f.Logs, StreamPrefix: jsii.String(p.Name),
		}),
		PortMappings: &[]*awsecs.PortMapping{{ContainerPort: jsii.Number(float64(p.Port))}},
		StopTimeout:  seconds(p.StopTimeout),
	})

	f.Service = awsecs.NewFargateService(scope, jsii.String(id), &awsecs.FargateServiceProps{
		Cluster:        p.Cluster,
		ServiceName:    jsii.String(p.Name),
		TaskDefinition: f.Task,
		DesiredCount:   jsii.Number(float64(p.Count)),
		SecurityGroups: &[]awsec2.ISecurityGroup{sg},
		VpcSubnets:     p.Net.taskSubnets(),
		AssignPublicIp: jsii.Bool(p.Net.nat == 0),
		// Every live task passes the health check (/healthz: standbys
		// forward to the active), so a deployment reaches steady state
		// the ECS way: new tasks start next to the old ones (max 200%),
		// and the old ones stop once the new ones are healthy (min 100%).
		// The grace period covers the start-up (table check, first
		// certificate); a task that stops answering after it is replaced.
		HealthCheckGracePeriod: awscdk.Duration_Seconds(jsii.Number(HealthCheckGrace.Seconds())),
		MinHealthyPercent:      jsii.Number(100),
		MaxHealthyPercent:      jsii.Number(200),
		CircuitBreaker:         &awsecs.DeploymentCircuitBreaker{Enable: jsii.Bool(true), Rollback: jsii.Bool(true)},
		EnableExecuteCommand:   jsii.Bool(p.ECSExec),
	})

	f.TargetGroup = awselasticloadbalancingv2.NewApplicationTargetGroup(scope, jsii.String(id+"Targets"), &awselasticloadbalancingv2.ApplicationTargetGroupProps{
		Vpc:        p.Net.VPC,
		Port:       jsii.Number(float64(p.Port)),
		Protocol:   awselasticloadbalancingv2.ApplicationProtocol_HTTPS,
		TargetType: awselasticloadbalancingv2.TargetType_IP,
		// The shortest check the load balancer allows: a task that died
		// stops getting requests after 2 × 5 s (ECS deregisters a stopped
		// task sooner); until then its requests fail, while the others
		// reach the new active through the standby.
		HealthCheck: &awselasticloadbalancingv2.HealthCheck{
			Path:                    jsii.String(p.HealthPath),
			Protocol:                awselasticloadbalancingv2.Protocol_HTTPS,
			HealthyHttpCodes:        jsii.String("200"),
			Interval:                awscdk.Duration_Seconds(jsii.Number(5)),
			Timeout:                 awscdk.Duration_Seconds(jsii.Number(4)),
			HealthyThresholdCount:   jsii.Number(2),
			UnhealthyThresholdCount: jsii.Number(2),
		},
		DeregistrationDelay: awscdk.Duration_Seconds(jsii.Number(30)),
	})
	f.Service.AttachToApplicationTargetGroup(f.TargetGroup)

	f.LoadBalancer.AddListener(jsii.String("HTTPS"), &awselasticloadbalancingv2.BaseApplicationListenerProps{
		Port:                jsii.Number(443),
		Protocol:            awselasticloadbalancingv2.ApplicationProtocol_HTTPS,
		Certificates:        &[]awselasticloadbalancingv2.IListenerCertificate{awselasticloadbalancingv2.ListenerCertificate_FromArn(jsii.String(p.CertARN))},
		SslPolicy:           awselasticloadbalancingv2.SslPolicy_RECOMMENDED_TLS,
		DefaultTargetGroups: &[]awselasticloadbalancingv2.IApplicationTargetGroup{f.TargetGroup},
		Open:                jsii.Bool(false),
	})
	suppressTaskDefinition(f.Task)
	return f
}

// accessLogBucket stores a load balancer's access logs.
func accessLogBucket(scope constructs.Construct, days int) awss3.Bucket {
	b := awss3.NewBucket(scope, jsii.String("AccessLogs"), &awss3.BucketProps{
		// Load balancer access logs support SSE-S3 only.
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration: awscdk.Duration_Days(jsii.Number(float64(days))),
		}},
		// Kept on stack update and deletion like any audit log; emptied and
		// deleted by hand (README.md, "Deploying a cluster to AWS",
		// tear-down). Not kept when the first create rolls back, so a
		// retry does not fail on a bucket left behind.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN_ON_UPDATE_OR_DELETE,
	})
	suppress(b, "AwsSolutions-S1",
		"This bucket only receives the load balancer's access logs; logging access to the log bucket itself would need another bucket and adds nothing an auditor uses here.")
	return b
}

// alarmTopic is the SNS topic alarms notify: the configured one, or one the
// stack creates (an alarm that notifies nobody is not an alarm).
func alarmTopic(scope constructs.Construct, arn, name string) awssns.ITopic {
	if arn != "" {
		return awssns.Topic_FromTopicArn(scope, jsii.String("AlarmTopic"), jsii.String(arn))
	}
	t := awssns.NewTopic(scope, jsii.String("AlarmTopic"), &awssns.TopicProps{
		TopicName:   jsii.String(name),
		DisplayName: jsii.String("Autogate alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	suppress(t, "AwsSolutions-SNS2",
		"The topic carries only alarm state changes (alarm names and metric values, no secrets). CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, and a customer key would cost more than the topic; set alarmTopicArn to use an encrypted topic of your own.")
	return t
}

// notify makes an alarm notify topic on alarm and on recovery.
func notify(a awscloudwatch.Alarm, topic awssns.ITopic) {
	a.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
	a.AddOkAction(awscloudwatchactions.NewSnsAction(topic))
}
