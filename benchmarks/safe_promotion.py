"""Safe promotion (issue 15): what alarms, a bake and a rollback cost; judging a long window with a significance
test; and the asset and its import time against the handler before issue 15.

- The cost of alarms and a bake: the handler's real lifecycle, links and all, on the fake clock (as section 4),
  against tests/alarms_on_a_clock.py's doubles: real botocore clients, every request validated against the
  service model, every call counted. Exact figures, the same on every run (the poll's jitter is seeded).
- Judging: the one-sided Mann-Whitney U test of significance.py, and metrics.judge with Confidence set, on
  21,600 per-period values a side (15 days at 1-minute periods), CPU time in process; SciPy's
  `mannwhitneyu` beside it for reference (a test-only dependency, never in the asset).
- The asset: the handler of a commit before issue 15, bundled as the construct bundles it today (its modules and
  the same crhelper), against this tree's; sizes, and import times in fresh processes, alternating, so that drift
  hits both alike.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lifecycle
import metrics
import significance
from alarms_on_a_clock import Alarm, AlarmsOnAClock, EndpointOnAClock, EventBus, SelfInvoker, StackInProgress
from outcomes import StopFailed
from properties import Guard
from simulated import (
    DELIVERY_SECONDS,
    ENDPOINT_UPDATE_SECONDS,
    EVENT,
    JITTER_SEED,
    RUN_SECONDS,
    Clock,
    seeded,
    sent_at,
    service_timeout,
)

ROOT = Path(__file__).resolve().parents[1]
HANDLER = "lambda/stop_inference_experiment"
PROMOTION_SECONDS = 300  # the experiment Completed 2 minutes before its endpoint serves the shadow, as in section 5
BAKE_SECONDS = 600
FIRES_AFTER = 7 * 60  # the alarm fires at minute 7 of the bake
COMPLETION_TIMEOUT = 3300
ALARM = "shadow-latency"
PRODUCTION_CONFIG = "shadow-test-endpoint-config-production"
# Commits before issue 15: the parent of its first commit (a2f3f74), and the end of issue 14.
BEFORE = (("2fb675c", "just before issue 15"), ("6f8a1cb", "issue 14 done"))
PERIODS = 15 * 24 * 60  # 15 days at 1-minute periods: the longest window, at the shortest period
JUDGE_RUNS = 15
IMPORT_RUNS = 15


@dataclass(frozen=True)
class Promotion:
    """One simulated guarded promotion, as CloudFormation and the AWS APIs saw it."""

    status: str
    decision: str
    links: int
    calls: dict[str, int]  # operation -> calls
    after_serving: float  # seconds from the endpoint serving the promotion to the answer
    after_alarm: float | None  # seconds from the alarm firing to the answer
    rollback_after_alarm: float | None  # seconds from the alarm firing to the UpdateEndpoint

    def count(self, *operations: str) -> int:
        return sum(self.calls.get(operation, 0) for operation in operations)


def promote(guard: dict[str, Any] | None, fires_after: float = math.inf) -> Promotion:
    """An Update that promotes, its endpoint serving the shadow PROMOTION_SECONDS after the stop; where the guard
    rolls back, the endpoint takes as long again (ENDPOINT_UPDATE_SECONDS) to serve production's configuration."""
    event: dict[str, Any] = json.loads(EVENT.read_text())
    clock = Clock(sent_at(event))
    experiment = EndpointOnAClock(
        clock,
        stop_takes=PROMOTION_SECONDS - ENDPOINT_UPDATE_SECONDS,
        endpoint_takes=ENDPOINT_UPDATE_SECONDS,
        update_takes=ENDPOINT_UPDATE_SECONDS,
    )
    alarms = AlarmsOnAClock(clock, [Alarm(ALARM, lambda: experiment.serving_at + fires_after)])
    stack, invoker, bus = StackInProgress(clock, "UPDATE_IN_PROGRESS"), SelfInvoker(clock), EventBus(clock)
    services = lifecycle.Services(
        experiment.client, stack.client, clock, invoker.client, alarms.client, seeded(JITTER_SEED), bus.client
    )
    properties = event["ResourceProperties"]
    properties["CompletionTimeoutSeconds"] = str(COMPLETION_TIMEOUT)
    properties["ServiceTimeout"] = str(service_timeout(COMPLETION_TIMEOUT))
    if guard is not None:
        properties["PromotionGuard"] = guard
    event["RequestId"] = str(uuid.uuid4())
    links, status = 0, "SUCCESS"
    while True:
        links += 1
        budget = lifecycle.Budget(time_left=RUN_SECONDS, function_arn="arn:aws:lambda:us-east-1:1:function:f")
        try:
            outcome = lifecycle.handle(event, services, budget)
        except StopFailed:
            status = "FAILED"
            break
        if not outcome.silent:
            break
        if len(invoker.payloads) != links:
            raise RuntimeError(f"run {links} neither answered nor handed the wait on")
        event = invoker.payloads[-1]
        clock.sleep(DELIVERY_SECONDS)
    calls: dict[str, int] = {}
    for double in (experiment.recorder, alarms.recorder, bus.recorder, stack.recorder, invoker.recorder):
        for request in double.requests:
            calls[request.operation] = calls.get(request.operation, 0) + 1
    fired = experiment.serving_at + fires_after
    updates = experiment.recorder.of("UpdateEndpoint")
    return Promotion(
        status,
        bus.details[-1]["decision"],  # the last decision announced
        links,
        calls,
        clock.time() - experiment.serving_at,
        clock.time() - fired if math.isfinite(fired) else None,
        updates[0].at - fired if updates else None,
    )


