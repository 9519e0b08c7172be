"""The README's Python cannot drift from the API: every block marked runnable is run as written and synthesized."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

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
