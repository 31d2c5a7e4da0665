"""Structured logs of the local system: `time level logger message key=value ...`.

Fields travel in `extra={"fields": {...}}`, so that log calls never format their own text.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TextIO


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


def configure(console: TextIO, log_file: Path | None = None) -> None:
    """Warnings and errors to the console; everything from INFO to the run's log file, which
    each run replaces, as it replaces the environments' logs."""
    formatter = KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    root = logging.getLogger("local")
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    console_handler = logging.StreamHandler(console)
    console_handler.setLevel(logging.WARNING)
    console_handler.setFormatter(formatter)
    root.addHandler(console_handler)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
