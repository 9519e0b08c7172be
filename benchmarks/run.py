"""Benchmarks, side by side with the peer a user would otherwise pick, in one run: `make bench`.

The peer is the same stop declared with aws_cdk.custom_resources.AwsCustomResource (on_update and
on_delete = SageMaker stopInferenceExperiment, install_latest_aws_sdk=False, its policy scoped to the
experiment with from_sdk_calls). Writes BENCHMARKS.md at the repository's root. Nothing here is a test:
timings drift on shared machines, so ratios measured in the same run are the headline.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import custom_resources as cr

ROOT = Path(__file__).resolve().parents[1]
# As pytest's pythonpath, the construct (cdk/) included: a virtual environment made in another clone installs its
# own tree's construct, and this tree's is the one measured.
sys.path[:0] = [str(ROOT / folder) for folder in ("lambda/stop_inference_experiment", "benchmarks", "tests", "cdk")]

from cfn_lint_gate import cfn_lint  # noqa: E402
from iam_quota import (  # noqa: E402
    MANAGED_POLICIES_PER_ROLE,
    MANAGED_POLICY_LIMIT,
    ROLE_INLINE_POLICY_LIMIT,
    role_policies,
)
from inference_experiment_stopper import InferenceExperimentStopper  # noqa: E402
from inference_experiment_stopper._function import ARN_OVERHEAD, MANAGED_POLICY_ROOM  # noqa: E402
from polling import EARLY_SECONDS, SETTLED_SECONDS, STOP_TAKES, STOPPERS, Load, loads  # noqa: E402
from safe_promotion import safe_promotion_section  # noqa: E402
from shadow_test import shadow_test_section  # noqa: E402
from simulated import answer_delay  # noqa: E402

SIZES = (1, 10, 100)
SYNTH_RUNS = 5
IMPORT_RUNS = 15
GUARD_RUNS = 1000
ACTIONS = {"shadow": "Promote", "production": "Remove"}


def name(index: int) -> str:
    return f"shadow-test-{index:03d}"


def ours(stack: cdk.Stack, index: int) -> None:
    InferenceExperimentStopper(
        stack, f"Stop{index}", experiment_name=name(index), model_variant_actions=ACTIONS, reason="ends"
    )


def peer(stack: cdk.Stack, index: int) -> None:
    arn = stack.format_arn(service="sagemaker", resource="inference-experiment", resource_name=name(index))
    stop = cr.AwsSdkCall(
        service="SageMaker",
        action="stopInferenceExperiment",
        parameters={"Name": name(index), "ModelVariantActions": ACTIONS, "Reason": "ends"},
        physical_resource_id=cr.PhysicalResourceId.of(name(index)),
    )
    # Without on_create, AwsCustomResource runs on_update on Create and would stop the experiment at once.
    describe = cr.AwsSdkCall(
        service="SageMaker",
        action="describeInferenceExperiment",
        parameters={"Name": name(index)},
        physical_resource_id=cr.PhysicalResourceId.of(name(index)),
    )
    cr.AwsCustomResource(
        stack,
        f"Stop{index}",
        on_create=describe,
        on_update=stop,
        on_delete=stop,
        install_latest_aws_sdk=False,
        policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[arn]),
    )


APPROACHES: dict[str, Callable[[cdk.Stack, int], None]] = {"ours": ours, "peer": peer}


def synth(approach: str, count: int, outdir: str | None = None) -> tuple[float, dict[str, Any], Path]:
    context = {"aws:cdk:enable-asset-metadata": True}
    app = cdk.App(outdir=outdir, context=context)
    stack = cdk.Stack(app, f"Stoppers{count}")
    started = time.perf_counter()
    for index in range(count):
        APPROACHES[approach](stack, index)
    assembly = app.synth()
    elapsed = time.perf_counter() - started
    return elapsed, assembly.get_stack_by_name(stack.stack_name).template, Path(assembly.directory)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


@dataclass
class Scale:
    seconds: dict[str, dict[int, list[float]]]
    templates: dict[str, dict[int, dict[str, Any]]]


def measure_scale() -> Scale:
    synth("ours", 1)  # the first synth in a process pays for jsii's start-up
    seconds: dict[str, dict[int, list[float]]] = {a: {n: [] for n in SIZES} for a in APPROACHES}
    templates: dict[str, dict[int, dict[str, Any]]] = {a: {} for a in APPROACHES}
    for _ in range(SYNTH_RUNS):
        for count in SIZES:
            for approach in APPROACHES:  # alternating, so drift hits both alike
                elapsed, template, _ = synth(approach, count)
                seconds[approach][count].append(elapsed)
                templates[approach][count] = template
    return Scale(seconds, templates)


def function_count(template: dict[str, Any]) -> int:
    return sum(1 for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")


def scale_section(scale: Scale) -> Iterator[str]:
    yield "## 1. Scale of the declaration\n"
    yield (
        "Synth of one stack with N stoppers (distinct experiments), in process after jsii's start-up, "
        f"{SYNTH_RUNS} runs alternating ours and the peer: median (min-max) seconds. Template bytes as `cdk.out` "
        "writes them.\n"
    )
    yield "| N | synth s, ours | synth s, peer | ours/peer | template bytes, ours | peer | functions, ours | peer |"
    yield "|---:|---:|---:|---:|---:|---:|---:|---:|"
    for count in SIZES:
        s_ours, s_peer = scale.seconds["ours"][count], scale.seconds["peer"][count]
        t_ours, t_peer = scale.templates["ours"][count], scale.templates["peer"][count]
        yield (
            f"| {count} | {spread(s_ours)} | {spread(s_peer)} | "
            f"{statistics.median(s_ours) / statistics.median(s_peer):.2f} | "
            f"{len(json.dumps(t_ours, indent=1)):,} | {len(json.dumps(t_peer, indent=1)):,} | "
            f"{function_count(t_ours)} | {function_count(t_peer)} |"
        )
    first, last = SIZES[0], SIZES[-1]
    per = {
        a: (len(json.dumps(scale.templates[a][last], indent=1)) - len(json.dumps(scale.templates[a][first], indent=1)))
        / (last - first)
        for a in APPROACHES
    }
    ratio = per["ours"] / per["peer"]
    yield f"\nBytes per extra stopper: ours {per['ours']:,.0f}, peer {per['peer']:,.0f} (ratio {ratio:.2f}).\n"
    yield (
        "IAM: characters (white space excluded, as IAM counts) of the policies on the stop function's role. IAM's "
        f"quotas: {ROLE_INLINE_POLICY_LIMIT:,} for all inline policies of a role together, {MANAGED_POLICY_LIMIT:,} "
        f"per managed policy, {MANAGED_POLICIES_PER_ROLE} managed policies per role; a role over any of them fails "
        "at deploy. cfn-lint: errors + warnings on the template.\n"
    )
    yield "| N | IAM chars, ours | peer | ours fits? | peer fits? | cfn-lint, ours | peer |"
    yield "|---:|---|---|---|---|---:|---:|"
    for count in SIZES:
        p_ours, p_peer = (role_policies(scale.templates[a][count]) for a in APPROACHES)
        l_ours, l_peer = (len(cfn_lint(scale.templates[a][count])[0]) for a in APPROACHES)
        yield (
            f"| {count} | {p_ours} | {p_peer} | {'yes' if p_ours.fits else '**no**'} | "
            f"{'yes' if p_peer.fits else '**no**'} | {l_ours} | {l_peer} |"
        )
    slope = {
        a: (role_policies(scale.templates[a][last]).total - role_policies(scale.templates[a][first]).total)
        / (last - first)
        for a in APPROACHES
    }
    peer_fits = (
        int((ROLE_INLINE_POLICY_LIMIT - role_policies(scale.templates["peer"][first]).total) / slope["peer"]) + 1
    )
    per_policy = MANAGED_POLICY_ROOM // (ARN_OVERHEAD + len(name(0)))
    yield (
        f"\nEach extra stopper adds about {slope['ours']:.0f} IAM characters for ours (one more ARN, packed into the "
        f"construct's own managed policies of at most {MANAGED_POLICY_LIMIT:,} characters each) and "
        f"{slope['peer']:.0f} for the peer (one more inline policy per AwsCustomResource, all on the one singleton "
        f"role). With {len(name(0))}-character names the peer's deployment fails from about {peer_fits} stoppers in "
        f"one stack; ours fits {per_policy} experiments per managed policy, {per_policy * MANAGED_POLICIES_PER_ROLE} "
        "per role: more than one stack can hold (CloudFormation's 500 resources per stack stop it at 487 stoppers, "
        "tests/test_construct.py), and beyond IAM's quota it fails at synth "
        "with a clear error rather than at deploy. Intrinsics are resolved on the long side (partition "
        "`aws-us-gov`, region `ap-southeast-4`).\n"
    )
    yield (
        "cfn-lint counts leave out the W3005 that aws-cdk's own `lambda.Function` causes (a `DependsOn` on its role, "
        "redundant with its `GetAtt`), the one documented exception of the test suite, which applies the same gate.\n"
    )


def boto3_only_python(work: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", work / "venv"], check=True)
    python = work / "venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "boto3"], check=True)
    return python


def import_seconds(python: Path, code_root: Path, statement: str) -> list[float]:
    program = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(code_root)!r})\n"
        "started = time.perf_counter()\n"
        f"{statement}\n"
        "print(time.perf_counter() - started)\n"
    )
    env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    runs = []
    for _ in range(IMPORT_RUNS):
        # -B: Lambda's code root is read-only, so a cold start compiles the modules; no .pyc is left behind either.
        result = subprocess.run(
            [python, "-I", "-B", "-c", program], capture_output=True, text=True, check=True, env=env
        )
        runs.append(float(result.stdout) * 1000)
    return runs


def asset_of(outdir: Path, template: dict[str, Any], pick: Callable[[dict[str, Any]], bool]) -> Path:
    [function] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function" and pick(r)]
    return outdir / str(function["Metadata"]["aws:asset:path"])


def asset_size(asset: Path) -> tuple[int, int, int]:
    files = [path for path in asset.rglob("*") if path.is_file()]
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "code.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in files:
                zipped.write(path, path.relative_to(asset))
        zipped_bytes = archive.stat().st_size
    return len(files), sum(path.stat().st_size for path in files), zipped_bytes


def cold_start_and_assets_section(work: Path) -> Iterator[str]:
    _, template, outdir = synth("ours", 1, str(work / "ours.out"))
    our_asset = asset_of(outdir, template, lambda r: True)
    _, peer_template, peer_out = synth("peer", 1, str(work / "peer.out"))
    peer_asset = asset_of(peer_out, peer_template, lambda r: r["Properties"]["Runtime"].startswith("nodejs"))
    python = boto3_only_python(work)

    handler = import_seconds(python, our_asset, "import index")
    floor = import_seconds(python, our_asset, "import boto3")
    first_event = import_seconds(python, our_asset, "import index; index.services()")
    crhelper_default = import_seconds(
        python, our_asset, "import boto3; from crhelper import CfnResource; CfnResource(log_level='INFO')"
    )
    yield "## 2. Cold start\n"
    yield (
        f"Milliseconds to import, in a fresh process each time ({IMPORT_RUNS} processes, median (min-max)), with the "
        "bundled asset as the code root and a virtual environment holding only boto3 (what the Lambda runtime "
        "provides).\n"
    )
    yield "| what | ms | ratio to `import boto3` |"
    yield "|---|---:|---:|"
    base = statistics.median(floor)
    for label, runs in (
        ("`import boto3` alone (the floor)", floor),
        ("`import index` (the handler, crhelper included)", handler),
        (
            "`import index` + the first event's clients (sagemaker, cloudformation; lambda and cloudwatch on use)",
            first_event,
        ),
        ("for reference: crhelper's own `CfnResource()` (builds lambda, events, logs clients)", crhelper_default),
    ):
        yield f"| {label} | {spread(runs)} | {statistics.median(runs) / base:.2f} |"
    yield (
        "\nThe handler makes its clients on the first event, not at import; crhelper's default constructor would "
        "add three clients this function never uses.\n"
    )
    yield "## 3. Asset size\n"
    yield "The deployed code: files, bytes on disk, and bytes zipped (what Lambda receives).\n"
    yield "| asset | files | bytes | zipped bytes |"
    yield "|---|---:|---:|---:|"
    ours_size, peer_size = asset_size(our_asset), asset_size(peer_asset)
    yield "| ours: handler + crhelper (Python, boto3 from the runtime) | {:,} | {:,} | {:,} |".format(*ours_size)
    yield "| peer: AwsCustomResource handler (Node.js, SDK from the runtime) | {:,} | {:,} | {:,} |".format(*peer_size)
    yield f"\nRatio ours/peer, zipped: {ours_size[2] / peer_size[2]:.2f}.\n"


def answer_section() -> Iterator[str]:
    yield "## 4. Time to answer\n"
    yield (
        "A simulated promotion: the experiment is Stopping after the stop is accepted, Completed 2 minutes before T, "
        "and its endpoint serves the promoted shadow (`InService`) at T. The handler's real lifecycle code runs on a "
        "fake clock against a simulated SageMaker (a real botocore client, requests validated against the service "
        "model); a run of the function lasts at most 15 minutes, and a longer wait is handed on to the next run "
        "(1 s in Lambda's async queue). The figures are exact and, the poll's jitter being seeded, the same on every "
        "run. Delay = when CloudFormation "
        "gets the answer minus T (an Update; a Delete adds crhelper's 2 s `sleep_on_delete`). Completion timeout "
        "55 minutes.\n"
    )
    yield (
        "| T (min) | ours: delay after the endpoint serves (s) | ours: runs of the function (links) "
        "| ours: SageMaker calls | peer: answer relative to T (s) | peer: SageMaker calls |"
    )
    yield "|---:|---:|---:|---:|---:|---:|"
    for minutes in (5, 14, 30, 50):
        answer = answer_delay(minutes * 60)
        yield (
            f"| {minutes} | {answer.delay:.1f} | {answer.links} | {answer.sagemaker_calls} "
            f"| {-minutes * 60} (answers before the stop completes) | 1 |"
        )
    yield (
        "\nThe peer answers as soon as `StopInferenceExperiment` returns: CloudFormation carries on (dependents "
        "update, the stack finishes) while the promotion is still running, and a promotion that later fails goes "
        "unseen. Ours answers once the endpoint serves the promoted variant, and past 15 minutes it goes on in "
        "further runs of the same function, up to CloudFormation's hour.\n"
    )


def guard_section() -> Iterator[str]:
    yield "## 5. Cost of a promotion guard\n"
    yield (
        "The same simulated 5-minute promotion, declared without and with a `PromotionGuard` (latency p99 ratio, "
        "error rate, a one-day window) that the simulated metrics pass. Calls and time are counted exactly on the "
        "fake clock; the judging itself (building the queries, reading the figures, the verdict) is timed in "
        f"process, median of {GUARD_RUNS} runs.\n"
    )
    plain, guarded = answer_delay(300), answer_delay(300, guarded=True)
    yield "| declaration | SageMaker calls | CloudWatch calls | answer after the endpoint serves (s) | Decision |"
    yield "|---|---:|---:|---:|---|"
    for label, answer in (("no guard", plain), ("with a guard", guarded)):
        yield (
            f"| {label} | {answer.sagemaker_calls} | {answer.cloudwatch_calls} | {answer.delay:.1f} "
            f"| `{answer.decision}` |"
        )
    yield (
        f"\nExtra: {guarded.cloudwatch_calls} `GetMetricData` call (both variants, four metrics each, one period) and "
        f"{guarded.delay - plain.delay:+.1f} s on the simulated clock (the guard waits for nothing); judging takes "
        f"{judging_milliseconds():.3f} ms of CPU.\n"
    )


def judging_milliseconds() -> float:
    import metrics
    from properties import Guard

    guard = Guard("p99", 1000, "Fail", max_latency_ratio=1.1, max_error_rate=0.001)
    values = {"Latency": [28_000.0], "Invocations": [15_000.0], "Errors5xx": [3.0], "ModelErrors": [0.0]}
    results = [{"Id": f"{role}{name}", "Values": v} for role in ("shadow", "production") for name, v in values.items()]
    runs = []
    for _ in range(GUARD_RUNS):
        started = time.perf_counter()
        metrics.queries("endpoint", {"shadow": "shadow", "production": "production"}, "p99", 86400)
        metrics.judge(guard, metrics.figures(results, "shadow"), metrics.figures(results, "production"))
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def calls_per_stop(load: Load) -> str:
    low, high = min(load.calls), max(load.calls)
    return f"{low}" if low == high else f"{statistics.median(load.calls):.0f} ({low}-{high})"


def polling_section() -> Iterator[str]:
    minutes, early, settled = STOP_TAKES / 60, EARLY_SECONDS / 60, SETTLED_SECONDS / 60
    yield "## 6. Polling at scale\n"
    yield (
        f"N stoppers of one stack, deleted together: each one's experiment is Stopping for {minutes:.0f} minutes "
        "after its stop is accepted, then Completed. Each stopper is the handler's real lifecycle, links and all, on "
        "its own fake clock against its own simulated experiment (as in section 4), started at the instant "
        "CloudFormation sent the Delete; they do not interact (no throttling is simulated), so merging the times of "
        "their `DescribeInferenceExperiment` calls gives what SageMaker sees from all of them at once. All N start "
        "at the same instant and SageMaker answers at once: the worst case for a synchronized start (in a real "
        "deletion they start within a second or so of one another). **Today's** schedule: a poll 2 s after the "
        "stop, then each pause x1.5 up to 6 s, no jitter, starting over in each run of the function; it no longer "
        "exists in the code, so `benchmarks/polling.py` reproduces it and puts it in `waiting.Poller`'s place in "
        "the same handler. "
        f"**New**: `waiting.Poller` as it is, 2 s growing x1.5 to 6 s during the first {early:.0f} minutes after "
        "the event was sent, then to 15 s at most, each pause less up to 25 % at random; stopper i's jitter is "
        "`random.Random(i).random`, so the figures are measured and the same on every run.\n"
    )
    yield (
        "- calls per stop: `DescribeInferenceExperiment` calls of one stopper, from the Delete to its answer "
        "(median (min-max) over the N stoppers where they differ; each stopper also sends one "
        "`StopInferenceExperiment`);\n"
        "- busiest second: the most calls of all N stoppers together in any 1 s window (a sliding window: any start, "
        "not only whole seconds), so calls per second at the peak;\n"
        "- busiest 10 s: the most calls in any 10 s window, divided by 10 (calls per second);\n"
        f"- sustained: the calls from {early:.0f} minutes after the Delete until the experiments complete, divided "
        f"by those {minutes - early:.0f} minutes (calls per second);\n"
        f"- busiest 10 s after {settled:.0f} min: as above, counting only calls from {settled:.0f} minutes on (by "
        "then the new pause has grown to its 15 s cap);\n"
        "- worst delay: the longest, over the N stoppers, from the experiment's Completed to the handler's answer "
        "(crhelper then pauses its 2 s `sleep_on_delete` before sending a Delete's answer).\n"
    )
    yield (
        "| N | schedule | calls per stop | busiest second (calls/s) | busiest 10 s (calls/s) "
        f"| sustained after {early:.0f} min (calls/s) | busiest 10 s after {settled:.0f} min (calls/s) "
        "| worst delay (s) |"
    )
    yield "|---:|---|---:|---:|---:|---:|---:|---:|"
    measured = loads()
    for row, count in enumerate(STOPPERS):
        for schedule, label in (("today", "today's"), ("new", "new")):
            load = measured[schedule][row]
            yield (
                f"| {count} | {label} | {calls_per_stop(load)} | {load.peak_second} | {load.peak_ten:.1f} "
                f"| {load.sustained:.2f} | {load.settled_peak_ten:.1f} | {load.worst_delay:.1f} |"
            )
    today, new = measured["today"][-1], measured["new"][-1]
    hand_ons = ", ".join(f"{low:.0f}-{high:.0f} s" for low, high in new.hand_ons)
    yield (
        f"\nAt N = {new.stoppers}: {statistics.median(new.calls) / statistics.median(today.calls):.2f} times "
        f"today's calls per stop, and a sustained {new.sustained:.2f} calls/s against {today.sustained:.2f} "
        f"({new.sustained / today.sustained:.2f} times). The busiest second and the busiest 10 s are the Delete's "
        "own: each stopper reads the experiment, sends the stop and reads it again at once, then polls quickly "
        "while most stops end; jitter spreads the polls only as their pauses add up. Each stop took "
        f"{new.links} runs of the function; the new schedule's later runs started {hand_ons} after the Delete, and "
        f"its busiest 10 s after {settled:.0f} min starts at {new.settled_peak_at:.0f} s: every run reads the "
        "experiment once as it starts, so a hand-on adds one call per stopper, and the runs of a stack's stoppers "
        "end together. Today's schedule also starts over at 2 s in each run. The worst delay is where the last poll "
        "before Completed happens to fall: up to 6 s after it with today's pauses (the same for every stopper, as "
        "their polls fall on one grid), up to 15 s with the new.\n"
    )


def environment() -> Iterator[str]:
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    yield "## Machine\n"
    yield f"- {os.cpu_count()} cores, {platform.machine()}, {platform.platform()}"
    yield f"- Python {platform.python_version()}, Node {node}"
    packages = ("aws-cdk-lib", "jsii", "crhelper", "boto3", "botocore", "cfn-lint")
    yield "- " + ", ".join(f"{package} {version(package)}" for package in packages)
    yield f"- measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"


def main() -> None:
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # the venv's Node
    lines = [
        "# Benchmarks\n",
        "Written by `make bench` (`benchmarks/run.py`). Ours is `InferenceExperimentStopper`; the peer is the same",
        "stop declared with `aws_cdk.custom_resources.AwsCustomResource` (`on_update`/`on_delete` =",
        "`stopInferenceExperiment`, `install_latest_aws_sdk=False`, policy scoped with `from_sdk_calls`). Both are",
        "measured side by side in the same run; ratios are the headline, as absolute times drift on shared machines.\n",
    ]
    lines += environment()
    lines += scale_section(measure_scale())
    with tempfile.TemporaryDirectory() as folder:
        lines += cold_start_and_assets_section(Path(folder))
    lines += answer_section()
    lines += guard_section()
    lines += polling_section()
    lines += shadow_test_section()
    lines += safe_promotion_section()
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
