"""The public API: API.md and the committed baseline are what the code writes, and a breaking change is named."""

from __future__ import annotations

from pathlib import Path

import api_reference as api
import griffe
import pytest

REGENERATE = "run `make api` (tools/api_reference.py), which writes API.md and api/public-api.pyi"
# A small baseline of two exports, in the shape `make api` writes, for the rules of what breaks.
BEFORE = """
class Stopper(Construct):
    def __init__(
        self,
        scope: Construct,
        *,
        name: str,
        reason: str | None = None,  # Default: no reason.
        completion_timeout: Duration | None = None,  # Default: 10 minutes.
        stop_on_update: bool = True,  # Default: True.
    ) -> None: ...
    @property
    def status(self) -> str: ...


class Action(StrEnum):
    PROMOTE = 'Promote'
    RETAIN = 'Retain'
"""


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    return api.load()


def test_api_md_is_what_the_docstrings_write(package: griffe.Module) -> None:
    written = api.reference(package)

    assert api.API_MD.read_text() == written, (
        f"API.md is stale: {REGENERATE}.\n{api.difference(api.API_MD.read_text(), written)}"
    )


def test_every_export_is_in_the_reference_with_its_docstring(package: griffe.Module) -> None:
    reference = api.API_MD.read_text()
    for name, obj in api.exports(package):
        assert f"\n## {name}\n" in reference
        assert obj.docstring is not None, f"{name} has no docstring, so API.md says nothing about it"


def test_the_public_api_is_its_committed_baseline(package: griffe.Module) -> None:
    committed, current = api.BASELINE.read_text(), api.baseline(package)
    if committed == current:
        return
    breaking = "\n".join(f"  - {change.explanation}" for change in api.breaking_changes(committed, current))
    pytest.fail(
        "The public API is not its committed baseline, api/public-api.pyi.\n"
        f"Changes that break it (griffe's API-breakage check, and documented defaults):\n"
        f"{breaking or '  none: additions only'}\n"
        "If they are meant, name each breaking one in CHANGELOG.md under [Unreleased] / '### Upgrade notes' (what "
        f"changed, and what users do about it), then {REGENERATE}; it refuses while a breaking change is not "
        f"named.\n\n{api.difference(committed, current)}"
    )


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        pytest.param(
            "        reason: str | None = None,  # Default: no reason.\n",
            "",
            "`Stopper.__init__(reason)`: *Parameter was removed*",
            id="removed-parameter",
        ),
        pytest.param(
            "reason: str | None = None,",
            "reason: str,",
            "`Stopper.__init__(reason)`: *Parameter is now required*",
            id="parameter-made-required",
        ),
        pytest.param(
            "stop_on_update: bool = True,",
            "stop_on_update: bool = False,",
            "`Stopper.__init__(stop_on_update)`: *Parameter default was changed*: `True` -> `False`",
            id="changed-default",
        ),
        pytest.param(
            "# Default: 10 minutes.",
            "# Default: 30 minutes.",
            "`Stopper.__init__(completion_timeout)`: *Documented default was changed*: `10 minutes.` -> `30 minutes.`",
            id="changed-documented-default",
        ),
        pytest.param(
            "    @property\n    def status(self) -> str: ...\n",
            "",
            "`Stopper.status`: *Public object was removed*",
            id="removed-attribute",
        ),
        pytest.param(
            "    RETAIN = 'Retain'\n",
            "",
            "`Action.RETAIN`: *Public object was removed*",
            id="removed-enum-member",
        ),
    ],
)
def test_a_breaking_change_is_named(old: str, new: str, named: str) -> None:
    assert BEFORE.count(old) == 1

    changes = api.breaking_changes(BEFORE, BEFORE.replace(old, new))

    assert [change.explanation for change in changes] == [named]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            "        stop_on_update: bool = True,  # Default: True.\n",
            "        stop_on_update: bool = True,  # Default: True.\n"
            "        guard: Guard | None = None,  # Default: none.\n",
            id="added-optional-parameter",
        ),
        pytest.param(
            "    RETAIN = 'Retain'\n", "    RETAIN = 'Retain'\n    REMOVE = 'Remove'\n", id="added-enum-member"
        ),
        pytest.param(
            "\nclass Action(StrEnum):", "\nclass Guard:\n    pass\n\n\nclass Action(StrEnum):", id="added-export"
        ),
    ],
)
def test_an_addition_breaks_nothing(old: str, new: str) -> None:
    assert BEFORE.count(old) == 1

    assert api.breaking_changes(BEFORE, BEFORE.replace(old, new)) == []


def test_a_breaking_change_is_recorded_only_once_the_upgrade_notes_name_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: griffe.Module
) -> None:
    # GIVEN a baseline with a prop the code no longer has, and a CHANGELOG that names it only outside its notes
    current = api.baseline(package)
    head, stopper, rest = current.partition("class InferenceExperimentStopper(")
    old = head + stopper + rest.replace("        *,\n", "        *,\n        gone: int = 1,\n", 1)
    assert "gone" in old, "the baseline has no InferenceExperimentStopper with keyword-only props"
    for name, text in (("public-api.pyi", old), ("API.md", "")):
        (tmp_path / name).write_text(text)
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(
        "## [Unreleased]\n\n### Added\n- `InferenceExperimentStopper` lost `gone`\n\n### Upgrade notes\n- other\n"
    )
    monkeypatch.setattr(api, "BASELINE", tmp_path / "public-api.pyi")
    monkeypatch.setattr(api, "API_MD", tmp_path / "API.md")
    monkeypatch.setattr(api, "CHANGELOG", changelog)

    # WHEN `make api` runs THEN it writes API.md but keeps the old baseline
    assert api.main() == 1
    assert (tmp_path / "public-api.pyi").read_text() == old
    assert (tmp_path / "API.md").read_text() == api.reference(package)

    # AND once the upgrade notes name the export, it records the new baseline
    changelog.write_text("## [Unreleased]\n\n### Upgrade notes\n- `InferenceExperimentStopper`: `gone` is gone.\n")
    assert api.main() == 0
    assert (tmp_path / "public-api.pyi").read_text() == current


def test_the_readme_links_the_reference_and_says_what_is_public() -> None:
    readme = (api.ROOT / "README.md").read_text()
    versioning = readme.partition("## Releases and versioning")[2].split("\n## ", 1)[0]

    assert "[API.md](API.md)" in readme.partition("## Releases and versioning")[0]  # linked before it is explained
    for promise in ("`__all__`", "Semantic Versioning", "Upgrade notes", "api/public-api.pyi", "make api"):
        assert promise in versioning