ALARMS = {"Alarms": [ALARM]}
BAKE = {**ALARMS, "BakeSeconds": str(BAKE_SECONDS)}
ROLLBACK = {**BAKE, "RollBackTo": PRODUCTION_CONFIG}


def bake_cost() -> Iterator[str]:
    yield (
        f"A simulated {PROMOTION_SECONDS // 60}-minute promotion (as section 5) declared with a `PromotionGuard` of "
        f"one alarm, then with a {BAKE_SECONDS // 60}-minute bake, then with an alarm that fires at minute "
        f"{FIRES_AFTER // 60} of the bake, with and without `roll_back_to` (the rollback's endpoint update takes "
        f"{ENDPOINT_UPDATE_SECONDS:.0f} s, as the promotion's). Completion timeout {COMPLETION_TIMEOUT // 60} minutes, "
        "runs of 15 minutes. Calls counted on the doubles; seconds on the simulated clock.\n"
    )
    yield (
        "| declaration | answer | links | DescribeInferenceExperiment | DescribeAlarms | UpdateEndpoint + "
        "DescribeEndpoint | PutEvents | answer after the endpoint serves (s) | alarm to rollback asked (s) "
        "| alarm to answer (s) |"
    )
    yield "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    rows = (
        ("no guard", None, math.inf),
        ("one alarm, no bake", ALARMS, math.inf),
        (f"alarm + {BAKE_SECONDS // 60}-minute bake, no alarm fires", BAKE, math.inf),
        (f"... alarm fires at minute {FIRES_AFTER // 60}, no `roll_back_to`", BAKE, FIRES_AFTER),
        (f"... alarm fires at minute {FIRES_AFTER // 60}, `roll_back_to`", ROLLBACK, FIRES_AFTER),
    )
    measured = []
    for label, guard, fires in rows:
        run = promote(guard, fires)
        measured.append(run)
        rollback = "-" if run.rollback_after_alarm is None else f"{run.rollback_after_alarm:.1f}"
        alarm = "-" if run.after_alarm is None else f"{run.after_alarm:.1f}"
        yield (
            f"| {label} | {run.status} `{run.decision}` | {run.links} | {run.count('DescribeInferenceExperiment')} "
            f"| {run.count('DescribeAlarms')} | {run.count('UpdateEndpoint', 'DescribeEndpoint')} "
            f"| {run.count('PutEvents')} | {run.after_serving:.1f} | {rollback} | {alarm} |"
        )
    plain, alarmed, baked = measured[0], measured[1], measured[2]
    reads = baked.count("DescribeInferenceExperiment") - alarmed.count("DescribeInferenceExperiment")
    yield (
        f"\nAlarms before the stop: {alarmed.count('DescribeAlarms')} `DescribeAlarms` call and "
        f"{alarmed.after_serving - plain.after_serving:+.1f} s. The bake is the wait itself: "
        f"{baked.count('DescribeAlarms') - alarmed.count('DescribeAlarms')} more `DescribeAlarms` calls (one per "
        f"look, at most 15 s apart) and {baked.after_serving - alarmed.after_serving:+.1f} s before the answer; "
        f"SageMaker is not polled meanwhile, but each later run reads the experiment as it starts ({reads} more "
        f"`DescribeInferenceExperiment` here: the bake outlasted the first run). An alarm that fires is seen at the "
        "next look; a rollback is one `UpdateEndpoint`, then `DescribeEndpoint` at the poll's pace until the "
        "endpoint serves production's configuration again.\n"
    )


