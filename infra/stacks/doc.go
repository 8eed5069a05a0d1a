// Package stacks builds the Autogate CDK app: one stack per configured
// cluster (named "Autogate-<cluster>", in the cluster's own account and
// region) and, when a manager is configured, one manager stack.
//
// It guarantees:
//   - every deployment model of DESIGN.md is the same [Cluster] construct with
//     a different [ClusterConfig]: gateways 1 or N, runners none, ecs, lambda or
//     both, and several clusters (optionally sharing a table) registered with a
//     manager;
//   - configuration is read from one YAML file ([LoadConfig]) and validated
//     before any construct is made; every error names the offending field by
//     its path in the file (for example "clusters[1].ecsRunner.maxTasks");
//   - IAM is least privilege per role: table access is limited to the
//     cluster's own partition keys ("<cluster>#*") through the
//     dynamodb:LeadingKeys condition, queue and secret access to the cluster's
//     own queues and secrets, KMS use to the cluster's own key under an
//     encryption context naming the cluster, and "*" resources appear only
//     for actions that have no resource-level permissions (each one
//     suppressed in cdk-nag with the reason);
//   - stored secrets are sealed under a KMS key per cluster (rotation on,
//     retained on update and delete), handed to every node that opens
//     secrets as AUTOGATE_KMS_KEY_ID; the legacy secret key is passed only
//     to a cluster that names one (secretKeySecret);
//   - nodes that run services get AUTOGATE_SHUTDOWN_GRACE derived from their
//     container's stop timeout ([ShutdownGrace]), and the ECS runner scales
//     on waiting plus in-flight messages per task;
//   - the stacks set only environment names the node's binary reads and every
//     name it requires, and each role grants only the SDK calls its node's
//     code makes: tests read the product's source for both, so either side
//     drifting fails them (product_test.go, deploy_test.go);
//   - the manager stack runs `autogate manager` the way a cluster runs its
//     gateways ([NewManager]: ECS service, active/standby on its table,
//     HTTPS load balancer, alarms); a cluster's manager credential reaches
//     its gateways as an ECS secret from Secrets Manager;
//   - cdk-nag's AwsSolutions pack runs on every stack ([Build]); a finding that
//     is neither fixed nor suppressed with a written reason makes synth fail.
//
// It does not deploy anything, look anything up in AWS at synth time (the
// availability zones come from cdk.json context or the cluster config), nor
// import any Autogate product package: it needs only the container image
// built by the repository's Dockerfile and the environment conventions of the
// autogate binary.
package stacks
