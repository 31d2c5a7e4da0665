"""template.yaml as it deploys: parsed, parameter values checked as CloudFormation checks them,
code locations packaged, and translated by aws-sam-translator into plain CloudFormation."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from local.shared.paths import ROOT

SOURCE_TEMPLATE = ROOT / "template.yaml"
BUILD_DIR = ROOT / ".aws-sam" / "build"
# Properties of SAM resources that name a local folder until packaged into S3.
CODE_PROPERTIES = ("CodeUri", "ContentUri")


class ParameterError(ValueError):
    """Parameter values the template refuses: CloudFormation would reject the stack."""


class NoManagedPolicies:
    """The template names no managed policy, so the translator never needs IAM to look one up."""

    def load(self) -> dict[str, str]:
        return {}


def load_template(path: Path) -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(path.read_text())
    return parsed


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    parameters: dict[str, dict[str, Any]] = template.get("Parameters", {})
    return {name: spec["Default"] for name, spec in parameters.items() if "Default" in spec}


def translate(
    template: Mapping[str, Any], parameter_values: Mapping[str, Any], region: str
) -> dict[str, Any]:
    """The plain CloudFormation template SAM deploys for these parameter values in `region`."""
    # The translator's own transform() takes the region from the user's AWS configuration;
    # the region is given explicitly so that no AWS configuration is read.
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    result: dict[str, Any] = translator.translate(
        copy.deepcopy(dict(template)),
        parameter_values=dict(parameter_values),
        get_managed_policy_map=NoManagedPolicies().load,
    )
    # Its metrics go to a publisher that drops them; published now, they are not left for its
    # destructor, which warns ("There are unpublished metrics") in the middle of a run's output.
    translator.metrics.publish()
    return result


def code_locations(template: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """{logical id: (property, local folder)} of every resource whose code is still local."""
    locations: dict[str, tuple[str, str]] = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        for key in CODE_PROPERTIES:
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                locations[logical_id] = (key, properties[key])
    return locations


def with_code_uris(template: Mapping[str, Any], uris: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the template whose local code folders point at the given s3:// URIs."""
    packaged = copy.deepcopy(dict(template))
    for logical_id, (key, _) in code_locations(template).items():
        packaged["Resources"][logical_id]["Properties"][key] = uris[logical_id]
    return packaged


def resolved_parameters(
    template: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, str]:
    """Every parameter's value (override, else default), checked against its constraints.

    CloudFormation refuses a stack whose parameters break MinValue, MaxValue, AllowedValues,
    AllowedPattern or one of the template's Rules; the emulator does not check them, so they are
    checked here, all at once.
    """
    specs: dict[str, Any] = template.get("Parameters", {})
    problems = [
        f"{name} is not a parameter of the template" for name in overrides if name not in specs
    ]
    values: dict[str, str] = {}
    for name, spec in specs.items():
        if name in overrides:
            value = str(overrides[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            problems.append(f"{name} has no default: a value is required")
            continue
        problems.extend(f"{name}={value!r}: {problem}" for problem in _violations(value, spec))
        values[name] = value
    # Rules compare values that passed their own constraints, as CloudFormation does.
    if not problems:
        problems.extend(rule_violations(template, values))
    if problems:
        raise ParameterError("; ".join(problems))
    return values


def rule_violations(template: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """The AssertDescription of every failed assertion of a Rule whose RuleCondition holds.

    No library evaluates CloudFormation's rule functions, so the ones this template uses are
    emulated: Fn::And, Fn::Or, Fn::Not, Fn::Equals and Fn::Contains over parameter values, which
    are strings in rules. Any other function is refused rather than guessed.
    """
    problems: list[str] = []
    for name, rule in template.get("Rules", {}).items():
        condition = rule.get("RuleCondition")
        if condition is not None and not rule_holds(condition, values):
            continue
        for assertion in rule["Assertions"]:
            if not rule_holds(assertion["Assert"], values):
                problems.append(f"{name}: {assertion.get('AssertDescription', 'assertion failed')}")
    return problems


def rule_holds(expression: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    """Whether a rule (or condition) function holds for these parameter values."""
    [(function, arguments)] = expression.items()
    match function:
        case "Fn::And":
            return all(rule_holds(item, values) for item in arguments)
        case "Fn::Or":
            return any(rule_holds(item, values) for item in arguments)
        case "Fn::Not":
            [operand] = arguments
            return not rule_holds(operand, values)
        case "Fn::Equals":
            left, right = (_rule_value(item, values) for item in arguments)
            return left == right
        case "Fn::Contains":
            candidates, value = arguments
            return _rule_value(value, values) in [_rule_value(c, values) for c in candidates]
        case _:
            raise ParameterError(f"rule function {function} is not emulated locally")


def _rule_value(expression: Any, values: Mapping[str, str]) -> str:
    if isinstance(expression, Mapping) and set(expression) == {"Ref"}:
        return values[expression["Ref"]]
    if isinstance(expression, str | int | float):
        return str(expression)
    raise ParameterError(f"rule value {expression!r} is not emulated locally")


def _violations(value: str, spec: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return ["not a number"]
        if "MinValue" in spec and number < float(spec["MinValue"]):
            problems.append(f"below the minimum {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            problems.append(f"above the maximum {spec['MaxValue']}")
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        problems.append(f"not one of {', '.join(str(v) for v in spec['AllowedValues'])}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        problems.append(spec.get("ConstraintDescription", f"does not match {pattern}"))
    return problems


def decide_conditions(template: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the template with every Fn::If decided for these parameter values and every
    AWS::NoValue removed: the resources CloudFormation would create."""
    conditions = {
        name: rule_holds(expression, values)
        for name, expression in template.get("Conditions", {}).items()
    }

    def decide(value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (decide(item) for item in value) if item is not _NO_VALUE]
        if isinstance(value, dict):
            if value == {"Ref": "AWS::NoValue"}:
                return _NO_VALUE
            if set(value) == {"Fn::If"}:
                name, when_true, when_false = value["Fn::If"]
                return decide(when_true if conditions[name] else when_false)
            items = {key: decide(item) for key, item in value.items()}
            return {key: item for key, item in items.items() if item is not _NO_VALUE}
        return value

    decided: dict[str, Any] = decide(copy.deepcopy(dict(template)))
    for section in ("Resources", "Outputs"):
        # A resource or output whose Condition is false is not created.
        decided[section] = {
            name: item
            for name, item in decided.get(section, {}).items()
            if conditions.get(item.get("Condition", ""), True)
        }
    return decided


_NO_VALUE = object()
