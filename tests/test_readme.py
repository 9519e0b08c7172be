"""The README's Python cannot drift from the API: every block marked runnable is run as written and synthesized."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import cx_api
from cdk_nag import AwsSolutionsChecks
from inference_experiment_stopper import InferenceExperimentStopper

README = Path(__file__).parents[1] / "README.md"
BLOCK = re.compile(r"(?:<!-- (?P<mark>runnable|fragment) -->\n)?```python\n(?P<code>.*?)```", re.DOTALL)
STOPPER = "Custom::InferenceExperimentStop"


def python_blocks() -> list[tuple[str | None, str, int]]:
    """(mark, code, line) of each Python block in the README."""
    text = README.read_text()
    return [
        (match["mark"], match["code"], text.count("\n", 0, match.start("code")) + 1) for match in BLOCK.finditer(text)
    ]


RUNNABLE = [(code, line) for mark, code, line in python_blocks() if mark == "runnable"]


def test_every_python_block_says_whether_it_runs() -> None:
    unmarked = [line for mark, _, line in python_blocks() if mark is None]
    assert unmarked == [], f"README Python blocks at lines {unmarked} need <!-- runnable --> or <!-- fragment -->"
    assert len(RUNNABLE) >= 3  # the minimal app, the usage, your own function


@pytest.mark.parametrize(("code", "line"), RUNNABLE, ids=[f"line-{line}" for _, line in RUNNABLE])
def test_a_runnable_block_runs_as_written_and_synthesizes_a_stopper(code: str, line: int) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102 (the README's own code)

    outdir = Path(str(getattr(namespace["app"], "outdir")))  # noqa: B009 (an object the block made)
    templates = [json.loads(path.read_text()) for path in outdir.glob("*.template.json")]
    stoppers = [r for t in templates for r in t["Resources"].values() if r["Type"] == STOPPER]
    assert stoppers, f"the README block at line {line} synthesized no stopper"
    # What `cdk synth` would print as a WARNING or an error: a documented example synthesizes cleanly.
    messages = [
        f"{message.level.value} at {message.id}: {message.entry.data}"
        for stack in cx_api.CloudAssembly(str(outdir)).stacks_recursively
        for message in stack.messages
        if message.level != cx_api.SynthesisMessageLevel.INFO
    ]
    assert messages == [], f"the README block at line {line} synthesizes with {messages}"


def test_the_cdk_nag_2_line_the_readme_warns_against_fails_with_this_cdk() -> None:
    # GIVEN a stopper's app with cdk-nag added the cdk-nag 2 way, as an aspect
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Stack")
    InferenceExperimentStopper(stack, "Stop", experiment_name="my-shadow-test", model_variant_actions={"s": "Retain"})
    cdk.Aspects.of(app).add(AwsSolutionsChecks(app))  # type: ignore[arg-type]

    # WHEN it is synthesized THEN it fails as the README says (the README's cdk-nag 3 block is run above)
    with pytest.raises(RuntimeError, match=r"aspectApplication\.aspect\.visit is not a function"):
        app.synth()
    assert "aspectApplication.aspect.visit is not a function" in README.read_text()
