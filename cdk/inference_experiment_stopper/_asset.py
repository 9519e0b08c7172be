"""The handler asset: where it lives, how it is bundled without Docker, and its rules module for synth-time checks."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsii
from aws_cdk import DockerImage, ILocalBundling

# Installed from a wheel, the handler ships inside the package; in a checkout it is the repository's lambda/.
_PACKAGED_HANDLER = Path(__file__).parent / "_handler"
_SOURCE_HANDLER = Path(__file__).resolve().parents[2] / "lambda" / "stop_inference_experiment"
HANDLER_DIR = _PACKAGED_HANDLER if _PACKAGED_HANDLER.is_dir() else _SOURCE_HANDLER


def handler_files() -> list[Path]:
    return sorted(HANDLER_DIR.glob("*.py"))


def load_handler_module(name: str) -> ModuleType:
    """One of the handler's own modules, loaded from the asset folder (the handler never imports the construct)."""
    qualified = f"inference_experiment_stopper._asset_{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, HANDLER_DIR / f"{name}.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"the handler's {name}.py is missing from {HANDLER_DIR}; reinstall the package")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


def bundle_handler(output_dir: Path) -> None:
    """Write the deployable code: the handler's modules and crhelper (with its licence), copied from this machine.

    crhelper is a dependency of this package, so it is installed wherever the construct is: copying it
    needs neither Docker nor a package registry. boto3 comes from the Lambda runtime.
    """
    for source in handler_files():
        shutil.copy2(source, output_dir / source.name)
    spec = importlib.util.find_spec("crhelper")
    if spec is None or spec.origin is None:
        raise RuntimeError("crhelper is not installed; reinstall cdk-inference-experiment-stopper")
    target = output_dir / "crhelper"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyi", "py.typed")
    shutil.copytree(Path(spec.origin).parent, target, ignore=ignore, dirs_exist_ok=True)
    for file in importlib.metadata.distribution("crhelper").files or []:
        if file.name in ("LICENSE", "NOTICE"):
            shutil.copy2(Path(str(file.locate())), target / file.name)


@jsii.implements(ILocalBundling)
class CopyBundling:
    """Local bundling: runs on the synthesizing machine, so no Docker image is ever pulled."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        bundle_handler(Path(output_dir))
        return True


def asset_hash() -> str:
    # The source is the handler plus the crhelper release that bundling copies in.
    digest = hashlib.sha256(importlib.metadata.version("crhelper").encode())
    for source in handler_files():
        digest.update(source.name.encode() + source.read_bytes())
    return digest.hexdigest()
