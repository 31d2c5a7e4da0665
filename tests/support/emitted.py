"""What the function wrote to stdout: Powertools' JSON log lines and EMF metric documents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Emitted:
    logs: list[dict[str, Any]]
    metric_documents: list[dict[str, Any]]

    def metric_values(self, name: str) -> list[float]:
        values: list[float] = []
        for document in self.metric_documents:
            if name in document:
                value = document[name]
                values.extend(value if isinstance(value, list) else [value])
        return values

    def metric_total(self, name: str) -> float:
        return sum(self.metric_values(name))

    def logs_with(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.logs if message in str(line.get("message", ""))]


def parse_emitted(stdout: str) -> Emitted:
    logs: list[dict[str, Any]] = []
    metric_documents: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict):
            continue
        if "_aws" in document:
            metric_documents.append(document)
        elif "level" in document:
            logs.append(document)
    return Emitted(logs=logs, metric_documents=metric_documents)
