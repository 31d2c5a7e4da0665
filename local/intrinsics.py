"""CloudFormation's intrinsic functions the project's readers of the template need: Ref,
Fn::GetAtt, Fn::Sub (string form), and Fn::Join, Fn::Select and Fn::Split (the breaker
controller's name is the stack id's UUID). One resolver for the local deployment and the tests'
in-process stack, each supplying how its names and attributes resolve."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

_STRING_FUNCTIONS = frozenset({"Fn::Sub", "Fn::Join", "Fn::Split", "Fn::Select"})
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def pseudo_parameters(
    stack_name: str, region: str, account_id: str, partition: str = "aws"
) -> dict[str, str]:
    # CloudFormation's stack id ends in a UUID of its own; here one derived from the name, so
    # that every reader of the same stack resolves the same id.
    stack_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"{region}/{account_id}/{stack_name}")
    return {
        "AWS::StackId": (
            f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/{stack_uuid}"
        ),
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
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                logical_id, attribute = (
                    argument.split(".", 1) if isinstance(argument, str) else argument
                )
                return self._get_att(logical_id, attribute)
            if key in _STRING_FUNCTIONS and not (
                key == "Fn::Sub" and not isinstance(argument, str)
            ):
                return self._string_function(key, argument)
        return {key: self(item) for key, item in value.items()}

    def _string_function(self, key: str, argument: Any) -> Any:
        if key == "Fn::Sub":
            return _SUB_VARIABLE.sub(lambda match: str(self._sub(match.group(1))), argument)
        first, second = argument
        if key == "Fn::Join":
            return str(first).join(str(item) for item in self(second))
        if key == "Fn::Split":
            return str(self(second)).split(str(first))
        return self(second)[int(first)]

    def ref(self, name: str) -> Any:
        if name in self._names:
            return self._names[name]
        return self._ref(name)

    def _sub(self, variable: str) -> Any:
        if "." in variable:
            logical_id, attribute = variable.split(".", 1)
            return self._get_att(logical_id, attribute)
        return self.ref(variable)
