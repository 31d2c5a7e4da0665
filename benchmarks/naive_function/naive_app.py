"""The naive handler the cold start is measured against: the least an SQS-to-HTTP function
does. It imports boto3 and requests, creates an SQS client and POSTs each record's body, with
no logging, metrics, tracing, backoff or partial batch response."""

import os
from typing import Any

import boto3
import requests

sqs = boto3.client("sqs")
session = requests.Session()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[str]]:
    for record in event["Records"]:
        session.post(os.environ["DOWNSTREAM_URL"], data=record["body"], timeout=10)
    return {"batchItemFailures": []}
