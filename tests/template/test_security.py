"""The security review's invariants, proved on the template as it deploys (translated by
aws-sam-translator): TLS-only queues, least-privilege statements, explained scanner skips, and a
template cfn-lint has nothing to say about."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.api import lint

from local.aws.moto_stack import sam_template, translated
from local.shared.paths import ROOT
from tests.support.template import resources_of_type

TEMPLATE_TEXT = (ROOT / "template.yaml").read_text()

# Parameter sets that change which statements exist: every one must hold the invariants.
VARIANTS = {
    "defaults": {},
    "passthrough-tracing": {"TracingMode": "PassThrough"},
    "in-a-vpc": {"SubnetIds": "subnet-0a1b2c3d", "SecurityGroupIds": "sg-0a1b2c3d"},
    "authenticated-downstream": {
        "DownstreamAuthSecretArn": "arn:aws:ssm:us-east-1:123456789012:parameter/token",
        "DownstreamAuthKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd",
    },
    "idempotent-delivery": {"IdempotentDelivery": "Enabled"},
    "no-circuit-breaker": {"CircuitBreaker": "Disabled"},
}

# Services whose actions cannot be scoped to a resource: "*" is the only resource they accept.
NO_RESOURCE_LEVEL_PERMISSIONS = ("xray:", "ec2:Describe", "lambda:ListEventSourceMappings")


@pytest.fixture(scope="module", params=list(VARIANTS), ids=list(VARIANTS))
def cfn(request: pytest.FixtureRequest) -> dict[str, Any]:
    return translated(VARIANTS[request.param])


def policy_statements(value: Any) -> Iterator[dict[str, Any]]:
    """Every statement of every policy document in value, both branches of each Fn::If."""
    if isinstance(value, list):
        for item in value:
            yield from policy_statements(item)
    elif isinstance(value, dict):
        if "Effect" in value and ("Action" in value or "NotAction" in value):
            yield value
        for item in value.values():
            yield from policy_statements(item)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allow_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Allow statements of IAM and resource policies; key policies are checked on their own."""
    resources = {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] != "AWS::KMS::Key"
    }
    return [s for s in policy_statements(resources) if s["Effect"] == "Allow"]


# TLS-only queues


