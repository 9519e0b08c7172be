"""Safe promotion (issue 15): what alarms, a bake and a rollback cost; judging a long window with a significance
test; and the asset and its import time against the handler before issue 15.

- The cost of alarms and a bake: guarded_promotion.py, the handler's real lifecycle, links and all, on the fake
  clock (as section 4) against tests/alarms_on_a_clock.py's doubles, every call counted from what they recorded;
  the calls per operation, when the answer comes after the bake's window, and a copy of the Update delivered
  mid-bake beside the first delivery. Exact figures, the same on every run (the poll's jitter is seeded).
- Judging: the one-sided Mann-Whitney U test of significance.py, and metrics.judge with Confidence set, on
  21,600 per-period values a side (15 days at 1-minute periods), CPU time in process; SciPy's
  `mannwhitneyu` beside it for reference (a test-only dependency, never in the asset).
- The asset: the handler of a commit before issue 15, bundled as the construct bundles it today (its modules and
  the same crhelper), against this tree's; sizes, and import times in fresh processes, alternating, so that drift
  hits both alike.
"""

from __future__ import annotations

import functools
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import metrics
import significance
from alarm_history import SETTLE_SECONDS
from guarded_promotion import (
    ALARMS,
    BAKE,
    BAKE_SECONDS,
    COMPLETION_TIMEOUT,
    FIRES_AFTER,
    FLAP_SECONDS,
    PROMOTION_SECONDS,
    ROLLBACK,
    Alarming,
    Promotion,
    at_minute_7,
    flapping,
    promote,
    quiet,
)
from properties import Guard
from simulated import ENDPOINT_UPDATE_SECONDS
from waiting import MAX_POLL_SECONDS

ROOT = Path(__file__).resolve().parents[1]
HANDLER = "lambda/stop_inference_experiment"
COPY_AT = 5  # the minute of the bake at which Lambda delivers a copy of the Update
# Commits before issue 15: the parent of its first commit (a2f3f74), and the end of issue 14.
BEFORE = (("2fb675c", "just before issue 15"), ("6f8a1cb", "issue 14 done"))
PERIODS = 15 * 24 * 60  # 15 days at 1-minute periods: the longest window, at the shortest period
JUDGE_RUNS = 15
IMPORT_RUNS = 15


@dataclass(frozen=True)
class Case:
    """One declaration of the table: its guard and its alarm."""

    label: str
    guard: dict[str, Any] | None
    alarm: Alarming = quiet
    flaps: bool = False  # the alarm is in ALARM only between two looks


@dataclass(frozen=True)
class Row:
    """A declaration, measured."""

    case: Case
    alone: Promotion  # the Update delivered once
    with_copy: Promotion | None  # the same, a copy delivered at minute COPY_AT of the bake (a bake only)


def measured() -> list[Row]:
    calm = promote(ROLLBACK)
    minute = FIRES_AFTER // 60
    cases = [
        Case("no guard", None),
        Case("one alarm, no bake", ALARMS),
        Case(f"{BAKE_SECONDS // 60}-minute bake, the alarm stays OK", ROLLBACK),
        Case(f"... the alarm fires at minute {minute}, no `roll_back_to`", BAKE, at_minute_7),
        Case(f"... the alarm fires at minute {minute}, `roll_back_to`", ROLLBACK, at_minute_7),
        Case(
            f"... in ALARM for {FLAP_SECONDS} s between two looks (minute {minute}), `roll_back_to`",
            ROLLBACK,
            flapping(calm),
            flaps=True,
        ),
    ]
    rows = []
    for case in cases:
        alone = promote(case.guard, case.alarm)
        if case.flaps and seen(alone):
            raise RuntimeError("a look saw the alarm that was to flap between two looks")
        bakes = case.guard is not None and "BakeSeconds" in case.guard
        with_copy = promote(case.guard, case.alarm, copy_at=alone.serving_at + COPY_AT * 60) if bakes else None
        rows.append(Row(case, alone, with_copy))
    return rows


def seen(promotion: Promotion) -> bool:
    """Whether a look found the alarm in ALARM."""
    fired = promotion.fired
    return fired is not None and any(fired <= look < fired + FLAP_SECONDS for look in promotion.looks)


CALLED = (
    "DescribeInferenceExperiment",
    "DescribeEndpoint",
    "DescribeAlarms",
    "DescribeAlarmHistory",
    "DescribeStacks",
    "UpdateEndpoint",
)


def signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def around(seconds: float) -> str:
    """Seconds from the window's end, in words."""
    return f"{abs(seconds):.1f} s {'before' if seconds < 0 else 'after'}"


