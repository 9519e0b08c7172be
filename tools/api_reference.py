"""The public API, read from the code with griffe: API.md (the reference) and api/public-api.pyi (its baseline).

The public API is what the package's ``__all__`` exports, with their public members (no leading underscore).
``make api`` runs this file: it writes API.md from the docstrings and the baseline from the signatures, and
refuses to write a baseline that breaks the last one unless CHANGELOG.md's Unreleased "Upgrade notes" name
each broken export. tests/test_api.py fails while either file differs from what the code would write.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import griffe

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "inference_experiment_stopper"
SOURCE = ROOT / "cdk"
API_MD = ROOT / "API.md"
BASELINE = ROOT / "api" / "public-api.pyi"
CHANGELOG = ROOT / "CHANGELOG.md"
REGENERATE = "make api"
DEFAULT = re.compile(r"\bDefault:\s*(?P<text>.*)$", re.DOTALL)
Member = griffe.Object | griffe.Alias


def load(search_path: Path = SOURCE) -> griffe.Module:
    """The package as griffe reads it (statically) from `search_path`."""
    package = griffe.load(
        PACKAGE,
        search_paths=[str(search_path)],
        docstring_parser="google",
        # A Returns section is one description here, not "name (type): description" items.
        docstring_options={"returns_multiple_items": False, "returns_named_value": False},
        resolve_aliases=True,
    )
    if not isinstance(package, griffe.Module):
        raise TypeError(f"{PACKAGE} is not a package under {search_path}")
    return package


def exports(package: griffe.Module) -> list[tuple[str, griffe.Object]]:
    """Each name in ``__all__`` with the object it stands for, in ``__all__``'s order."""
    names = [str(name) for name in package.exports or []]
    return [(name, _target(package[name])) for name in names]


def public_members(obj: griffe.Object) -> list[griffe.Object]:
    """A class's own public members (``__init__`` included), in the order the source defines them."""
    members = [_target(member) for name, member in obj.members.items() if not name.startswith("_")]
    if "__init__" in obj.members:
        members.insert(0, _target(obj.members["__init__"]))
    return members


def _target(member: Member) -> griffe.Object:
    target = member.final_target if isinstance(member, griffe.Alias) else member
    if not isinstance(target, griffe.Object):
        raise TypeError(f"{member.path} stands for nothing griffe can read")
    return target


# The baseline -----------------------------------------------------------------------------------------------


def baseline(package: griffe.Module) -> str:
    """The public API as Python signatures: what a user's code may rely on, compared by griffe across versions."""
    lines = [
        f"# The public API of {PACKAGE}: every name in its __all__, with its public members, signatures and",
        "# documented defaults. Written by `make api` (tools/api_reference.py) and checked by tests/test_api.py:",
        "# a change here is a change of the API, and one that breaks it is named in CHANGELOG.md. Not importable.",
    ]
    for name, obj in exports(package):
        lines += ["", ""]
        if isinstance(obj, griffe.Class):
            lines += _class_baseline(obj)
        elif isinstance(obj, griffe.Function):
            lines += _function_baseline(obj, "")
        else:
            lines.append(f"{name}: {_annotation(obj) or 'Any'}")
    return "\n".join(lines) + "\n"


def _class_baseline(cls: griffe.Class) -> list[str]:
    bases = f"({', '.join(str(base) for base in cls.bases)})" if cls.bases else ""
    lines = [f"class {cls.name}{bases}:"]
    for member in public_members(cls):
        if isinstance(member, griffe.Function):
            lines += _function_baseline(member, "    ")
        elif isinstance(member, griffe.Attribute) and "property" in member.labels:
            lines += ["    @property", f"    def {member.name}(self){_returns(member.annotation)}: ..."]
        elif isinstance(member, griffe.Attribute):
            # An enum's members and a class's constants are API with their values; instance attributes by type.
            constant = "class-attribute" in member.labels and "dataclass" not in cls.labels
            value = f" = {member.value}" if constant and member.value is not None else ""
            annotation = _annotation(member)
            lines.append(f"    {member.name}{f': {annotation}' if annotation or not value else ''}{value}")
    return lines


