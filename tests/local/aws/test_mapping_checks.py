"""What Lambda refuses in an SQS event source mapping, the local deploy refuses too."""

from __future__ import annotations

import pytest

from local.aws.deploy import DeployError, _check_batching

SQS = "arn:aws:sqs:us-east-1:123456789012:source"


@pytest.mark.parametrize(
    ("batch_size", "window"), [(10, 0), (11, 1), (10_000, 300), (1, 0)], ids=str
)
def test_batch_sizes_lambda_accepts(batch_size: int, window: int) -> None:
    # Given a batch size and window Lambda accepts, When it is checked, Then no error is raised
    _check_batching(
        {"EventSourceArn": SQS, "BatchSize": batch_size, "MaximumBatchingWindowInSeconds": window}
    )


def test_a_batch_size_above_10_without_a_window_is_refused_as_lambda_refuses_it() -> None:
    # Given a batch size of 11 without a batching window, When it is checked
    # Then it is refused as Lambda refuses it
    with pytest.raises(DeployError, match="BatchSize 11 without a batching window"):
        _check_batching(
            {"EventSourceArn": SQS, "BatchSize": 11, "MaximumBatchingWindowInSeconds": 0}
        )
