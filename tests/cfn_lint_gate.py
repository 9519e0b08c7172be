"""cfn-lint as the quality gate applies it, shared by the tests and the benchmarks."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.api import ManualArgs, lint


def is_cdk_function_role_dependency(match: Any, template: dict[str, Any]) -> bool:
    """The one documented exception: W3005 on the DependsOn that aws-cdk's lambda.Function adds on its own role.

    CDK makes the function depend on its role and the role's default policy; the role part is redundant
    with the GetAtt, the policy part is what keeps the function from running before it may act.
    """
    if match.rule.id != "W3005" or match.path[:2] != ["Resources", match.path[1]]:
        return False
    resource = template["Resources"][match.path[1]]
    role = resource.get("Properties", {}).get("Role", {}).get("Fn::GetAtt", [""])[0]
    return bool(resource["Type"] == "AWS::Lambda::Function" and role and f"'{role}'" in match.message)


def cfn_lint(template: dict[str, Any]) -> tuple[list[str], list[str]]:
    """cfn-lint's findings on a template: those that count, and those that are the documented exception."""
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    excepted = [str(match) for match in matches if is_cdk_function_role_dependency(match, template)]
    return [str(match) for match in matches if str(match) not in excepted], excepted
