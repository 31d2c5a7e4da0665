"""What an execution environment finds on disk: the deployed code, its layers, the runtime's SDK.

The function's code and layers are the packages the stack deployed, fetched back from the
emulator's S3 and unpacked as Lambda unpacks them (the function into the task root, every layer
into one /opt, later layers over earlier ones). The Python runtime also ships boto3 with its
dependencies; here they are linked from this interpreter's environment into a folder of their own.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from local.aws.deploy import DeployedFunction, DeployedStack, S3Location
from local.aws.emulator import Emulator
from local.shared.paths import ROOT

# The SDK the Lambda Python runtime includes.
RUNTIME_SDK = "boto3"
# Unpacked packages, by content, shared by every local run of this checkout.
CODE_CACHE = ROOT / ".aws-sam" / "local-cache" / "code"


@dataclass(frozen=True)
class CodePaths:
    task_root: Path
    opt: Path
    runtime_packages: Path


def install_code(
    emulator: Emulator, deployed: DeployedStack, root: Path, cache: Path = CODE_CACHE
) -> CodePaths:
    """The consumer's code (the function the source queue's mapping invokes)."""
    return _install(emulator, deployed.function_code, deployed.layers, root, cache)


def install_function_code(
    emulator: Emulator, function: DeployedFunction, root: Path, cache: Path = CODE_CACHE
) -> CodePaths:
    """Any function's code and layers (functions with the same package share its read-only
    folder, as their code is the same content)."""
    return _install(emulator, function.code, function.layers, root, cache)


def _install(
    emulator: Emulator,
    code: S3Location,
    layers: list[tuple[str, S3Location]],
    root: Path,
    cache: Path,
) -> CodePaths:
    """The deployed function and layers, unpacked; each package once per content: its S3 key
    carries the archive's hash, and an unpacked folder of that key is used as it is (the
    environments only read it, as Lambda's /var/task and /opt are read-only)."""
    s3 = emulator.client("s3")

    def unpacked(locations: list[S3Location]) -> Path:
        key = "+".join(Path(location.key).stem for location in locations)
        folder = cache / hashlib.sha256(key.encode()).hexdigest()[:24]
        if folder.is_dir():
            return folder
        partial = Path(tempfile.mkdtemp(prefix="unpacking-", dir=_made(cache)))
        for location in locations:  # later layers over earlier ones, as Lambda unpacks them
            archive = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
            with zipfile.ZipFile(io.BytesIO(archive)) as package:
                package.extractall(partial)
        try:
            partial.rename(folder)
        except OSError:  # another run unpacked the same content first: theirs is as good
            shutil.rmtree(partial, ignore_errors=True)
        return folder

    paths = CodePaths(
        task_root=unpacked([code]),
        opt=unpacked([content for _, content in layers]),
        runtime_packages=root / "runtime-packages",
    )
    link_distribution_closure(RUNTIME_SDK, paths.runtime_packages)
    return paths


def _made(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
