"""StopperFunction: the Lambda function the stoppers' custom resources call, with its role and log group."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from aws_cdk import Acknowledgment, Aws, BundlingOptions, Duration, Stack, Token, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, IConstruct

from inference_experiment_stopper._arns import endpoint_arn, endpoint_config_arn
from inference_experiment_stopper._asset import HANDLER_DIR, CopyBundling, asset_hash
from inference_experiment_stopper.guard import PromotionGuard

RUNTIME = lambda_.Runtime.PYTHON_3_14
# The function's timeout is the longest completion timeout plus this, for describing, pausing and answering.
TIMEOUT_MARGIN = Duration.minutes(1)
LAMBDA_MAX_TIMEOUT_SECONDS = 900
# How much longer than the function CloudFormation waits for an answer before failing the resource itself.
SERVICE_TIMEOUT_MARGIN = Duration.minutes(1)
MAX_SERVICE_TIMEOUT_SECONDS = 3600  # CloudFormation's limit for a custom resource
EXPERIMENT_ACTIONS = ["sagemaker:DescribeInferenceExperiment", "sagemaker:StopInferenceExperiment"]
# The experiment ARNs go into customer-managed policies of their own, packed by size: IAM allows 6,144
# characters per managed policy and 10 managed policies per role (inline policies share 10,240 characters,
# and aws-cdk's own overflow splitting cannot split one large statement).
MANAGED_POLICY_ROOM = 6_144 - 200  # less the document, the statement and its actions
MANAGED_POLICIES_PER_ROLE = 10
# An ARN's characters besides the name, on the long side: "arn:aws-us-gov:sagemaker:ap-southeast-4:" ...
ARN_OVERHEAD = len('"arn:aws-us-gov:sagemaker:ap-southeast-4:123456789012:inference-experiment/",')
UNRESOLVED_NAME_LENGTH = 120
# The first managed policy also holds the function's own statements (its stack, its log group, itself, and for a
# promotion guard CloudWatch's GetMetricData): about 750 characters with a guard for the default function (a
# 34-character construct path), and about two more for each further character of a function's path (two ARNs
# name it). This leaves room for paths of about 70 characters.
OWN_STATEMENTS_ROOM = 1000
# Why the construct acknowledges the compliance findings it does; the README's table repeats these.
ACKNOWLEDGED = {
    "AwsSolutions-IAM4": "In a VPC, Lambda creates the function's network interfaces with its role; their EC2 "
    "actions take no resource-level permissions, so AWS's AWSLambdaVPCAccessExecutionRole is used as published",
    "AwsSolutions-IAM5": "cloudwatch:GetMetricData supports no resource-level permissions, so IAM accepts only '*' "
    "for it; it is granted only to a function with a stopper that declares a promotion guard, in its own statement",
    "AwsSolutions-IAM5-DescribeAlarms": "cloudwatch:DescribeAlarms returns composite alarms only when it is allowed "
    "on '*' (CloudWatch API reference, DescribeAlarms), and cloudwatch:DescribeAlarmHistory returns a composite "
    "alarm's history only when it is allowed on '*' (CloudWatch API reference, DescribeAlarmHistory); an alarm "
    "imported by name may be a composite one. Granted so only where a guard's alarms include one that is not a "
    "metric alarm made in this app (the history only where that guard bakes), in its own statement",
    "AwsSolutions-IAM5-Endpoint": "The experiment's endpoint name (or roll_back_to's configuration name) is a token "
    "that names no CfnEndpoint (or CfnEndpointConfig) of this app, and SageMaker writes these ARNs in lower case, "
    "which a token cannot be turned into at synth: DescribeEndpoint (for a bake) and UpdateEndpoint (for "
    "roll_back_to) are allowed on the account's and region's endpoints (or endpoint configurations), only for a "
    "function whose stopper's guard declares a bake",
    "LambdaDLQ": "The function answers every event to CloudFormation itself, FAILED included, and async retries "
    "are off; a dead-letter queue would only store events with their pre-signed ResponseURL",
}


def service_timeout(completion_timeout: Duration) -> Duration:
    """How long CloudFormation waits for a stopper's answer: its completion timeout plus both margins, at most 1 h.

    The stopper's ServiceTimeout, and what bounds how long the function's async queue keeps its events.
    """
    seconds = completion_timeout.plus(TIMEOUT_MARGIN).plus(SERVICE_TIMEOUT_MARGIN).to_seconds()
    return Duration.seconds(min(seconds, MAX_SERVICE_TIMEOUT_SECONDS))


class StopperFunction(Construct):
    """The Lambda function that carries out stoppers' stops, with its role and its log group.

    A stack gets one by default, shared by every stopper in it that is given no ``function``. Make your own
    to configure it (log retention, a KMS key for the log group, a VPC, the architecture, reserved
    concurrency) and pass it to stoppers as ``function=``; each function's role is allowed only the
    experiments of its own stoppers.
    """

    DEFAULT_ID = "InferenceExperimentStopperFunction"

    @classmethod
    def default_for(cls, scope: Construct) -> StopperFunction:
        """The stack's default function, made on first use."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(cls.DEFAULT_ID)
        return existing if isinstance(existing, StopperFunction) else cls(stack, cls.DEFAULT_ID)

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_group_encryption_key: kms.IKey | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
        reserved_concurrent_executions: int | None = None,
    ) -> None:
        """Make a stop function.

        Args:
            scope: the parent construct (in the stack of the stoppers that use it).
            construct_id: the construct id.
            log_retention: how long the function's log group keeps its events. Default: one month.
            log_group_encryption_key: a KMS key to encrypt the log group with; a key made in this app is
                granted to CloudWatch Logs, an imported key's policy must allow it. Default: CloudWatch Logs'
                own encryption.
            vpc: run the function in this VPC; it must reach the SageMaker, CloudFormation, Lambda (to hand a
                long wait on) and S3 (answers) APIs, through VPC endpoints or a NAT. Default: no VPC.
            vpc_subnets: where in the VPC. Default: the VPC's private subnets.
            security_groups: the function's security groups in the VPC. Default: one allowing all egress.
            architecture: the processor it runs on (the code is pure Python). Default: ARM_64.
            reserved_concurrent_executions: concurrency reserved for the function, at least 1. Default: none
                reserved (it shares the account's unreserved concurrency).

        Raises:
            ValueError: for a log retention that is not a RetentionDays, a reserved concurrency below 1, or VPC
                settings without a VPC.
        """
        super().__init__(scope, construct_id)
        # Else jsii's TypeError names the LogGroup's own argument (retention), which the caller never wrote.
        if not isinstance(log_retention, logs.RetentionDays):
            raise ValueError(
                "log_retention must be an aws_logs.RetentionDays, such as logs.RetentionDays.ONE_MONTH; "
                f"got {log_retention!r}"
            )
        if reserved_concurrent_executions is not None and not (
            isinstance(reserved_concurrent_executions, int) and reserved_concurrent_executions >= 1
        ):
            raise ValueError(
                "reserved_concurrent_executions must be at least 1 (with 0 the function never runs and "
                f"CloudFormation waits for an answer that never comes); got {reserved_concurrent_executions!r}"
            )
        if vpc is None and (vpc_subnets is not None or security_groups is not None):
            raise ValueError("vpc_subnets and security_groups need a vpc; got them without one")
        self.log_group = logs.LogGroup(
            self, "LogGroup", retention=log_retention, encryption_key=log_group_encryption_key
        )
        if isinstance(log_group_encryption_key, kms.Key):
            log_group_encryption_key.grant_encrypt_decrypt(iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com"))
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Stops the stack's declared SageMaker inference experiments",
        )
        if vpc is not None:
            self._allow_network_interfaces()
        # The function's own needs: rollback detection reads this stack's status, a clean-up Delete lists the
        # stack's resources (is the experiment still named by a stopper that moved to a new logical id?), and it
        # writes its log group. In a customer-managed policy (no inline policy), which the first experiments share.
        self._policies = [
            iam.ManagedPolicy(
                self,
                "Policy1",
                description="What the stack's inference experiment stop function may do",
                statements=[
                    iam.PolicyStatement(
                        actions=["cloudformation:DescribeStacks", "cloudformation:ListStackResources"],
                        resources=[Aws.STACK_ID],
                    ),
                    iam.PolicyStatement(
                        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                        resources=[self.log_group.log_group_arn],
                    ),
                    # Every decision is announced on the account's default event bus, and on no other.
                    iam.PolicyStatement(
                        actions=["events:PutEvents"],
                        resources=[
                            Stack.of(self).format_arn(service="events", resource="event-bus", resource_name="default")
                        ],
                    ),
                ],
                roles=[self.role],
            )
        ]
        self._statement: iam.PolicyStatement | None = None
        self._room = MANAGED_POLICY_ROOM - OWN_STATEMENTS_ROOM
        self._allowed: dict[str, iam.ManagedPolicy] = {}
        self._longest_wait = Duration.seconds(0)
        self._reads_metrics = False
        self._guard_policy: iam.ManagedPolicy | None = None
        # The guard policy's statements, one per action (DescribeAlarms on "*" has one of its own).
        self._guard_statements: dict[str, iam.PolicyStatement] = {}
        self._alarms_anywhere: iam.PolicyStatement | None = None
        self._acknowledged_wildcards: set[str] = set()
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=architecture,
            handler="index.handler",
            code=lambda_.Code.from_asset(
                str(HANDLER_DIR),
                asset_hash=asset_hash(),
                exclude=["__pycache__", "*.pyc"],
                bundling=BundlingOptions(image=RUNTIME.bundling_image, local=CopyBundling()),
            ),
            role=self.role,
            log_group=self.log_group,
            memory_size=256,
            timeout=TIMEOUT_MARGIN,
            # CloudFormation invokes asynchronously; a retry of a timed-out event would answer it twice.
            retry_attempts=0,
            # Lambda keeps a throttled async event for up to 6 hours by default: none may run after CloudFormation
            # stopped waiting for it. The longest ServiceTimeout served, raised in serve().
            max_event_age=service_timeout(Duration.seconds(0)),
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=security_groups,
            reserved_concurrent_executions=reserved_concurrent_executions,
            description="InferenceExperimentStopper: stops SageMaker inference experiments as declared",
        )
        # A wait longer than one run goes on in the next: the function may invoke itself, and nothing else. In
        # its managed policy, which depends on the function (never the other way round) and which every stop
        # depends on.
        self._policies[0].add_statements(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])
        )
        self._acknowledge_what_is_by_design()
        event_invoke_config = self.function.node.find_child("EventInvokeConfig")
        self._event_invoke_config = cast(lambda_.CfnEventInvokeConfig, event_invoke_config.node.default_child)
        self._needs: list[IConstruct] = [self.role, self.log_group, self._policies[0], event_invoke_config]

    def _allow_network_interfaces(self) -> None:
        # Lambda makes the function's network interfaces with the function's own role. Their actions take no
        # resource-level permissions (DescribeNetworkInterfaces accepts only "*"): AWS's own policy for it.
        self.role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaVPCAccessExecutionRole]",
                reason=ACKNOWLEDGED["AwsSolutions-IAM4"],
            )
        )

    def _acknowledge_what_is_by_design(self) -> None:
        """Compliance-pack findings on this function that are its design, not a setting left undone."""
        for rule in ("HIPAA.Security-LambdaDLQ", "NIST.800.53.R5-LambdaDLQ"):
            Validations.of(self.function).acknowledge(
                Acknowledgment(id=f"{rule.split('-')[0]}::{rule}", reason=ACKNOWLEDGED["LambdaDLQ"])
            )

    def _allow_metric_reads(self) -> None:
        """Let a promotion guard read CloudWatch metrics: only for a function with a guarded stopper."""
        if self._reads_metrics:
            return
        self._reads_metrics = True
        # GetMetricData supports no resource-level permissions: IAM accepts only "*" for it. Its own statement,
        # in the first policy, whose room was kept for it.
        self._policies[0].add_statements(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))
        Validations.of(self._policies[0]).acknowledge(
            Acknowledgment(id="AwsSolutions::AwsSolutions-IAM5[Resource::*]", reason=ACKNOWLEDGED["AwsSolutions-IAM5"])
        )

    def _guard(self) -> iam.ManagedPolicy:
        """The policy of what promotion guards need beyond metrics (alarms, a rollback): made on first use."""
        if self._guard_policy is None:
            if len(self._policies) == MANAGED_POLICIES_PER_ROLE:
                raise ValueError(
                    f"The stoppers of {self.node.path} fill the {MANAGED_POLICIES_PER_ROLE} managed policies IAM "
                    "lets one role have, and a promotion guard needs one more; give some of them another "
                    "StopperFunction"
                )
            self._guard_policy = iam.ManagedPolicy(
                self,
                "GuardPolicy",
                description="What the stack's promotion guards may read and, to roll a promotion back, update",
                roles=[self.role],
            )
            self._needs.append(self._guard_policy)
        return self._guard_policy

    def _grant(self, action: str, resources: Sequence[str]) -> None:
        """Allow the action on these resources too, in the guard policy's one statement for it."""
        statement = self._guard_statements.get(action)
        if statement is None:
            statement = self._guard_statements[action] = iam.PolicyStatement(actions=[action])
            self._guard().add_statements(statement)
        statement.add_resources(*resources)

    def _allow_alarm_reads(self, alarms: Sequence[cloudwatch.IAlarm], *, bake: bool) -> None:
        """DescribeAlarms, and for a bake DescribeAlarmHistory, on the alarms' own ARNs or, for some, on *.

        On the ARNs where every alarm is a metric alarm made in this app; else on *.
        """
        actions = ["cloudwatch:DescribeAlarms", *(["cloudwatch:DescribeAlarmHistory"] if bake else [])]
        if all(isinstance(alarm, cloudwatch.Alarm) for alarm in alarms):
            for action in actions:
                self._grant(action, [alarm.alarm_arn for alarm in alarms])
            return
        # A composite alarm, or an imported one that may be composite: CloudWatch returns a composite alarm's state
        # and history only to a permission on "*". One statement of its own, whatever guards need it.
        if self._alarms_anywhere is None:
            self._alarms_anywhere = iam.PolicyStatement(actions=actions, resources=["*"])
            self._guard().add_statements(self._alarms_anywhere)
            Validations.of(self._guard()).acknowledge(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                    reason=ACKNOWLEDGED["AwsSolutions-IAM5-DescribeAlarms"],
                )
            )
        else:
            self._alarms_anywhere.add_actions(*actions)  # a later guard may bake where the first did not

    def _allow_bake(self, endpoint_name: str, roll_back_to: sagemaker.CfnEndpointConfig | str | None) -> None:
        """DescribeEndpoint on the experiment's endpoint; with roll_back_to, UpdateEndpoint on it and the config too.

        The bake judges the endpoint, the rollback updates it; each is named by its own ARN wherever the app knows it.
        """
        endpoint = self._arn_or_any("endpoint", endpoint_arn(self, endpoint_name))
        self._grant("sagemaker:DescribeEndpoint", [endpoint])
        if roll_back_to is not None:
            config = self._arn_or_any("endpoint-config", endpoint_config_arn(self, roll_back_to))
            self._grant("sagemaker:UpdateEndpoint", [endpoint, config])

    def _arn_or_any(self, resource: str, arn: str | None) -> str:
        """The ARN, or for a name known only at deploy the account's and region's resources of the kind, acknowledged.

        SageMaker writes these ARNs in lower case; a token's value cannot be lowered at synth.
        """
        if arn is not None:
            return arn
        stack = Stack.of(self)
        any_arn = stack.format_arn(service="sagemaker", resource=resource, resource_name="*")
        if resource not in self._acknowledged_wildcards:
            self._acknowledged_wildcards.add(resource)
            Validations.of(self._guard()).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{as_cdk_nag_shows(stack.resolve(any_arn))}]",
                    reason=ACKNOWLEDGED["AwsSolutions-IAM5-Endpoint"],
                )
            )
        return any_arn

    def serve(
        self,
        experiment_name: str,
        completion_timeout: Duration,
        *,
        reads_metrics: bool = False,
        guard: PromotionGuard | None = None,
        endpoint_name: str | None = None,
    ) -> list[IConstruct]:
        """Let the function stop this experiment and wait this long for it (and judge, bake and roll back its guard).

        Returns:
            What a custom resource calling the function must depend on, so that it all outlives every event
            (the Delete in a stack deletion included): the role, the policy naming this experiment, the log
            group and the async configuration (no retries, events no older than the longest ServiceTimeout).
            The function itself it reaches through its service token.

        Raises:
            ValueError: when the stack names more experiments than IAM lets one role be allowed, or for a guard's
                bake without the experiment's endpoint name.
        """
        if reads_metrics or (guard is not None and guard.thresholds):
            self._allow_metric_reads()
        if guard is not None and guard.alarms:
            self._allow_alarm_reads(guard.alarms, bake=guard.bake is not None)
        if guard is not None and guard.bake is not None:
            if endpoint_name is None:  # the stopper refuses such a bake first, naming its prop
                raise ValueError("a promotion guard's bake needs the experiment's endpoint name")
            self._allow_bake(endpoint_name, guard.roll_back_to)
        size = ARN_OVERHEAD + (UNRESOLVED_NAME_LENGTH if Token.is_unresolved(experiment_name) else len(experiment_name))
        policies = [self._allow(arn, size) for arn in self._arns(experiment_name)]
        if completion_timeout.to_seconds() > self._longest_wait.to_seconds():
            self._longest_wait = completion_timeout
            cfn_function = cast(lambda_.CfnFunction, self.function.node.default_child)
            # A longer wait goes on in further runs of the function, each handing it on to the next.
            cfn_function.timeout = min(completion_timeout.plus(TIMEOUT_MARGIN).to_seconds(), LAMBDA_MAX_TIMEOUT_SECONDS)
            # The service timeout grows with the completion timeout: the longest wait has the longest one.
            self._event_invoke_config.maximum_event_age_in_seconds = service_timeout(completion_timeout).to_seconds()
        return [*self._needs, *dict.fromkeys(policies)]

    def _arns(self, name: str) -> list[str]:
        stack = Stack.of(self)
        arn = stack.format_arn(service="sagemaker", resource="inference-experiment", resource_name=name)
        # SageMaker writes many resource ARNs in lower case (*unverified* for inference experiments): where the
        # name has capitals, both spellings are allowed, still only this one experiment.
        if Token.is_unresolved(name) or name == name.lower():
            return [arn]
        return [arn, stack.format_arn(service="sagemaker", resource="inference-experiment", resource_name=name.lower())]

    def _allow(self, arn: str, size: int) -> iam.ManagedPolicy:
        if arn in self._allowed:
            return self._allowed[arn]
        if self._statement is None or size > self._room:
            if self._statement is not None:  # the current policy is full: the next one
                if len(self._policies) + (self._guard_policy is not None) == MANAGED_POLICIES_PER_ROLE:
                    raise ValueError(
                        f"The stoppers of {self.node.path} name more inference experiments than IAM lets one role "
                        f"be allowed ({len(self._allowed)} ARNs fill its {MANAGED_POLICIES_PER_ROLE} managed "
                        "policies); give some of them another StopperFunction, or put them in another stack"
                    )
                self._policies.append(
                    iam.ManagedPolicy(
                        self,
                        f"Policy{len(self._policies) + 1}",
                        description="More SageMaker inference experiments the stack's stoppers may stop",
                        roles=[self.role],
                    )
                )
                self._room = MANAGED_POLICY_ROOM
            self._statement = iam.PolicyStatement(actions=EXPERIMENT_ACTIONS)
            self._policies[-1].add_statements(self._statement)
        self._statement.add_resources(arn)
        self._room -= size
        self._allowed[arn] = self._policies[-1]
        return self._policies[-1]


def as_cdk_nag_shows(value: object) -> str:
    """A resolved value as cdk-nag names it in a finding: references as <Id>, attributes as <Id.Attribute>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(as_cdk_nag_shows(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return str(value)
