"""What the evidence says: a promotion guard reads its alarms and both variants' metrics and decides the stop.

Three outcomes: pass (promote as declared), fail and inconclusive (too few invocations, a figure missing or
incomplete, an alarm not found, a test that cannot decide); each of the last two does what the guard says for
it (OnFailure, OnInconclusive): fail the Update, or fall back. A Delete always falls back. An alarm in
INSUFFICIENT_DATA is no evidence: neither a failure nor a pass, so the guard's other checks decide, and a guard
none of whose checks gave evidence (alarms alone, all without data) is inconclusive.
The window ends when CloudFormation sent the event, so that every delivery of one event reads the same
window, and never starts before the experiment did: figures from before it belong to another test (a variant of
the same name on the same endpoint). Every decision is announced (announce.py).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import alarm_history
import metrics
import rules
from aws import failure
from botocore.exceptions import BotoCoreError, ClientError
from metrics import NO_EVIDENCE, Check, Verdict
from outcomes import StopFailed

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment
    from mypy_boto3_sagemaker.type_defs import StopInferenceExperimentRequestTypeDef as StopRequest
    from properties import Guard, StopDeclaration

logger = logging.getLogger(__name__)

# GetMetricData pages: a window of 15 days at one-minute periods is 21,600 datapoints a query; a few pages suffice.
MAX_PAGES = 20
# Told a decision that fails the Update (decision, action, verdict): no stop follows it, so it is announced here;
# a stop's decision is announced by the caller once the stop is accepted.
Announcer = Callable[[str, str, Verdict | None], None]


@dataclass(frozen=True)
class Decided:
    """The stop to send, its decision (Promoted, FellBack: <why>, Inconclusive: <why>, NoGuard) and the evidence."""

    request: StopRequest
    decision: str
    verdict: Verdict | None
    action: str


def decide(  # noqa: PLR0917 (a decision's whole context)
    declaration: StopDeclaration,
    request_type: str,
    experiment: Experiment,
    cloudwatch: CloudWatchClient | None,
    sent: float,
    announce: Announcer | None = None,
) -> Decided:
    """The stop this event sends, and its decision: the declared one, or where a guard fails or is inconclusive,
    the fallback.

    Args:
        declaration: the event's declaration.
        request_type: Update or Delete.
        experiment: the latest DescribeInferenceExperiment answer.
        cloudwatch: the client to read alarms and metrics with (only a guard needs it).
        sent: when CloudFormation sent the event: the end of the guard's window.
        announce: told a decision that fails the Update.

    Raises:
        StopFailed: an Update whose guard failed (or was inconclusive) with Fail, or whose evidence could not
            be read.
    """
    tell = announce or (lambda *_: None)
    guard = declaration.guard
    if guard is None or not declaration.promotes:
        return Decided(declaration.stop_request(), "NoGuard", None, "the declared stop was sent")
    try:
        verdict = judge(guard, declaration, experiment, cloudwatch, sent)
    except StopFailed as error:
        if request_type != "Delete":
            tell(f"Failed: {error}", "nothing stopped; the Update failed", None)
            raise
        verdict = metrics.inconclusive("evidence", str(error))  # a Delete never fails on a guard: it falls back
    name, why = declaration.name, verdict.reason
    if verdict.outcome == "pass":
        logger.info("Promotion guard for %s passed: %s; promoting as declared", name, why)
        return Decided(declaration.stop_request(), "Promoted", verdict, "the declared stop was sent")
    inconclusive = verdict.outcome == "inconclusive"
    decision = f"Inconclusive: {why}" if inconclusive else f"FellBack: {why}"
    choice = guard.on_inconclusive if inconclusive else guard.on_failure
    verb = "was inconclusive" if inconclusive else "failed"
    if request_type == "Update" and choice == "Fail":
        failed = decision if inconclusive else f"Failed: {why}"
        logger.info("Promotion guard for %s %s: %s; nothing stopped", name, verb, why)
        tell(failed, "nothing stopped; the Update failed", verdict)
        raise StopFailed(f"Promotion guard for {name}: {failed}; nothing stopped")
    logger.warning("Promotion guard for %s %s: %s; falling back (the shadow is removed)", name, verb, why)
    return Decided(
        declaration.fallback_request(why, inconclusive=inconclusive),
        decision,
        verdict,
        "the fallback stop was sent: the shadow removed, production kept",
    )


def judge(
    guard: Guard,
    declaration: StopDeclaration,
    experiment: Experiment,
    cloudwatch: CloudWatchClient | None,
    sent: float,
) -> Verdict:
    """The guard's verdict: its alarms' states, then (where it has thresholds) both variants' metrics.

    Raises:
        StopFailed: where the alarms or metrics could not be read (after botocore's retries), for whatever reason.
    """
    if cloudwatch is None:
        raise StopFailed("No CloudWatch client to read the promotion guard's evidence with")
    verdict = Verdict(())
    if guard.alarms:
        verdict += alarm_verdict(guard.alarms, alarm_states(cloudwatch, guard.alarms))
    if guard.thresholds:
        verdict += _metric_verdict(guard, declaration, experiment, cloudwatch, sent)
    return verdict


def alarm_states(cloudwatch: CloudWatchClient, names: tuple[str, ...]) -> dict[str, str]:
    """Each alarm's state (ALARM, OK, INSUFFICIENT_DATA), metric and composite alike; a name not found is absent.

    Raises:
        StopFailed: where the alarms could not be read.
    """
    return {name: str(alarm.get("StateValue")) for name, alarm in alarm_history.described(cloudwatch, names).items()}


def alarm_verdict(names: tuple[str, ...], states: dict[str, str]) -> Verdict:
    """ALARM fails and OK passes. INSUFFICIENT_DATA is no evidence: neither a failure nor a pass (issue 15's
    rule), so the other checks decide. An alarm not found is inconclusive: a guard that names an alarm CloudWatch
    does not know is misconfigured, not short of data."""
    checks = []
    for name in names:
        state = states.get(name)
        if state == "ALARM":
            checks.append(Check(f"alarm {name}", "fail", f"alarm {name} is in ALARM", {"state": state}))
        elif state == "OK":
            checks.append(Check(f"alarm {name}", "pass", f"alarm {name} is OK", {"state": state}))
        elif state is None:
            checks.append(Check(f"alarm {name}", "inconclusive", f"alarm {name} was not found", {"state": None}))
        elif state == "INSUFFICIENT_DATA":
            checks.append(Check(f"alarm {name}", NO_EVIDENCE, f"alarm {name} is {state}", {"state": state}))
        else:  # a state CloudWatch may add one day: not known to be a pass
            checks.append(Check(f"alarm {name}", "inconclusive", f"alarm {name} is {state}", {"state": state}))
    return Verdict(tuple(checks))


def _metric_verdict(
    guard: Guard, declaration: StopDeclaration, experiment: Experiment, cloudwatch: CloudWatchClient, sent: float
) -> Verdict:
    """Read both variants' metrics over the window (every page of one GetMetricData query set), and judge them.

    The window is the guard's (default: since the experiment started, at most 15 days), cut at the experiment's
    start where that is known.

    Raises:
        StopFailed: where the metrics could not be read (after botocore's retries), for whatever reason.
    """
    endpoint = experiment["EndpointMetadata"]["EndpointName"]
    [shadow] = [variant for variant, action in declaration.model_variant_actions.items() if action == "Promote"]
    production = experiment.get("ShadowModeConfig", {}).get("SourceModelVariantName")
    if production is None:
        others = [v["VariantName"] for v in experiment.get("ModelVariants", []) if v["VariantName"] != shadow]
        production = others[0] if others else shadow
    end = sent
    start = _started(experiment)
    if guard.window_seconds is not None:
        span = float(guard.window_seconds)
    elif start is not None:
        span = min(end - start, float(rules.MAX_WINDOW_SECONDS))
    else:
        return metrics.inconclusive(
            "window", "not enough evidence: the experiment's start is not known; give the guard a window"
        )
    period = metrics.period_for(span)
    if start is not None:
        # Figures from before the experiment are another test's (a variant of the same name on the same endpoint).
        period = min(period, metrics.period_since(start, end))
        if not period:
            return metrics.inconclusive(
                "window", "not enough evidence: the experiment had run less than a whole minute when the event was sent"
            )
    request: dict[str, Any] = {
        "MetricDataQueries": metrics.queries(
            endpoint,
            {"shadow": shadow, "production": production},
            guard.latency_statistic,
            period,
            guard.period_seconds if guard.confidence is not None else None,
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


def _started(experiment: Experiment) -> float | None:
    """When the experiment started (epoch seconds): the later of its scheduled start and its creation, where known.

    An experiment scheduled after it was created starts at its schedule; one created late, at its creation.
    """
    known = [experiment.get("Schedule", {}).get("StartTime"), experiment.get("CreationTime")]
    stamps = [moment.timestamp() for moment in known if moment is not None]
    return max(stamps) if stamps else None