def latencies(seed: int, scale: float) -> list[float]:
    """PERIODS per-period latency values (microseconds) around 30 ms, noisy, times `scale`."""
    rng = random.Random(seed)  # noqa: S311 (seeded samples, not a secret)
    return [scale * rng.lognormvariate(math.log(30_000), 0.25) for _ in range(PERIODS)]


def cpu_ms(work: Callable[..., object], *args: object) -> float:
    """Median CPU milliseconds of JUDGE_RUNS runs of `work(*args)`."""
    runs = []
    for _ in range(JUDGE_RUNS):
        started = time.process_time()
        work(*args)
        runs.append((time.process_time() - started) * 1000)
    return statistics.median(runs)


def judging() -> Iterator[str]:
    from scipy.stats import mannwhitneyu

    tested = Guard("Average", 1000, "Fail", max_latency_ratio=1.1, confidence=0.95, period_seconds=60)
    aggregate = Guard("Average", 1000, "Fail", max_latency_ratio=1.1)
    production = latencies(1, 1.0)
    yield (
        f"A window of 15 days at 1-minute periods: {PERIODS:,} per-period latency values a side (a seeded "
        f"log-normal around 30 ms; the shadow's compared with {tested.max_latency_ratio} x production's). CPU "
        f"milliseconds in process, median of {JUDGE_RUNS} runs. `metrics.judge` starts from GetMetricData's merged "
        "results: the figures read from them (every value converted), then the verdict; the aggregate comparison "
        "reads one value per figure.\n"
    )
    yield (
        "| shadow | Mann-Whitney U (significance.py) ms | SciPy `mannwhitneyu` ms | p-value | off SciPy's by | "
        "`metrics.judge`, Confidence 0.95 ms | verdict | `metrics.judge`, aggregate ms | verdict |"
    )
    yield "|---|---:|---:|---:|---:|---:|---|---:|---|"
    for label, shadow in (("as production, noisy", latencies(2, 1.0)), ("20 % slower", latencies(3, 1.2))):
        y = [tested.max_latency_ratio * value for value in production]  # type: ignore[operator]
        ours = significance.greater(shadow, y)
        theirs = mannwhitneyu(shadow, y, alternative="greater", method="asymptotic")
        with_series, aggregates = results_of(shadow, production, series=True), results_of(shadow, production)
        scipy_test = functools.partial(mannwhitneyu, alternative="greater", method="asymptotic")
        yield (
            f"| {label} | {cpu_ms(significance.greater, shadow, y):.1f} | {cpu_ms(scipy_test, shadow, y):.1f} "
            f"| {ours.p_value:.3g} | {abs(ours.p_value - float(theirs.pvalue)):.1e} "
            f"| {cpu_ms(judge, tested, with_series):.1f} | {judge(tested, with_series).outcome} "
            f"| {cpu_ms(judge, aggregate, aggregates):.3f} | {judge(aggregate, aggregates).outcome} |"
        )
    yield (
        "\nThe test ranks both samples with one sort (ties averaged) and, at this size, uses the normal "
        "approximation: it grows as n log n, and one judgement of the longest window costs under a tenth of a "
        "second of the function's time, once per stop.\n"
    )


def judge(guard: Guard, results: list[dict[str, Any]]) -> metrics.Verdict:
    return metrics.judge(guard, metrics.figures(results, "shadow"), metrics.figures(results, "production"))


def results_of(shadow: list[float], production: list[float], *, series: bool = False) -> list[dict[str, Any]]:
    """GetMetricData's results, merged: the aggregates over the window, and with `series` the per-period values."""
    results = []
    for role, values in (("shadow", shadow), ("production", production)):
        results += [
            {"Id": f"{role}Latency", "Values": [statistics.fmean(values)], "StatusCode": "Complete"},
            {"Id": f"{role}Invocations", "Values": [1_000_000.0], "StatusCode": "Complete"},
            {"Id": f"{role}ModelErrors", "Values": [10.0], "StatusCode": "Complete"},
        ]
        if series:
            results.append({"Id": f"{role}LatencySeries", "Values": list(values), "StatusCode": "Complete"})
    return metrics.merged([results])


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def handler_at(commit: str, folder: Path) -> Path:
    """The asset of `commit`'s handler, bundled as today's construct bundles (its modules, the same crhelper)."""
    from inference_experiment_stopper._asset import bundle_handler

    folder.mkdir(parents=True)
    bundle_handler(folder)
    if commit:
        for module in folder.glob("*.py"):
            module.unlink()
        for path in git("ls-tree", "--name-only", f"{commit}:{HANDLER}").split():
            if path.endswith(".py"):
                (folder / path).write_text(git("show", f"{commit}:{HANDLER}/{path}"))
    return folder


