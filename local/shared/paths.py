"""Where the repository is: every room finds template.yaml, the build and its work folders here."""

from __future__ import annotations

from pathlib import Path

# local/shared/paths.py -> the repository's root.
ROOT = Path(__file__).resolve().parents[2]
