"""Authenticated downstreams, the template's side: parameters for where the header's value is
kept, the environment contract the function reads, and IAM scoped to that one secret (and its
KMS key). Fetching, caching and sending the header are the function's side."""

from __future__ import annotations

from typing import Any

import pytest

from local.aws.moto_stack import parameter_defaults, sam_template, translated
from local.aws.template import ParameterError, resolved_parameters
from tests.support.template import decided

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:downstream/token-AbC123"
PARAMETER_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/downstream/token"
KMS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
URL = "https://downstream.example.com/m"

CONTRACT = {
    "DOWNSTREAM_AUTH_SECRET_ARN": "DownstreamAuthSecretArn",
    "DOWNSTREAM_AUTH_HEADER": "DownstreamAuthHeader",
    "DOWNSTREAM_AUTH_CACHE_SECONDS": "DownstreamAuthCacheSeconds",
}


def deployed(parameters: dict[str, Any]) -> dict[str, Any]:
    return decided(translated(parameters), parameters)


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["ConsumerFunctionRole"]["Properties"]
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants_of(template: dict[str, Any], *services: str) -> list[dict[str, Any]]:
    """The role's statements that grant an action of any of these services."""
    return [
        statement
        for statement in statements(template)
        if any(action.split(":")[0] in services for action in as_list(statement["Action"]))
    ]


def test_the_environment_carries_the_contract_from_the_parameters() -> None:
    # Given the stack deployed with the defaults
    variables = deployed({})["Resources"]["ConsumerFunction"]["Properties"]["Environment"][
        "Variables"
    ]
    # Then each of the function's contract variables is the matching parameter
    for variable, parameter in CONTRACT.items():
        assert variables[variable] == {"Ref": parameter}


def test_by_default_no_header_is_configured_and_nothing_can_be_read() -> None:
    # Given the defaults: no secret, the Authorization header, a 5-minute cache
    defaults = parameter_defaults()
    assert defaults["DownstreamAuthSecretArn"] == ""
    assert defaults["DownstreamAuthHeader"] == "Authorization"
    assert defaults["DownstreamAuthCacheSeconds"] == 300
    # Then the role may read no secret, parameter or key
    assert grants_of(deployed({}), "secretsmanager", "ssm", "kms") == []


@pytest.mark.parametrize("arn", [SECRET_ARN, PARAMETER_ARN], ids=["secretsmanager", "ssm"])
def test_the_role_reads_exactly_the_one_secret_or_parameter(arn: str) -> None:
    # Given a secret (or parameter) ARN
    template = deployed({"DownstreamAuthSecretArn": arn})
    # Then one statement grants the two read actions on that ARN only, and no KMS right
    [statement] = grants_of(template, "secretsmanager", "ssm", "kms")
    assert statement["Action"] == ["secretsmanager:GetSecretValue", "ssm:GetParameter"]
    assert statement["Resource"] == {"Ref": "DownstreamAuthSecretArn"}
    assert (
        resolved_parameters(sam_template(), {"DownstreamUrl": URL, "DownstreamAuthSecretArn": arn})[
            "DownstreamAuthSecretArn"
        ]
        == arn
    )


def test_a_customer_managed_key_may_only_decrypt_through_secrets_manager_or_ssm() -> None:
    # Given a secret and a customer managed key
    template = deployed(
        {"DownstreamAuthSecretArn": SECRET_ARN, "DownstreamAuthKmsKeyArn": KMS_KEY_ARN}
    )
    # Then the role may decrypt with that key only, and only through Secrets Manager or SSM
    [decrypt] = grants_of(template, "kms")
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == {"Ref": "DownstreamAuthKmsKeyArn"}
    assert decrypt["Condition"] == {
        "StringEquals": {
            "kms:ViaService": [
                {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"},
                {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"},
            ]
        }
    }


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:*",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:downstream/token",
        "arn:aws:ssm:us-east-1:123456789012:parameter/*",
        "arn:aws:s3:::bucket/token",
        "downstream/token",
    ],
)
def test_wildcards_partial_arns_and_other_services_are_refused(arn: str) -> None:
    # Given a wildcard, a partial ARN or another service's ARN as the secret
    # When the parameters are resolved, Then DownstreamAuthSecretArn is refused
    with pytest.raises(ParameterError, match="DownstreamAuthSecretArn"):
        resolved_parameters(sam_template(), {"DownstreamUrl": URL, "DownstreamAuthSecretArn": arn})


def test_a_kms_key_without_a_secret_is_refused() -> None:
    # Given a key but no secret, When the parameters are resolved, Then the rule refuses them
    with pytest.raises(ParameterError, match="KmsKeyOnlyWithASecret"):
        resolved_parameters(
            sam_template(), {"DownstreamUrl": URL, "DownstreamAuthKmsKeyArn": KMS_KEY_ARN}
        )


@pytest.mark.parametrize("header", ["X-Api-Key", "Authorization", "x-token_v2"])
def test_header_names_are_http_tokens(header: str) -> None:
    # Given a header name that is an HTTP token, When the parameters are resolved
    values = resolved_parameters(
        sam_template(), {"DownstreamUrl": URL, "DownstreamAuthHeader": header}
    )
    # Then it is accepted as given
    assert values["DownstreamAuthHeader"] == header


@pytest.mark.parametrize("header", ["X Api Key", "Authorization:", "", "X-Key\r\nInjected"])
def test_other_header_names_are_refused(header: str) -> None:
    # Given a header name that is not an HTTP token (spaces, a colon, empty, CRLF)
    # When the parameters are resolved, Then it is refused
    with pytest.raises(ParameterError, match="DownstreamAuthHeader"):
        resolved_parameters(sam_template(), {"DownstreamUrl": URL, "DownstreamAuthHeader": header})
