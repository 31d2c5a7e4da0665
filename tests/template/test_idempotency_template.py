"""IdempotentDelivery: off by default; when on, one encrypted, recoverable on-demand table with a
TTL, and the role may use that table only."""

from __future__ import annotations

from typing import Any

from local.aws.moto_stack import sam_template, translated
from local.aws.template import decide_conditions, resolved_parameters


def deployed(overrides: dict[str, Any]) -> dict[str, Any]:
    """The resources CloudFormation would create for these parameter values."""
    values = resolved_parameters(
        sam_template(), {"DownstreamUrl": "https://downstream.example.com", **overrides}
    )
    return decide_conditions(translated(overrides), values)


def statements_on(template: dict[str, Any], resource: Any) -> list[dict[str, Any]]:
    role = template["Resources"]["ConsumerFunctionRole"]["Properties"]
    return [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Resource"] == resource
    ]


def test_off_by_default_no_table_and_no_rights() -> None:
    # Given the default parameters, When the stack is deployed
    template = deployed({})
    # Then there is no table, no DynamoDB right, and the function reads no table name
    assert "IdempotencyTable" not in template["Resources"]
    assert "dynamodb" not in str(template["Resources"]["ConsumerFunctionRole"])
    variables = template["Resources"]["ConsumerFunction"]["Properties"]["Environment"]
    assert variables["Variables"]["IDEMPOTENCY_TABLE_NAME"] == ""


def test_when_enabled_the_table_is_on_demand_encrypted_recoverable_and_expiring() -> None:
    # Given IdempotentDelivery=Enabled, When the stack is deployed
    template = deployed({"IdempotentDelivery": "Enabled", "IdempotencyTtlSeconds": 3600})
    table = template["Resources"]["IdempotencyTable"]["Properties"]
    # Then the table is what Powertools' persistence layer expects, and safe to run
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    variables = template["Resources"]["ConsumerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["IDEMPOTENCY_TABLE_NAME"] == {"Ref": "IdempotencyTable"}
    assert variables["IDEMPOTENCY_TTL_SECONDS"] == {"Ref": "IdempotencyTtlSeconds"}
    # ...and the role's DynamoDB rights are the persistence layer's four, on that table only
    [statement] = statements_on(template, {"Fn::GetAtt": ["IdempotencyTable", "Arn"]})
    assert sorted(statement["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert str(template["Resources"]["ConsumerFunctionRole"]).count("dynamodb:") == 4