def _function_baseline(function: griffe.Function, indent: str) -> list[str]:
    documented = _documented_defaults(function)
    decorators = [f"{indent}@{label}" for label in ("classmethod", "staticmethod") if label in function.labels]
    lines = [*decorators, f"{indent}def {function.name}("]
    for parameter, separator in _with_separators(function.parameters):
        if separator:
            lines.append(f"{indent}    {separator},")
        text = f"{indent}    {_star(parameter)}{parameter.name}"
        text += f": {parameter.annotation}" if parameter.annotation is not None else ""
        if parameter.default is not None:
            text += f" = {_default(function, parameter)}"
        text += ","
        if parameter.name in documented:
            text += f"  # Default: {documented[parameter.name]}"
        lines.append(text)
    lines.append(f"{indent}){_returns(function.returns)}: ...")
    return lines


def _with_separators(parameters: Iterable[griffe.Parameter]) -> list[tuple[griffe.Parameter, str]]:
    """Each parameter with the ``/`` or ``*`` that must stand before it."""
    kinds = griffe.ParameterKind
    out: list[tuple[griffe.Parameter, str]] = []
    previous = None
    for parameter in parameters:
        separator = ""
        if previous == kinds.positional_only and parameter.kind != kinds.positional_only:
            separator = "/"
        if parameter.kind == kinds.keyword_only and previous not in (kinds.keyword_only, kinds.var_positional):
            separator = "*" if not separator else "/, *"
        out.append((parameter, separator))
        previous = parameter.kind
    return out


def _star(parameter: griffe.Parameter) -> str:
    stars = {griffe.ParameterKind.var_positional: "*", griffe.ParameterKind.var_keyword: "**"}
    return stars.get(parameter.kind, "") if parameter.kind is not None else ""


def _default(function: griffe.Function, parameter: griffe.Parameter) -> str:
    """The default as written, or its value where it is written as a constant kept elsewhere (a plain value)."""
    static = str(parameter.default)
    try:
        ast.literal_eval(static)
    except (ValueError, SyntaxError):
        runtime = inspect.signature(_runtime(function)).parameters.get(parameter.name)
        value = None if runtime is None else runtime.default
        if isinstance(value, str | int | float | bool) and not isinstance(value, Enum):
            return repr(value)
    return static


def _runtime(obj: griffe.Object) -> Any:
    """The object itself, imported (griffe reads the source; a default kept in another module needs the value)."""
    value: Any = importlib.import_module(obj.module.path)
    for part in obj.path.removeprefix(f"{obj.module.path}.").split("."):
        value = getattr(value, part)
    return value


def _documented_defaults(function: griffe.Function) -> dict[str, str]:
    """What each parameter's docstring says happens when it is left out ("Default: ..."), in one line."""
    docstring = function.docstring
    if function.name == "__init__" and function.parent is not None and "dataclass" in function.parent.labels:
        docstring = function.parent.docstring  # a dataclass documents its fields in the class docstring
    defaults = {}
    for parameter in _parameters_section(docstring):
        match = DEFAULT.search(parameter.description)
        if match:
            defaults[parameter.name] = " ".join(match["text"].split())
    return defaults


def _parameters_section(docstring: griffe.Docstring | None) -> list[griffe.DocstringParameter]:
    if docstring is None:
        return []
    return [p for s in docstring.parsed if isinstance(s, griffe.DocstringSectionParameters) for p in s.value]


def _annotation(attribute: griffe.Object) -> str:
    """An attribute's annotation, or for ``self.x = SomeClass(...)`` the class it is made from ("" if neither)."""
    annotation = getattr(attribute, "annotation", None)
    value = getattr(attribute, "value", None)
    if annotation is None and isinstance(value, griffe.ExprCall):
        annotation = value.function
    return "" if annotation is None else str(annotation)


def _returns(annotation: object) -> str:
    return "" if annotation is None else f" -> {annotation}"


# Breaking changes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A change of the public API that breaks code written against the baseline, or changes what it gets."""

    export: str
    explanation: str


