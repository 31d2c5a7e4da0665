"""What an execution environment finds on disk: the deployed code, its layers, the runtime's SDK.

The function's code and layers are the packages the stack deployed, fetched back from the
emulator's S3 and unpacked as Lambda unpacks them (the function into the task root, every layer
into one /opt, later layers over earlier ones). The Python runtime also ships boto3 with its
dependencies; here they are linked from this interpreter's environment into a folder of their own.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from local.deploy import DeployedFunction, DeployedStack, S3Location
from local.emulator import Emulator

# The SDK the Lambda Python runtime includes.
RUNTIME_SDK = "boto3"


@dataclass(frozen=True)
class CodePaths:
    task_root: Path
    opt: Path
    runtime_packages: Path


def install_code(emulator: Emulator, deployed: DeployedStack, root: Path) -> CodePaths:
    """The consumer's code (the function the source queue's mapping invokes)."""
    return _install(emulator, deployed.function_code, deployed.layers, root)


def install_function_code(emulator: Emulator, function: DeployedFunction, root: Path) -> CodePaths:
    """Any function's code, each in its own folder: functions share nothing on disk."""
    return _install(emulator, function.code, function.layers, root)


def _install(
    emulator: Emulator,
    code: S3Location,
    layers: list[tuple[str, S3Location]],
    root: Path,
) -> CodePaths:
    s3 = emulator.client("s3")

    def unpack(location: S3Location, into: Path) -> None:
        archive = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
        with zipfile.ZipFile(io.BytesIO(archive)) as package:
            package.extractall(into)

    paths = CodePaths(
        task_root=root / "task", opt=root / "opt", runtime_packages=root / "runtime-packages"
    )
    unpack(code, paths.task_root)
    paths.opt.mkdir(parents=True, exist_ok=True)
    for _, content in layers:
        unpack(content, paths.opt)
    link_distribution_closure(RUNTIME_SDK, paths.runtime_packages)
    return paths


def link_distribution_closure(name: str, into: Path) -> list[str]:
    """Symlink `name` and everything it requires (extras excluded) into `into`; return the
    distribution names linked."""
    into.mkdir(parents=True, exist_ok=True)
    linked: list[str] = []
    pending = [name]
    while pending:
        distribution = metadata.distribution(pending.pop())
        dist_name = distribution.metadata["Name"]
        if dist_name in linked:
            continue
        linked.append(dist_name)
        for top_level in _top_level_paths(distribution):
            target = into / top_level.name
            if not target.exists():
                target.symlink_to(top_level)
        for requirement in distribution.requires or []:
            if "extra ==" not in requirement:
                match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
                if match:
                    pending.append(match.group(0))
    return linked


def _top_level_paths(distribution: metadata.Distribution) -> set[Path]:
    """The importable folders and modules a distribution installed, and its metadata folder."""
    paths: set[Path] = set()
    for file in distribution.files or []:
        first = file.parts[0]
        if first in ("..", "__pycache__") or first.endswith(".data"):
            continue
        if len(file.parts) == 1 and not first.endswith(".py"):
            continue
        paths.add(Path(str(distribution.locate_file(first))).resolve())
    return paths
