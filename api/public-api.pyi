# The public API of inference_experiment_stopper: every name in its __all__, with its public members, signatures and
# documented defaults. Written by `make api` (tools/api_reference.py) and checked by tests/test_api.py:
# a change here is a change of the API, and one that breaks it is named in CHANGELOG.md. Not importable.


class DesiredState(StrEnum):
    COMPLETED = 'Completed'
    CANCELLED = 'Cancelled'


class GuardFailure(StrEnum):
    FAIL = 'Fail'
    FALL_BACK = 'FallBack'


class InferenceExperimentStopper(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_variant_actions: Mapping[str, ModelVariantAction | str],
        experiment_name: str | None = None,
        experiment: sagemaker.CfnInferenceExperiment | None = None,
        desired_model_variants: Sequence[ModelVariantConfig] | None = None,  # Default: SageMaker keeps each remaining variant's current infrastructure.
        desired_state: DesiredState | str | None = None,  # Default: SageMaker's default (Completed).
        reason: str | None = None,  # Default: no reason.
        stop_on_update: bool = True,  # Default: True.
        stop_on_delete: bool = True,  # Default: True.
        completion_timeout: Duration | None = None,  # Default: 30 minutes.
        function: StopperFunction | None = None,  # Default: the stack's default function, shared by every stopper given none.
        promotion_guard: PromotionGuard | None = None,  # Default: no guard (the function then gets no CloudWatch permission at all).
    ) -> None: ...
    @property
    def function(self) -> lambda_.IFunction: ...
    @property
    def log_group(self) -> logs.ILogGroup: ...
    @property
    def experiment_arn(self) -> str: ...
    @property
    def decision(self) -> str: ...
    @property
    def endpoint_status(self) -> str: ...
    @property
    def status(self) -> str: ...


class ModelVariantAction(StrEnum):
    PROMOTE = 'Promote'
    REMOVE = 'Remove'
    RETAIN = 'Retain'


class ModelVariantConfig:
    def __init__(
        self,
        model_name: str,
        variant_name: str,
        instance_type: str,
        instance_count: int,
    ) -> None: ...
    model_name: str
    variant_name: str
    instance_type: str
    instance_count: int
    def to_api(
        self,
    ) -> dict[str, Any]: ...


class PromotionGuard:
    def __init__(
        self,
        max_latency_ratio: float | None = None,  # Default: latency is not compared.
        latency_statistic: str = 'Average',  # Default: Average.
        max_error_rate: float | None = None,  # Default: not checked.
        max_error_rate_ratio: float | None = None,  # Default: not compared.
        min_invocations: int = 1000,  # Default: 1000.
        window: Duration | None = None,  # Default: from the experiment's start to the stop (at most 15 days).
        on_failure: GuardFailure | str = GuardFailure.FAIL,  # Default: FAIL.
        on_inconclusive: GuardFailure | str | None = None,  # Default: whatever ``on_failure`` is.
        alarms: Sequence[cloudwatch.IAlarm] | None = None,  # Default: none.
        bake: Duration | None = None,  # Default: no bake.
        roll_back_to: sagemaker.CfnEndpointConfig | str | None = None,  # Default: no rollback (a failed bake fails the Update, and the endpoint keeps serving the promoted model).
        confidence: float | None = None,  # Default: the aggregate comparison.
        period: Duration | None = None,  # Default: 5 minutes.
    ) -> None: ...
    max_latency_ratio: float | None
    latency_statistic: str
    max_error_rate: float | None
    max_error_rate_ratio: float | None
    min_invocations: int
    window: Duration | None
    on_failure: GuardFailure | str
    on_inconclusive: GuardFailure | str | None
    alarms: Sequence[cloudwatch.IAlarm] | None
    bake: Duration | None
    roll_back_to: sagemaker.CfnEndpointConfig | str | None
    confidence: float | None
    period: Duration | None
    @property
    def thresholds(self) -> bool: ...
    @property
    def roll_back_to_name(self) -> str | None: ...
    def to_api(
        self,
        seconds: Mapping[str, int | None],
    ) -> dict[str, Any]: ...