def breaking_changes(old: str, new: str) -> list[Change]:
    """What breaks between two baselines: griffe's API-breakage check, and every changed documented default."""
    with tempfile.TemporaryDirectory() as directory:
        packages = []
        for side, text in (("old", old), ("new", new)):
            folder = Path(directory) / side / PACKAGE
            folder.mkdir(parents=True)
            (folder / "__init__.py").write_text(text)
            packages.append(load(folder.parent))
        # The baselines define every export in one module, so griffe sees their ``__all__`` as the module's names.
        for package in packages:
            package.exports = [name for name in package.members if not name.startswith("_")]
        found = [
            Change(
                _export_of(breakage.obj.path),
                breakage.explain(style=griffe.ExplanationStyle.MARKDOWN).removeprefix("- "),
            )
            for breakage in griffe.find_breaking_changes(packages[0], packages[1])
        ]
    old_defaults, new_defaults = _defaults_in(old), _defaults_in(new)
    for key in sorted(old_defaults.keys() & new_defaults.keys()):
        if old_defaults[key] != new_defaults[key]:
            explanation = f"`{key}`: *Documented default was changed*: `{old_defaults[key]}` -> `{new_defaults[key]}`"
            found.append(Change(_export_of(key), explanation))
    return found


def _export_of(path: str) -> str:
    return path.removeprefix(f"{PACKAGE}.").split(".")[0].split("(")[0]


def _defaults_in(text: str) -> dict[str, str]:
    """'Export.function(parameter)' -> its documented default, from a baseline's ``# Default:`` comments."""
    defaults, export, function = {}, "", ""
    for line in text.splitlines():
        if match := re.match(r"(?:class|def) (\w+)", line):
            export, function = match[1], ""
        elif match := re.match(r"\s+def (\w+)", line):
            function = match[1]
        elif match := re.match(r"\s+\**(\w+)[:,= ].*#\s*Default:\s*(.*)$", line):
            defaults[f"{export}.{function}({match[1]})" if function else f"{export}({match[1]})"] = match[2]
    return defaults


def unnamed_in_changelog(changes: list[Change], changelog: str) -> list[Change]:
    """The breaking changes whose export the Unreleased section's "Upgrade notes" do not name."""
    unreleased = changelog.partition("## [Unreleased]")[2].split("\n## [", 1)[0]
    notes = unreleased.partition("### Upgrade notes")[2].split("\n### ", 1)[0]
    return [change for change in changes if not re.search(rf"\b{re.escape(change.export)}\b", notes)]


def difference(old: str, new: str) -> str:
    """A unified diff of two baselines."""
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), "committed baseline", "the code", lineterm="")
    return "\n".join(diff)


# The reference ----------------------------------------------------------------------------------------------


def reference(package: griffe.Module) -> str:
    """API.md: each export, its docstring, its signature and its parameters, attributes and methods."""
    names = [name for name, _ in exports(package)]
    lines = [
        "# API reference",
        "",
        f"Generated from the docstrings of `{PACKAGE}` by `{REGENERATE}` (`tools/api_reference.py`); the tests fail",
        "when it is stale. The public API is what the package exports, below; anything else (modules other than",
        f"`{PACKAGE}` itself, names with a leading underscore) may change in any release. See the README's",
        "[Releases and versioning](README.md#releases-and-versioning).",
        "",
        ", ".join(f"[`{name}`](#{name.lower()})" for name in names),
    ]
    for name, obj in exports(package):
        lines += ["", f"## {name}", ""]
        lines += _object_reference(obj)
    return "\n".join(lines).rstrip() + "\n"


def _object_reference(obj: griffe.Object) -> list[str]:
    kind = "enum" if any(str(base).endswith("Enum") for base in getattr(obj, "bases", [])) else obj.kind.value
    bases = getattr(obj, "bases", [])
    lines = [f"*{kind}*" + (f", a `{'`, `'.join(str(base) for base in bases)}`" if bases else ""), ""]
    lines += _text_of(obj.docstring)
    if isinstance(obj, griffe.Function):
        return lines + _function_reference(obj, obj.name, obj)
    init = obj.members.get("__init__")
    if isinstance(init, griffe.Function) and kind != "enum":
        lines += _function_reference(init, obj.name, obj if "dataclass" in obj.labels else init)
    members = [member for member in public_members(obj) if member.name != "__init__"]
    attributes = [m for m in members if isinstance(m, griffe.Attribute)]
    if attributes and kind == "enum":
        lines += ["", "| member | value | |", "|---|---|---|"]
        lines += [f"| `{m.name}` | `{m.value}` | {_cell(_summary(m))} |" for m in attributes]
    elif attributes:
        # A dataclass's fields are its parameters, documented once, above.
        fields = {p.name for p in _parameters_section(obj.docstring)} if "dataclass" in obj.labels else set()
        shown = [m for m in attributes if m.name not in fields]
        if shown:
            lines += ["", "| attribute | type | |", "|---|---|---|"]
            lines += [f"| `{m.name}` | {_cell(_type(m, obj))} | {_cell(_summary(m))} |" for m in shown]
    for method in (m for m in members if isinstance(m, griffe.Function)):
        lines += ["", f"### {obj.name}.{method.name}", ""]
        lines += _text_of(method.docstring)
        lines += _function_reference(method, f"{obj.name}.{method.name}", method)
    return lines


