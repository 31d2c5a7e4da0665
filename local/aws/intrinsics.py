"""CloudFormation's intrinsic functions the project's readers of the template need: Ref,
Fn::GetAtt, Fn::Sub (string form, and with a variable map), Fn::Join, Fn::Select and Fn::Split
(queue names and the breaker controller's name come from the stack id's UUID). One resolver for
the local deployment and the tests' in-process stack, each supplying how its names and
attributes resolve."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
_NOT_A_FUNCTION = object()


def stable_stack_uuid(stack_name: str, region: str, account_id: str) -> str:
    """The last part of a local stack's id. CloudFormation's is random; here it is derived from
    the stack's name, so that the tests' in-process stack and the emulator's (local.aws.emulator
    gives moto the same) resolve the same id, and with it the same queue names."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{region}/{account_id}/{stack_name}"))


def stack_id(stack_name: str, region: str, account_id: str, partition: str = "aws") -> str:
    """A stack id as CloudFormation forms it: arn:...:stack/<name>/<uuid>."""
    return (
        f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/"
        f"{stable_stack_uuid(stack_name, region, account_id)}"
    )


def pseudo_parameters(
    stack_name: str,
    region: str,
    account_id: str,
    partition: str = "aws",
    stack_id_value: str | None = None,
) -> dict[str, str]:
    return {
        "AWS::StackId": stack_id_value or stack_id(stack_name, region, account_id, partition),
        "AWS::StackName": stack_name,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": partition,
    }


class Resolver:
    """Resolves intrinsics in a template value.

    `ref` answers Ref for anything that is not a pseudo parameter or a template parameter (so,
    a resource's physical id); `get_att` answers Fn::GetAtt (logical id, attribute).
    """

    def __init__(
        self,
        pseudo: Mapping[str, Any],
        parameters: Mapping[str, Any],
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
    ) -> None:
        self._names: Mapping[str, Any] = {**pseudo, **parameters}
        self._ref = ref
        self._get_att = get_att

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            resolved = self._function(key, argument)
            if resolved is not _NOT_A_FUNCTION:
                return resolved
        return {key: self(item) for key, item in value.items()}

    def _function(self, key: str, argument: Any) -> Any:
        match key:
            case "Ref":
                return self.ref(argument)
            case "Fn::GetAtt":
                logical_id, attribute = (
                    argument.split(".", 1) if isinstance(argument, str) else argument
                )
                return self._get_att(logical_id, attribute)
            case "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self._substituted(text, {n: self(v) for n, v in variables.items()})
            case "Fn::Select" | "Fn::Split" | "Fn::Join":
                return self._list_function(key, argument)
        return _NOT_A_FUNCTION

    def _list_function(self, key: str, argument: Any) -> Any:
        first, second = argument
        if key == "Fn::Select":
            return self(second)[int(self(first))]
        if key == "Fn::Split":
            return str(self(second)).split(str(first))
        return str(first).join(str(item) for item in self(second))

    def _substituted(self, text: str, variables: Mapping[str, Any]) -> str:
        return _SUB_VARIABLE.sub(
            lambda match: str(
                variables[match.group(1)]
                if match.group(1) in variables
                else self._sub(match.group(1))
            ),
            text,
        )

    def ref(self, name: str) -> Any:
        if name in self._names:
            return self._names[name]
        return self._ref(name)

    def _sub(self, variable: str) -> Any:
        if "." in variable:
            logical_id, attribute = variable.split(".", 1)
            return self._get_att(logical_id, attribute)
        return self.ref(variable)