def asset_size(asset: Path) -> tuple[int, int, int]:
    files = [path for path in asset.rglob("*") if path.is_file()]
    archive = asset.parent / f"{asset.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in files:
            zipped.write(path, path.relative_to(asset))
    return len(files), sum(path.stat().st_size for path in files), archive.stat().st_size


def import_ms(python: Path, assets: dict[str, Path], statement: str) -> dict[str, list[float]]:
    """Milliseconds to run `statement` in a fresh process with each asset as the code root, alternating."""
    env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    runs: dict[str, list[float]] = {label: [] for label in assets}
    for _ in range(IMPORT_RUNS):
        for label, root in assets.items():
            program = (
                f"import sys, time\nsys.path.insert(0, {str(root)!r})\nstarted = time.perf_counter()\n"
                f"{statement}\nprint(time.perf_counter() - started)\n"
            )
            # -B: Lambda's code root is read-only, so a cold start compiles the modules; no .pyc is left behind.
            result = subprocess.run(
                [python, "-I", "-B", "-c", program], capture_output=True, text=True, check=True, env=env
            )
            runs[label].append(float(result.stdout) * 1000)
    return runs


def assets_against_before(work: Path) -> Iterator[str]:
    assets = {f"`{commit}` ({why})": handler_at(commit, work / commit) for commit, why in BEFORE}
    assets["this tree (issue 15)"] = handler_at("", work / "now")
    subprocess.run([sys.executable, "-m", "venv", work / "venv"], check=True)
    python = work / "venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "boto3"], check=True)
    handler = import_ms(python, assets, "import index")
    first_event = import_ms(python, assets, "import index; index.services()")
    yield (
        "The handler of each commit bundled as the construct bundles it today (its modules and the same crhelper "
        f"release), against this tree's. Import: milliseconds in a fresh process, {IMPORT_RUNS} processes each, "
        "the assets alternating, median (min-max), in a virtual environment holding only boto3.\n"
    )
    yield "| handler | modules | files | bytes | zipped bytes | `import index` ms | + the first event's clients ms |"
    yield "|---|---:|---:|---:|---:|---:|---:|"
    sizes = {}
    for label, asset in assets.items():
        sizes[label] = asset_size(asset)
        modules = len(list(asset.glob("*.py")))
        files, size, zipped = sizes[label]
        yield (
            f"| {label} | {modules} | {files:,} | {size:,} | {zipped:,} | {spread(handler[label])} "
            f"| {spread(first_event[label])} |"
        )
    scipy_files, scipy_bytes = installed("scipy", "numpy")
    yield f"| for reference: SciPy + NumPy as installed here | | {scipy_files:,} | {scipy_bytes:,} | | | |"
    now, before = "this tree (issue 15)", next(iter(assets))
    yield (
        f"\nAgainst {before}: zipped asset x{sizes[now][2] / sizes[before][2]:.2f} "
        f"({sizes[now][2] - sizes[before][2]:+,} bytes), `import index` "
        f"x{statistics.median(handler[now]) / statistics.median(handler[before]):.2f} (import times on a shared "
        "machine spread widely: read the medians side by side). The new modules (bake, announce, significance) are "
        f"pure Python on the standard library; SciPy and NumPy would be {scipy_bytes / sizes[now][1]:,.0f} times "
        "this asset on disk.\n"
    )


def installed(*packages: str) -> tuple[int, int]:
    """Files and bytes on disk of installed packages (their import folders and their bundled libraries)."""
    import importlib.util

    files = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        top = Path(spec.origin).parent
        files += [path for path in top.parent.glob(f"{package}*/**/*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def safe_promotion_section() -> Iterator[str]:
    yield "## 8. Safe promotion: alarms, bake and rollback; judging a long window; the asset\n"
    yield "### Cost of alarms and a bake\n"
    yield from bake_cost()
    yield "### Judging 15 days at 1-minute periods\n"
    yield from judging()
    yield "### The asset and its import against the handler before issue 15\n"
    with tempfile.TemporaryDirectory() as folder:
        yield from assets_against_before(Path(folder))