def queue_policies_by_queue(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_queue: dict[str, list[dict[str, Any]]] = {}
    for policy in resources_of_type(template, "AWS::SQS::QueuePolicy").values():
        for queue in policy["Properties"]["Queues"]:
            by_queue.setdefault(queue["Ref"], []).append(policy["Properties"]["PolicyDocument"])
    return by_queue


def denies_requests_without_tls(document: dict[str, Any], queue_id: str) -> bool:
    return any(
        statement["Effect"] == "Deny"
        and statement.get("Principal") == "*"
        and as_list(statement["Action"]) == ["sqs:*"]
        and statement["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for statement in document["Statement"]
    )


def test_every_queue_denies_requests_without_tls(cfn: dict[str, Any]) -> None:
    # Given every queue of the deployed template
    queues = resources_of_type(cfn, "AWS::SQS::Queue")
    assert queues.keys() == {"SourceQueue", "DeadLetterQueue", "FailedJobsQueue"}
    # Then each has a queue policy that denies every action to a request without TLS
    policies = queue_policies_by_queue(cfn)
    for queue_id in queues:
        documents = policies.get(queue_id, [])
        assert any(denies_requests_without_tls(doc, queue_id) for doc in documents), queue_id


def test_queue_policies_grant_nothing(cfn: dict[str, Any]) -> None:
    # Given the queue policies, Then they only deny: access is granted by the function's role alone
    for document in queue_policies_by_queue(cfn).values():
        for statement in policy_statements(document):
            assert statement["Effect"] == "Deny", statement


# Least privilege


def test_no_allow_statement_has_a_wildcard_action(cfn: dict[str, Any]) -> None:
    # Given the role's Allow statements
    statements = allow_statements(cfn)
    assert statements, "the role's statements are found"
    # Then none uses NotAction or an action with a wildcard
    for statement in statements:
        assert "NotAction" not in statement, statement
        assert all("*" not in action for action in as_list(statement["Action"])), statement


def test_the_only_wildcard_resources_are_services_without_resource_level_permissions(
    cfn: dict[str, Any],
) -> None:
    # Given the role's Allow statements
    for statement in allow_statements(cfn):
        # Then none uses NotResource, and a wildcard resource appears only with actions of
        # services without resource-level permissions
        assert "NotResource" not in statement, statement
        if any(
            isinstance(resource, str) and "*" in resource
            for resource in as_list(statement.get("Resource", []))
        ):
            actions = as_list(statement["Action"])
            assert all(action.startswith(NO_RESOURCE_LEVEL_PERMISSIONS) for action in actions)


def test_the_alarm_keys_policy_admits_the_account_and_cloudwatch_only(cfn: dict[str, Any]) -> None:
    # Given the alarm key's policy, Then it admits the account root and CloudWatch only. In a key
    # policy "*" is the key itself; kms:* for the account root is AWS's default key policy, which
    # leaves the key's administration to IAM.
    [key] = resources_of_type(cfn, "AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    grants = {
        json.dumps(statement["Principal"], sort_keys=True): sorted(as_list(statement["Action"]))
        for statement in statements
    }
    assert all(statement["Effect"] == "Allow" for statement in statements)
    assert all(statement["Resource"] == "*" for statement in statements)
    assert grants == {
        json.dumps(
            {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
            sort_keys=True,
        ): ["kms:*"],
        json.dumps({"Service": "cloudwatch.amazonaws.com"}): [
            "kms:Decrypt",
            "kms:GenerateDataKey*",
        ],
    }


def test_the_role_is_assumable_by_lambda_only(cfn: dict[str, Any]) -> None:
    # Given the role's trust policy
    trust = cfn["Resources"]["ConsumerFunctionRole"]["Properties"]["AssumeRolePolicyDocument"]
    # Then a single statement lets Lambda, and only Lambda, assume it
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


def test_each_wildcard_resource_in_the_template_is_explained_by_a_comment() -> None:
    # Given each line of template.yaml that grants on "*"
    lines = TEMPLATE_TEXT.splitlines()
    wildcard_lines = [i for i, line in enumerate(lines) if re.search(r"Resource:\s*\"\*\"", line)]
    assert wildcard_lines, "X-Ray's statement grants on *"
    for index in wildcard_lines:
        # Then the statement it belongs to (from its "- Sid:" line on) is preceded by a comment
        indent = len(lines[index]) - len(lines[index].lstrip())
        start = index
        while not lines[start].startswith(" " * (indent - 2) + "- "):
            start -= 1
        assert lines[start - 1].lstrip().startswith("#"), lines[start]


# Scanner skips and lint


def checkov_skips() -> list[tuple[str, dict[str, Any]]]:
    skips = []
    for logical_id, resource in sam_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips.append((logical_id, skip))
    return skips


def test_every_checkov_skip_gives_its_reason() -> None:
    # Given the checkov skips in template.yaml
    skips = checkov_skips()
    # Then there are some, and each names a check and gives a reason
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV_AWS_[0-9]+", skip["id"]), (logical_id, skip)
        # A reason is a sentence, not a placeholder
        assert len(skip.get("comment", "").split()) >= 8, (logical_id, skip)


def test_the_tls_and_iam_checks_are_never_skipped() -> None:
    # Given the checks skipped in template.yaml, Then none of those that guard the TLS and IAM
    # invariants tested above is among them: a skip cannot stand in for them
    skipped = {skip["id"] for _, skip in checkov_skips()}
    # CKV_AWS_63 ("*" actions), CKV_AWS_107..111 (credentials exposure, data exfiltration,
    # permissions management, privilege escalation, write access without constraints)
    assert not skipped & {"CKV_AWS_63", *(f"CKV_AWS_{n}" for n in range(107, 112))}


def test_cfn_lint_reports_no_error_or_warning() -> None:
    # Given template.yaml, When cfn-lint checks it with its defaults, as `make security` does
    matches = lint(TEMPLATE_TEXT)
    # Then nothing at error or warning level is reported (informational notes are allowed)
    serious = [str(match) for match in matches if match.rule.id[0] in ("E", "W")]
    assert serious == []
