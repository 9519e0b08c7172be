"""The one Lambda function per stack that every InferenceExperimentStopper's custom resource calls."""

from __future__ import annotations

from typing import cast

from aws_cdk import Aws, BundlingOptions, Duration, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from inference_experiment_stopper._asset import HANDLER_DIR, CopyBundling, asset_hash

RUNTIME = lambda_.Runtime.PYTHON_3_14
# The function's timeout is the longest completion timeout plus this, for describing, pausing and answering.
TIMEOUT_MARGIN = Duration.minutes(1)
EXPERIMENT_ACTIONS = ["sagemaker:DescribeInferenceExperiment", "sagemaker:StopInferenceExperiment"]
# The experiment ARNs go into customer-managed policies of their own, packed by size: IAM allows 6,144
# characters per managed policy and 10 managed policies per role (inline policies share 10,240 characters,
# and aws-cdk's own overflow splitting cannot split one large statement).
MANAGED_POLICY_ROOM = 6_144 - 200  # less the document, the statement and its actions
MANAGED_POLICIES_PER_ROLE = 10
# An ARN's characters besides the name, on the long side: "arn:aws-us-gov:sagemaker:ap-southeast-4:" ...
ARN_OVERHEAD = len('"arn:aws-us-gov:sagemaker:ap-southeast-4:123456789012:inference-experiment/",')
UNRESOLVED_NAME_LENGTH = 120


class StopFunction(Construct):
    """The stack's stop function, its role and its log group; found or made by `StopFunction.of`."""

    ID = "InferenceExperimentStopperFunction"

    @classmethod
    def of(cls, scope: Construct) -> StopFunction:
        """The stack's StopFunction, made on first use."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(cls.ID)
        return existing if isinstance(existing, StopFunction) else cls(stack, cls.ID)

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(self, "LogGroup", retention=logs.RetentionDays.ONE_MONTH)
        self._role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Stops the stack's declared SageMaker inference experiments",
        )
        # Rollback detection reads this stack's own status, nothing else.
        self._role.add_to_policy(
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID])
        )
        log_group.grant_write(self._role)
        self._policies: list[iam.ManagedPolicy] = []
        self._statement = iam.PolicyStatement(actions=EXPERIMENT_ACTIONS)
        self._room = 0
        self._allowed: dict[str, iam.ManagedPolicy] = {}
        self._longest_wait = Duration.seconds(0)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_asset(
                str(HANDLER_DIR),
                asset_hash=asset_hash(),
                exclude=["__pycache__", "*.pyc"],
                bundling=BundlingOptions(image=RUNTIME.bundling_image, local=CopyBundling()),
            ),
            role=self._role,
            log_group=log_group,
            memory_size=256,
            timeout=TIMEOUT_MARGIN,
            # CloudFormation invokes asynchronously; a retry of a timed-out event would answer it twice.
            retry_attempts=0,
            description="InferenceExperimentStopper: stops SageMaker inference experiments as declared",
        )
        self._needs: list[IConstruct] = [self._role, log_group, self.function.node.find_child("EventInvokeConfig")]

    def serve(self, experiment_name: str, completion_timeout: Duration) -> list[IConstruct]:
        """Let the function stop this experiment and wait this long for it.

        Returns:
            What a custom resource calling the function must depend on, so that it all outlives every event
            (the Delete in a stack deletion included): the role, the policy naming this experiment, the log
            group and the no-retry configuration. The function itself it reaches through its service token.

        Raises:
            ValueError: when the stack names more experiments than IAM lets one role be allowed.
        """
        size = ARN_OVERHEAD + (UNRESOLVED_NAME_LENGTH if Token.is_unresolved(experiment_name) else len(experiment_name))
        policies = [self._allow(arn, size) for arn in self._arns(experiment_name)]
        if completion_timeout.to_seconds() > self._longest_wait.to_seconds():
            self._longest_wait = completion_timeout
            cfn_function = cast(lambda_.CfnFunction, self.function.node.default_child)
            cfn_function.timeout = completion_timeout.plus(TIMEOUT_MARGIN).to_seconds()
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
        if size > self._room:
            if len(self._policies) == MANAGED_POLICIES_PER_ROLE:
                raise ValueError(
                    f"The stoppers in stack {Stack.of(self).stack_name} name more inference experiments than IAM "
                    f"lets one role be allowed ({len(self._allowed)} ARNs fill its {MANAGED_POLICIES_PER_ROLE} "
                    "managed policies); put some of them in another stack"
                )
            self._statement = iam.PolicyStatement(actions=EXPERIMENT_ACTIONS)
            self._policies.append(
                iam.ManagedPolicy(
                    self,
                    f"ExperimentsPolicy{len(self._policies) + 1}",
                    description="The SageMaker inference experiments the stack's stoppers may stop",
                    statements=[self._statement],
                    roles=[self._role],
                )
            )
            self._room = MANAGED_POLICY_ROOM
        self._statement.add_resources(arn)
        self._room -= size
        self._allowed[arn] = self._policies[-1]
        return self._policies[-1]
