"""Deploys and updates that keep messages: queues retained on replacement and deletion, queue
names that fit any legal stack name, and the parameter values CloudFormation would misjudge or
a standard queue would silently ignore refused before deploy (docs/deploy-safety.md)."""

from __future__ import annotations

import re

import pytest

from local.aws.intrinsics import Resolver, pseudo_parameters
from local.aws.moto_stack import ACCOUNT_ID, REGION, load_stack, sam_template, translated
from local.aws.template import ParameterError, resolved_parameters

QUEUES = ("SourceQueue", "DeadLetterQueue", "FailedJobsQueue")
# CloudFormation: a stack name has at most 128 characters. SQS (CreateQueue): a queue name has
# at most 80, of letters, digits, hyphens and underscores, and a FIFO one ends in .fifo.
LONGEST_STACK_NAME = "s" + "-long-stack-name" * 7 + "x" * 15
SQS_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}(\.fifo)?")
SQS_QUEUE_NAME_MAX = 80


def resolve(**overrides: object) -> dict[str, str]:
    return resolved_parameters(
        sam_template(), {"DownstreamUrl": "https://downstream.example.com/m", **overrides}
    )


@pytest.mark.parametrize("queue", QUEUES)
def test_every_queue_outlives_a_replacement_and_the_stack(queue: str) -> None:
    # Given the template as SAM hands it to CloudFormation
    resource = translated()["Resources"][queue]
    # Then the queue and its messages are kept when an update replaces it or the stack goes
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize("queue_type", ["standard", "fifo"])
def test_queue_names_fit_the_longest_legal_stack_name(queue_type: str) -> None:
    # Given a stack whose name has the 128 characters CloudFormation allows
    assert len(LONGEST_STACK_NAME) == 128
    stack = load_stack({"QueueType": queue_type})
    resolver = Resolver(
        pseudo_parameters(LONGEST_STACK_NAME, REGION, ACCOUNT_ID),
        stack.parameters,
        ref=lambda name: name,
        get_att=lambda logical_id, name: f"{logical_id}.{name}",
    )
    # When its queues' names are resolved
    names = {
        queue: resolver(stack.template["Resources"][queue]["Properties"]["QueueName"])
        for queue in QUEUES
        if "QueueName" in stack.template["Resources"][queue]["Properties"]
    }
    # Then the source queue is named (the DLQ's RedriveAllowPolicy names it), and every name
    # is one SQS accepts, the FIFO ones ending in .fifo
    assert "SourceQueue" in names
    for name in names.values():
        assert len(name) <= SQS_QUEUE_NAME_MAX
        assert SQS_QUEUE_NAME.fullmatch(name), name
        assert name.endswith(".fifo") == (queue_type == "fifo")


@pytest.mark.parametrize(
    ("parameter", "spelling"),
    [
        ("BatchSize", "010"),
        ("BatchSize", "+5"),
        ("BatchSize", "10.0"),
        ("MaximumBatchingWindowInSeconds", "00"),
        ("MaximumConcurrency", "02"),
        ("MaximumConcurrency", "2e1"),
        # "0239" is not among the breaker's Rule's "60".."479": it would pass that Rule
        ("SourceQueueRetentionSeconds", "0239"),
        ("SourceQueueRetentionSeconds", "+300"),
        ("SourceQueueRetentionSeconds", "3600.0"),
    ],
)
def test_a_number_the_rules_would_compare_as_another_string_is_refused(
    parameter: str, spelling: str
) -> None:
    # Given a number in a spelling the Rules would misjudge ("010" is not among "1".."10")
    # When the parameters are resolved, Then it is refused as a parameter value, saying how
    refusal = re.escape(f"{parameter}={spelling!r}: ") + ".*without leading zeros"
    with pytest.raises(ParameterError, match=refusal):
        resolve(**{parameter: spelling})


@pytest.mark.parametrize(
    ("parameter", "low", "high"),
    [("BatchSize", 1, 10_000), ("MaximumBatchingWindowInSeconds", 0, 300),
     ("MaximumConcurrency", 2, 1000)],
)  # fmt: skip
def test_the_numbers_the_rules_compare_keep_aws_limits(parameter: str, low: int, high: int) -> None:
    # Given the pattern of a parameter the Rules compare
    pattern = sam_template()["Parameters"][parameter]["AllowedPattern"]
    # Then it admits exactly the whole numbers of AWS's range, each in its one spelling
    admitted = [n for n in range(0, 20_000) if re.fullmatch(pattern, str(n))]
    assert admitted == list(range(low, high + 1))


def test_the_retention_the_breakers_rule_compares_keeps_its_range() -> None:
    # Given the pattern of SourceQueueRetentionSeconds (BreakerNeedsRetentionRoom compares it)
    pattern = sam_template()["Parameters"]["SourceQueueRetentionSeconds"]["AllowedPattern"]
    # Then it admits exactly 60 s to 13 days (every dead-lettered copy keeps a day of the DLQ's
    # 14), each number in its one spelling
    admitted = [n for n in range(0, 1_300_000) if re.fullmatch(pattern, str(n))]
    assert (admitted[0], admitted[-1], len(admitted)) == (60, 1_123_200, 1_123_200 - 60 + 1)


def test_ten_spelled_plainly_still_needs_no_batching_window() -> None:
    # Given BatchSize 10 and no window (the Rule's boundary), Then it is accepted
    assert resolve(BatchSize="10", MaximumBatchingWindowInSeconds="0")["BatchSize"] == "10"


def test_content_based_deduplication_on_a_standard_queue_is_refused() -> None:
    # Given ContentBasedDeduplication on a standard queue, which SQS would silently ignore
    with pytest.raises(ParameterError, match="ContentBasedDeduplicationOnlyForFifo"):
        resolve(QueueType="standard", ContentBasedDeduplication="true")
    # ...while on a FIFO queue it is accepted
    assert resolve(QueueType="fifo", ContentBasedDeduplication="true")["QueueType"] == "fifo"


@pytest.mark.parametrize(
    "key_id",
    [
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    ],
)
def test_single_and_multi_region_kms_keys_are_accepted(key_id: str) -> None:
    # Given the ARN of a single-Region or a multi-Region (mrk-) KMS key
    arn = f"arn:aws:kms:eu-west-1:123456789012:key/{key_id}"
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:downstream-token-AbCdEf"
    # When the parameters are resolved, Then the key is accepted
    values = resolve(DownstreamAuthSecretArn=secret, DownstreamAuthKmsKeyArn=arn)
    assert values["DownstreamAuthKmsKeyArn"] == arn


@pytest.mark.parametrize("key_id", ["mrk-123", "alias/downstream", "1234abcd"])
def test_what_is_not_a_kms_key_id_is_refused(key_id: str) -> None:
    # Given something that is not a key's ARN, Then it is refused
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:downstream-token-AbCdEf"
    with pytest.raises(ParameterError, match="DownstreamAuthKmsKeyArn"):
        resolve(
            DownstreamAuthSecretArn=secret,
            DownstreamAuthKmsKeyArn=f"arn:aws:kms:eu-west-1:123456789012:key/{key_id}",
        )