def bake_cost() -> Iterator[str]:
    rows = measured()
    yield (
        f"A simulated {PROMOTION_SECONDS // 60}-minute promotion (as section 5) declared with a `PromotionGuard` of "
        f"one alarm, then with a {BAKE_SECONDS // 60}-minute bake: the alarm stays OK; it fires at minute "
        f"{FIRES_AFTER // 60} of the bake (and stays in ALARM), with and without `roll_back_to`; it is in ALARM for "
        f"{FLAP_SECONDS} s between two looks of the bake, from its minute {FIRES_AFTER // 60} on. The rollback's "
        f"endpoint update takes {ENDPOINT_UPDATE_SECONDS:.0f} s, as the promotion's. Completion timeout "
        f"{COMPLETION_TIMEOUT // 60} minutes, runs of 15 minutes. The handler's real lifecycle runs link by link on "
        "the fake clock (as section 4) against tests/alarms_on_a_clock.py's doubles (real botocore clients, every "
        "request validated against the service model); calls are counted from what the doubles recorded, for one "
        "delivery of the Update from CloudFormation's event to its answer, every link included.\n"
    )
    yield "| declaration | answer | links | " + " | ".join(f"`{operation}`" for operation in CALLED) + " |"
    yield "|---|---|---:|" + "---:|" * len(CALLED)
    for row in rows:
        [answer] = row.alone.answers
        calls = " | ".join(str(row.alone.calls[operation]) for operation in CALLED)
        yield f"| {row.case.label} | {answer.status} `{answer.decision}` | {answer.links} | {calls} |"
    yield from calls_said(rows)
    yield (
        "When the answer comes, in seconds after the end of the bake's window (the endpoint's `LastModifiedTime`, "
        f"when it began serving the promotion, plus {BAKE_SECONDS // 60} minutes) and after the alarm went to ALARM; "
        f"then the same Update with a copy delivered at minute {COPY_AT} of the bake, while the first delivery is "
        "baking (Lambda delivers an event at least once): each delivery carried out on its own, link by link, on one "
        "clock against the same AWS, the two taking turns as two execution environments would "
        "(`benchmarks/taking_turns.py`), each with its own seeded jitter.\n"
    )
    yield (
        "| bake | answer after the window's end (s) | after the alarm (s) | `UpdateEndpoint` after the alarm (s) "
        f"| with a copy at minute {COPY_AT}: the first delivery's answer after the end (s) | the copy's (s) "
        "| the copy's answer | `UpdateEndpoint` calls, both deliveries |"
    )
    yield "|---|---:|---:|---:|---:|---:|---|---:|"
    for row in rows:
        if row.with_copy is None:
            continue
        alone, both = row.alone, row.with_copy
        first, second = both.answers
        if (second.status, second.decision) == (first.status, first.decision):
            copied = "as the first's"
        else:
            copied = f"{second.status} `{second.decision}` (the first's: `{first.decision}`)"
        yield (
            f"| {row.case.label} | {alone.after_end():+.1f} | {signed(alone.after_alarm())} "
            f"| {signed(alone.rollback_after_alarm())} | {both.after_end(0):+.1f} | {both.after_end(1):+.1f} "
            f"| {copied} | {len(both.rollbacks)} |"
        )
    yield from times_said(rows)


def calls_said(rows: list[Row]) -> Iterator[str]:
    plain, alarmed, calm, failed, rolled, flapped = (row.alone.calls for row in rows)
    first_look = rows[2].alone.looks[0] - rows[2].alone.serving_at
    yield (
        f"\nAlarms before the stop: {alarmed['DescribeAlarms'] - plain['DescribeAlarms']} `DescribeAlarms` call, and "
        f"{alarmed['DescribeStacks'] - plain['DescribeStacks']} more `DescribeStacks` (the gate is asked before a "
        "guard reads, and again right before the stop). The bake is the wait itself: "
        f"{calm['DescribeEndpoint']} `DescribeEndpoint`: once the experiment has completed, to find the endpoint "
        "serving the promotion and give the window its start (its `LastModifiedTime`, "
        f"{first_look:.1f} s before that look: AWS's time, not the poll's), and once with the verdict, that the "
        "endpoint still serves it (a pass is judged by the configuration served); then "
        f"{calm['DescribeAlarms'] - alarmed['DescribeAlarms']} `DescribeAlarms` calls, one per look (at most "
        f"{MAX_POLL_SECONDS:.0f} s apart; the last is the verdict's, at the window's end plus {SETTLE_SECONDS:.0f} s). "
        "The experiment is not polled meanwhile, but each later run reads it as it starts "
        f"({calm['DescribeInferenceExperiment'] - alarmed['DescribeInferenceExperiment']} more "
        "`DescribeInferenceExperiment`: the bake outlasted the first run). `DescribeAlarmHistory` is read at the "
        "verdict only, for each alarm that changed state after the window's start: not where the alarm stays OK, "
        "not where a look sees it in ALARM (the bake fails at that look, "
        f"{failed['DescribeAlarms'] - alarmed['DescribeAlarms']} looks in), {flapped['DescribeAlarmHistory']} call "
        "(one page) where it was in ALARM only between two looks. A rollback is one `UpdateEndpoint`, right after "
        "the gate's `DescribeStacks` and `DescribeEndpoint`, then `DescribeEndpoint` at the poll's pace until the "
        f"endpoint serves production's configuration again: +{rolled['DescribeStacks'] - failed['DescribeStacks']} "
        f"`DescribeStacks` and +{rolled['DescribeEndpoint'] - failed['DescribeEndpoint']} `DescribeEndpoint` over "
        f"the update's {ENDPOINT_UPDATE_SECONDS:.0f} s.\n"
    )