def _function_reference(function: griffe.Function, shown_as: str, documented_by: griffe.Object) -> list[str]:
    parameters = [p for p in function.parameters if p.name not in ("self", "cls")]
    signature = ", ".join(_parameter_text(function, p, separator) for p, separator in _with_separators(parameters))
    returns = _returns(None if function.name == "__init__" else function.returns)
    lines = ["", "```python", f"{shown_as}({signature}){returns}", "```"]
    descriptions = {p.name: p.description for p in _parameters_section(documented_by.docstring)}
    if parameters:
        lines += ["", "| parameter | type | |", "|---|---|---|"]
        for p in parameters:
            annotation = f"`{p.annotation}`" if p.annotation else ""
            lines.append(f"| `{p.name}` | {_cell(annotation)} | {_cell(descriptions.get(p.name, ''))} |")
    for section in documented_by.docstring.parsed if documented_by.docstring else []:
        if isinstance(section, griffe.DocstringSectionReturns):
            lines += ["", "**Returns:** " + " ".join(_prose(r.description) for r in section.value)]
        elif isinstance(section, griffe.DocstringSectionRaises):
            lines += ["", "**Raises:**", ""]
            lines += [f"- `{r.annotation}`: {_prose(r.description)}" for r in section.value]
    return lines


def _parameter_text(function: griffe.Function, parameter: griffe.Parameter, separator: str) -> str:
    text = f"{_star(parameter)}{parameter.name}"
    text += "" if parameter.default is None else f"={_default(function, parameter)}"
    return f"{separator}, {text}" if separator else text


def _text_of(docstring: griffe.Docstring | None) -> list[str]:
    """The docstring's prose (its sections other than Args, Returns and Raises), paragraph by paragraph."""
    if docstring is None:
        return []
    texts = [section.value for section in docstring.parsed if isinstance(section, griffe.DocstringSectionText)]
    paragraphs = [_prose(p) for text in texts for p in str(text).split("\n\n") if p.strip()]
    return [line for paragraph in paragraphs for line in (paragraph, "")][:-1]


def _summary(obj: griffe.Object) -> str:
    return " ".join(_text_of(obj.docstring))


def _type(attribute: griffe.Object, cls: griffe.Object) -> str:
    annotation = _annotation(attribute)
    value = getattr(attribute, "value", None)
    if not annotation and "class-attribute" in attribute.labels and "dataclass" not in cls.labels and value:
        return f"`= {value}`"  # a constant: its value says what it is
    return f"`{annotation}`" if annotation else ""


def _prose(text: str) -> str:
    """Docstring text on one line, in Markdown's spelling of inline code."""
    return " ".join(text.split()).replace("``", "`")


def _cell(text: str) -> str:
    return _prose(text).replace("|", "\\|")


def main() -> int:
    """`make api`: write API.md and the baseline, unless the baseline breaks without an upgrade note."""
    package = load()
    new = baseline(package)
    old = BASELINE.read_text() if BASELINE.exists() else ""
    unnamed = unnamed_in_changelog(breaking_changes(old, new), CHANGELOG.read_text()) if old else []
    API_MD.write_text(reference(package))
    if unnamed:
        print("API.md written; api/public-api.pyi NOT written: these changes break the public API, and CHANGELOG.md's")
        print("[Unreleased] section has no '### Upgrade notes' entry naming their export:")
        for change in unnamed:
            print(f"  - {change.explanation}")
        print(f"Name each there (what changed, what users do about it), then run `{REGENERATE}` again.")
        return 1
    BASELINE.parent.mkdir(exist_ok=True)
    BASELINE.write_text(new)
    print(f"Wrote {API_MD.name} and {BASELINE.parent.name}/{BASELINE.name}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(SOURCE))
    # jsii (imported with the package, for its defaults) runs on the venv's Node, as under make and pytest.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    sys.exit(main())
