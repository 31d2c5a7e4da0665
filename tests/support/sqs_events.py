"""Lambda's SQS event, built from messages really received from a (moto) queue.

The local system's event source mapping builds its events with the same function.
"""

from local.lambda_sqs_event import lambda_sqs_event

__all__ = ["lambda_sqs_event"]
