"""Optional VPC attachment: outside any VPC by default; with SubnetIds and SecurityGroupIds, in
the VPC with only the network-interface rights Lambda needs there."""

from __future__ import annotations

from typing import Any

import pytest

from local.aws.moto_stack import sam_template, translated
from local.aws.template import ParameterError, resolved_parameters
from tests.support.template import decided

SUBNETS = "subnet-0a1b2c3d,subnet-4e5f6a7b"
SECURITY_GROUPS = "sg-0a1b2c3d4e5f6a7b8"
IN_VPC = {"SubnetIds": SUBNETS, "SecurityGroupIds": SECURITY_GROUPS}

# Lambda's documented execution-role rights for a VPC (configuration-vpc), plus DescribeSubnets
# that the managed AWSLambdaVPCAccessExecutionRole (v3) adds; the managed policy's logs rights are
# left out: the role already writes to its own log group only.
LAMBDA_VPC_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def deployed(parameters: dict[str, Any]) -> dict[str, Any]:
    return decided(translated(parameters), parameters)


def function_properties(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"]["ConsumerFunction"]["Properties"]
    return properties


def role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["ConsumerFunctionRole"]["Properties"]
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def ec2_grants(template: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        (action, statement["Resource"])
        for statement in role_statements(template)
        for action in statement["Action"]
        if action.startswith("ec2:")
    ]


def test_by_default_the_function_is_outside_any_vpc_and_has_no_ec2_rights() -> None:
    # Given the default parameters
    template = deployed({})
    # Then no VpcConfig reaches Lambda and the role grants nothing on EC2
    assert "VpcConfig" not in function_properties(template)
    assert ec2_grants(template) == []


def test_with_subnets_and_security_groups_the_function_is_attached_to_them() -> None:
    # Given subnets and security groups
    template = deployed(IN_VPC)
    # Then the function's VpcConfig lists them, split from the comma-separated parameters
    vpc = function_properties(template)["VpcConfig"]
    assert vpc == {
        "SubnetIds": {"Fn::Split": [",", {"Ref": "SubnetIds"}]},
        "SecurityGroupIds": {"Fn::Split": [",", {"Ref": "SecurityGroupIds"}]},
    }
    assert SUBNETS.split(",") == ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]


def test_in_a_vpc_the_role_gets_exactly_the_network_interface_rights_lambda_needs() -> None:
    # Given the stack deployed in a VPC
    actions = {action for action, _ in ec2_grants(deployed(IN_VPC))}
    # Then the role's EC2 actions are exactly those Lambda needs for its network interfaces
    assert actions == LAMBDA_VPC_ACTIONS


def test_only_the_describe_actions_are_granted_on_every_resource() -> None:
    # Given the stack deployed in a VPC, Then only EC2's Describe actions, which accept no resource
    # but "*", are granted on every resource; every other right names this account's and region's
    # network interfaces, subnets and security groups.
    for action, resource in ec2_grants(deployed(IN_VPC)):
        if action.startswith("ec2:Describe"):
            assert resource == "*"
            continue
        assert isinstance(resource, list), action
        for arn in resource:
            pattern = arn["Fn::Sub"]
            assert pattern.startswith(
                "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:"
            ), pattern
            kind = pattern.rsplit(":", 1)[1]
            assert kind in ("network-interface/*", "subnet/*", "security-group/*"), pattern


def test_the_role_still_uses_no_managed_policy_in_a_vpc() -> None:
    # Given the stack deployed in a VPC, Then the role still has no managed policy
    role = deployed(IN_VPC)["Resources"]["ConsumerFunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role


@pytest.mark.parametrize(
    "parameters",
    [{"SubnetIds": SUBNETS}, {"SecurityGroupIds": SECURITY_GROUPS}],
    ids=["subnets-only", "security-groups-only"],
)
def test_one_without_the_other_is_refused_before_deploy(parameters: dict[str, str]) -> None:
    # Given subnets without security groups, or security groups without subnets
    overrides = {"DownstreamUrl": "https://downstream.example.com/m", **parameters}
    # When the parameters are resolved, Then the rule refuses them before deploy
    with pytest.raises(ParameterError, match="VpcNeedsSubnetsAndSecurityGroups"):
        resolved_parameters(sam_template(), overrides)


@pytest.mark.parametrize(
    "parameters",
    [
        {"SubnetIds": "subnet-0a1b2c3d, subnet-4e5f6a7b", "SecurityGroupIds": SECURITY_GROUPS},
        {"SubnetIds": "sg-0a1b2c3d", "SecurityGroupIds": SECURITY_GROUPS},
        {"SubnetIds": SUBNETS, "SecurityGroupIds": "sg-xyz"},
    ],
)
def test_malformed_ids_are_refused(parameters: dict[str, str]) -> None:
    # Given subnet ids with a space, a security group as a subnet or a malformed group id
    overrides = {"DownstreamUrl": "https://downstream.example.com/m", **parameters}
    # When the parameters are resolved, Then they are refused
    with pytest.raises(ParameterError, match="comma-separated"):
        resolved_parameters(sam_template(), overrides)


def test_both_given_are_accepted() -> None:
    # Given both subnets and security groups, When the parameters are resolved
    overrides = {"DownstreamUrl": "https://downstream.example.com/m", **IN_VPC}
    values = resolved_parameters(sam_template(), overrides)
    # Then both are accepted as given
    assert (values["SubnetIds"], values["SecurityGroupIds"]) == (SUBNETS, SECURITY_GROUPS)


def test_the_parameters_are_in_their_own_console_group() -> None:
    # Given the template's console parameter groups
    groups = sam_template()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    [vpc] = [g for g in groups if g["Label"]["default"] == "Private downstream (VPC)"]
    # Then the VPC parameters have their own group
    assert vpc["Parameters"] == ["SubnetIds", "SecurityGroupIds"]
