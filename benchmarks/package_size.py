"""What `sam build` produced, in bytes of files: the function's code and the layer, unzipped
(as Lambda's 250 MB limit counts them); and the share of the layer that the Python runtime
already ships (boto3 and what it requires, less what the layer's other packages require)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cold_start import distribution_closure, top_levels
from local.lambda_service.function_code import RUNTIME_SDK

# The layer's packages that need a distribution of the runtime's SDK closure themselves.
OTHER_DEPENDENCIES = ("requests",)


@dataclass(frozen=True)
class PackageSizes:
    function_bytes: int
    layer_bytes: int
    # The distributions of the runtime's SDK that only the SDK needs, and their bytes.
    runtime_sdk_distributions: list[str]
    layer_runtime_sdk_bytes: int


def measure(build_dir: Path) -> PackageSizes:
    function_dir = build_dir / "ConsumerFunction"
    layer_dir = build_dir / "DependenciesLayer"
    site = layer_dir / "python"
    sdk = distribution_closure(site, RUNTIME_SDK)
    for name in OTHER_DEPENDENCIES:
        sdk -= distribution_closure(site, name)
    return PackageSizes(
        function_bytes=_bytes(function_dir),
        layer_bytes=_bytes(layer_dir),
        runtime_sdk_distributions=sorted(sdk),
        layer_runtime_sdk_bytes=sum(_bytes(path) for path in top_levels(site, sdk)),
    )


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return [
        Path(folder) / name
        for folder, _, names in os.walk(root, followlinks=True)
        for name in names
    ]


def _bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in _files(root))