def times_said(rows: list[Row]) -> Iterator[str]:
    calm, failed, rolled, flapped = (row.alone for row in rows if row.with_copy is not None)
    calm_copy, failed_copy, rolled_copy, flapped_copy = (row.with_copy for row in rows if row.with_copy is not None)
    yield (
        f"\nA bake that passes answers {around(calm.after_end())} its window's end: the pause before the verdict "
        f"is cut short to fall on the end plus `alarm_history.SETTLE_SECONDS` ({SETTLE_SECONDS:.0f} s, for "
        "CloudWatch to record what happened), and the verdict reads the window's history then. An alarm that a look "
        f"sees fails the bake at that look, {failed.after_alarm():.1f} s after it here: without `roll_back_to` the "
        f"Update is answered FAILED then, {around(failed.after_end())} the window's end; with it, "
        "`UpdateEndpoint` is sent at that look, and the answer comes once the endpoint serves production's "
        f"configuration again, {rolled.after_alarm():.1f} s after the alarm (the update's "
        f"{ENDPOINT_UPDATE_SECONDS:.0f} s and the next look). An alarm in ALARM only between two looks fails the bake "
        f"at the verdict, from CloudWatch's history: the rollback is sent {flapped.rollback_after_alarm():.1f} s after "
        f"the alarm, and the answer comes {around(flapped.after_end())} the window's end.\n"
    )
    apart = max(abs(p.answers[1].at - p.answers[0].at) for p in (failed_copy, rolled_copy))
    if calm_copy.after_end(0) == calm_copy.after_end(1):
        passed = f"at the same instant, {around(calm_copy.after_end())} the window's end"
    else:
        passed = (
            f"the first {around(calm_copy.after_end(0))} the window's end, the copy {around(calm_copy.after_end(1))} "
            "it (a copy whose verdict passes answers once the stack shows the first delivery's SUCCESS was taken, "
            "at its next look)"
        )
    if len(rolled_copy.rollbacks) == 1:
        once = "`UpdateEndpoint` is sent once, by the delivery that stopped: a copy judges the bake but never acts, "
        once += "and answers once the endpoint serves `roll_back_to`"
    else:
        once = f"`UpdateEndpoint` is sent {len(rolled_copy.rollbacks)} times: SageMaker refuses all but the first"
    yield (
        f"A copy delivered at minute {COPY_AT} of the bake reads the same window from the endpoint, and so judges as "
        f"the first delivery does: where the bake passes, both answer SUCCESS {passed} (before issue 20 a copy "
        "began a bake of its own from the experiment's `CompletionTime` and answered 30 s after the endpoint began "
        "serving, 10 minutes early). Where a look sees the alarm, each delivery fails at its own next look, at most "
        f"{apart:.1f} s apart here (the copy's looks have their own jitter), with the same answer; {once}.\n"
    )
    first, second = flapped_copy.answers
    earlier = "the copy's" if second.at < first.at else "the first delivery's"
    if seen(flapped_copy):
        yield (
            f"The alarm in ALARM between two of the first delivery's looks fell on one of the copy's: the copy saw it "
            "at that look and left the rollback to the first delivery, which found the alarm in CloudWatch's history "
            "at the verdict and rolled back; the copy answered once the endpoint served `roll_back_to`, "
            f"{around(flapped_copy.after_end(1))} the window's end, the first {around(flapped_copy.after_end(0))} it. "
            f"Both answered FAILED after the one rollback: the copy `{second.decision}`, the first "
            f"`{first.decision}`. CloudFormation keeps the first answer it gets, here {earlier}.\n"
        )
    else:
        yield (
            "The alarm in ALARM between two looks fell between the copy's looks too: both found it in the history at "
            "the verdict, the first delivery rolled back (the copy left it to it), and they answered "
            f"{around(flapped_copy.after_end(0))} and {around(flapped_copy.after_end(1))} the window's end.\n"
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
    assets["this tree"] = handler_at("", work / "now")
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
    now, before = "this tree", next(iter(assets))
    new = sorted({module.stem for module in assets[now].glob("*.py")} - {m.stem for m in assets[before].glob("*.py")})
    yield (
        f"\nAgainst {before}: zipped asset x{sizes[now][2] / sizes[before][2]:.2f} "
        f"({sizes[now][2] - sizes[before][2]:+,} bytes), `import index` "
        f"x{statistics.median(handler[now]) / statistics.median(handler[before]):.2f} (import times on a shared "
        f"machine spread widely: read the medians side by side). The new modules ({', '.join(new)}) are pure "
        "Python on the standard library and botocore, which the runtime provides; SciPy and NumPy would be "
        f"{scipy_bytes / sizes[now][1]:,.0f} times this asset on disk.\n"
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
