"""What the evidence says: a promotion guard reads both variants' metrics and decides the stop to send.

The window ends when CloudFormation sent the event, not when the function runs, so that every delivery of
one event (Lambda delivers at least once) reads the same window and reaches the same verdict.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any

import metrics
import rules
from aws import failure
from botocore.exceptions import BotoCoreError, ClientError
from outcomes import StopFailed

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment
    from mypy_boto3_sagemaker.type_defs import StopInferenceExperimentRequestTypeDef as StopRequest
    from properties import StopDeclaration

logger = logging.getLogger(__name__)

# GetMetricData pages: a window of 15 days at one period per query is one page; a few more are tolerated.
MAX_PAGES = 20


def decide(
    declaration: StopDeclaration,
    request_type: str,
    experiment: Experiment,
    cloudwatch: CloudWatchClient | None,
    sent: float,
) -> tuple[StopRequest, str]:
    """The stop this event sends, and its decision: the declared one, or, where a promotion guard fails, the fallback.

    Args:
        declaration: the event's declaration.
        request_type: Update or Delete.
        experiment: the latest DescribeInferenceExperiment answer.
        cloudwatch: the client to read metrics with (only a guard needs it).
        sent: when CloudFormation sent the event: the end of the guard's window.

    Raises:
        StopFailed: an Update whose guard failed with on_failure Fail, or whose metrics could not be read.
    """
    guard = declaration.guard
    if guard is None or not declaration.promotes:
        return declaration.stop_request(), "NoGuard"
    try:
        verdict = _judge(declaration, experiment, cloudwatch, sent)
    except StopFailed as error:
        if request_type != "Delete":
            raise
        verdict = metrics.Verdict(False, str(error))  # a Delete never fails on a guard: it falls back
    name = declaration.name
    if verdict.passed:
        logger.info("Promotion guard for %s passed: %s; promoting as declared", name, verdict.reason)
        return declaration.stop_request(), "Promoted"
    if request_type == "Update" and guard.on_failure == "Fail":
        logger.info("Promotion guard for %s failed: %s; nothing stopped", name, verdict.reason)
        raise StopFailed(f"Promotion guard for {name}: {verdict.reason}; nothing stopped")
    logger.warning("Promotion guard for %s failed: %s; falling back (the shadow is removed)", name, verdict.reason)
    return declaration.fallback_request(verdict.reason), f"FellBack: {verdict.reason}"


def _judge(
    declaration: StopDeclaration, experiment: Experiment, cloudwatch: CloudWatchClient | None, sent: float
) -> metrics.Verdict:
    """Read both variants' metrics over the window (every page of one GetMetricData query set), and judge them.

    Raises:
        StopFailed: where the metrics could not be read (after botocore's retries), for whatever reason.
    """
    guard = declaration.guard
    assert guard is not None  # noqa: S101 (only called with a guard)
    endpoint = experiment["EndpointMetadata"]["EndpointName"]
    [shadow] = [variant for variant, action in declaration.model_variant_actions.items() if action == "Promote"]
    production = experiment.get("ShadowModeConfig", {}).get("SourceModelVariantName")
    if production is None:
        others = [v["VariantName"] for v in experiment.get("ModelVariants", []) if v["VariantName"] != shadow]
        production = others[0] if others else shadow
    end = sent
    start = experiment.get("Schedule", {}).get("StartTime") or experiment.get("CreationTime")
    if guard.window_seconds is not None:
        span = float(guard.window_seconds)
    elif start is not None:
        span = min(max(end - start.timestamp(), 60.0), float(rules.MAX_WINDOW_SECONDS))
    else:
        return metrics.Verdict(
            False, "not enough evidence: the experiment's start is not known; give the guard a window"
        )
    period = metrics.period_for(span)
    if cloudwatch is None:
        raise StopFailed("No CloudWatch client to read the promotion guard's metrics with")
    request: dict[str, Any] = {
        "MetricDataQueries": metrics.queries(
            endpoint, {"shadow": shadow, "production": production}, guard.latency_statistic, period
        ),
        "StartTime": datetime.datetime.fromtimestamp(end - period, datetime.UTC),
        "EndTime": datetime.datetime.fromtimestamp(end, datetime.UTC),
    }
    pages = []
    try:
        for _ in range(MAX_PAGES):
            response = cloudwatch.get_metric_data(**request)
            pages.append(response["MetricDataResults"])
            if not response.get("NextToken"):
                break
            request["NextToken"] = response["NextToken"]
    except ClientError as error:
        raise failure(error, "cloudwatch:GetMetricData", endpoint) from error
    except BotoCoreError as error:  # no connection to CloudWatch (a VPC without its endpoint), a timeout
        raise StopFailed(f"cloudwatch:GetMetricData on {endpoint} could not be reached: {error}") from error
    results = metrics.merged(pages)
    return metrics.judge(guard, metrics.figures(results, "shadow"), metrics.figures(results, "production"))
