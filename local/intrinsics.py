"""CloudFormation's intrinsic functions the project's readers of the template need: Ref,
Fn::GetAtt and Fn::Sub (string form). One resolver for the local deployment and the tests'
in-process stack, each supplying how its names and attributes resolve."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def pseudo_parameters(
    stack_name: str, region: str, account_id: str, partition: str = "aws"
) -> dict[str, str]:
    return {
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
            if key == "Fn::Sub" and isinstance(argument, str):
                return _SUB_VARIABLE.sub(lambda match: str(self._sub(match.group(1))), argument)
        return {key: self(item) for key, item in value.items()}

    def ref(self, name: str) -> Any:
        if name in self._names:
            return self._names[name]
        return self._ref(name)

    def _sub(self, variable: str) -> Any:
        if "." in variable:
            logical_id, attribute = variable.split(".", 1)
            return self._get_att(logical_id, attribute)
        return self.ref(variable)