class ShadowTest(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        endpoint: sagemaker.CfnEndpoint | str,
        production: ShadowTestVariant,
        shadow: ShadowTestVariant,
        sampling_percentage: int = 100,  # Default: 100.
        end_time: dt.datetime | None = None,  # Default: SageMaker's own, 7 days after the test starts.
        data_capture: ShadowTestDataCapture | None = None,  # Default: no data capture.
        role: iam.IRole | None = None,  # Default: a role made for this test, allowed only what the README lists.
        on_end: ShadowTestEnd | None = None,  # Default: no end (see ``end_with``).
        stop_on_update: bool = True,  # Default: True.
        stop_on_delete: bool = True,  # Default: True.
        completion_timeout: Duration | None = None,  # Default: 30 minutes.
        function: StopperFunction | None = None,  # Default: the stack's default StopperFunction.
        dashboard: bool = True,  # Default: True.
    ) -> None: ...
    role: iam.IRole
    experiment: sagemaker.CfnInferenceExperiment
    @property
    def stopper(self) -> InferenceExperimentStopper | None: ...
    @property
    def dashboard(self) -> cloudwatch.Dashboard | None: ...
    @property
    def end(self) -> ShadowTestEnd | None: ...
    def end_with(
        self,
        end: ShadowTestEnd,
    ) -> InferenceExperimentStopper: ...
    def metric_model_latency(
        self,
        variant: str,
        *,
        statistic: str = 'Average',  # Default: Average.
        period: Duration | None = None,  # Default: 5 minutes.
    ) -> cloudwatch.Metric: ...
    def metric_invocations(
        self,
        variant: str,
        *,
        statistic: str = 'Sum',  # Default: Sum.
        period: Duration | None = None,  # Default: 5 minutes.
    ) -> cloudwatch.Metric: ...
    def metric_model_errors(
        self,
        variant: str,
        *,
        statistic: str = 'Sum',  # Default: Sum.
        period: Duration | None = None,  # Default: 5 minutes.
    ) -> cloudwatch.Metric: ...
    def metric_error_rate(
        self,
        variant: str,
        *,
        period: Duration | None = None,  # Default: 5 minutes.
    ) -> cloudwatch.MathExpression: ...


class ShadowTestDataCapture:
    def __init__(
        self,
        *,
        bucket: s3.IBucket,
        prefix: str,
        kms_key: kms.IKey | None = None,  # Default: the bucket's own encryption (the bucket's key, if it has one, is granted to the role).
    ) -> None: ...
    bucket: s3.IBucket
    prefix: str
    kms_key: kms.IKey | None


class ShadowTestEnd:
    def __init__(
        self,
        kind: str,
        guard: PromotionGuard | None = None,
        desired_state: DesiredState | str | None = None,
        reason: str | None = None,
        instance_type: str | None = None,
        instance_count: int | None = None,
    ) -> None: ...
    kind: str
    guard: PromotionGuard | None
    desired_state: DesiredState | str | None
    reason: str | None
    instance_type: str | None
    instance_count: int | None
    @classmethod
    def promote(
        cls,
        *,
        guard: PromotionGuard | None = None,  # Default: no guard.
        desired_state: DesiredState | str | None = None,  # Default: SageMaker's default (Completed).
        reason: str | None = None,  # Default: a reason naming the stack and the request.
        instance_type: str | None = None,  # Default: the shadow's.
        instance_count: int | None = None,  # Default: the shadow's.
    ) -> ShadowTestEnd: ...
    @classmethod
    def remove_shadow(
        cls,
        *,
        desired_state: DesiredState | str | None = None,  # Default: SageMaker's default (Completed).
        reason: str | None = None,  # Default: a reason naming the stack and the request.
    ) -> ShadowTestEnd: ...
    @classmethod
    def retain(
        cls,
        *,
        desired_state: DesiredState | str | None = None,  # Default: SageMaker's default (Completed).
        reason: str | None = None,  # Default: a reason naming the stack and the request.
    ) -> ShadowTestEnd: ...


class ShadowTestVariant:
    def __init__(
        self,
        *,
        model: sagemaker.CfnModel | str,
        instance_type: str,
        variant_name: str | None = None,  # Default: "production" for the production variant, "shadow" for the shadow.
        instance_count: int = 1,  # Default: 1.
    ) -> None: ...
    model: sagemaker.CfnModel | str
    instance_type: str
    variant_name: str | None
    instance_count: int


class StopperFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,  # Default: one month.
        log_group_encryption_key: kms.IKey | None = None,  # Default: CloudWatch Logs' own encryption.
        vpc: ec2.IVpc | None = None,  # Default: no VPC.
        vpc_subnets: ec2.SubnetSelection | None = None,  # Default: the VPC's private subnets.
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,  # Default: one allowing all egress.
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,  # Default: ARM_64.
        reserved_concurrent_executions: int | None = None,  # Default: none reserved (it shares the account's unreserved concurrency).
    ) -> None: ...
    DEFAULT_ID = 'InferenceExperimentStopperFunction'
    @classmethod
    def default_for(
        cls,
        scope: Construct,
    ) -> StopperFunction: ...
    log_group: logs.LogGroup
    role: iam.Role
    function: lambda_.Function
    def serve(
        self,
        experiment_name: str,
        completion_timeout: Duration,
        *,
        reads_metrics: bool = False,
        guard: PromotionGuard | None = None,
        endpoint_name: str | None = None,
    ) -> list[IConstruct]: ...
