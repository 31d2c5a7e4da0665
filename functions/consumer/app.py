"""Lambda entry point: Powertools decorators and the dispatch on the event's shape."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from consumer.deadline import Deadline
from consumer.direct_job import handle_direct_job
from consumer.event_shape import EventShape, classify
from consumer.observability import logger, metrics, tracer
from consumer.processing import process_sqs_batch
from consumer.runtime import get_runtime


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: Any, context: LambdaContext) -> Any:
    deadline = Deadline(context.get_remaining_time_in_millis)
    shape = classify(event)
    runtime = get_runtime()
    if shape is EventShape.DIRECT_JOB:
        return handle_direct_job(event, context.aws_request_id, runtime, deadline)
    return process_sqs_batch(event, context, runtime, deadline)
