"""IAM policy sizes as IAM counts them: intrinsics resolved to realistic values, white space left out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROLE_INLINE_POLICY_LIMIT = 10_240  # all inline policies of one role together
MANAGED_POLICY_LIMIT = 6_144  # each managed policy
MANAGED_POLICIES_PER_ROLE = 10

PSEUDO = {
    "AWS::Partition": "aws-us-gov",
    "AWS::Region": "ap-southeast-4",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": "arn:aws:cloudformation:ap-southeast-4:123456789012:stack/"
    "AStackNameOfSixtyCharactersLongerThanMostPeopleUseForStacks/5b8e0f00-c7a1-11ef-9d2b-0e5c7a3f8a11",
}


def resolve(value: Any) -> Any:
    """Intrinsics as the deployed policy shows them, on the long side of realistic."""
    if isinstance(value, dict) and len(value) == 1:
        [(key, argument)] = value.items()
        if key == "Ref":
            return PSEUDO.get(argument, f"AStackName-{argument}-1A2B3C4D5E6F")
        if key == "Fn::Join":
            separator, parts = argument
            return separator.join(resolve(part) for part in parts)
        if key == "Fn::GetAtt":
            return f"arn:aws-us-gov:logs:ap-southeast-4:123456789012:log-group:AStackName-{argument[0]}-1A2B3C4D5E6F:*"
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


@dataclass(frozen=True)
class RolePolicies:
    """Characters of the inline policies and of each managed policy in a template (one role's worth)."""

    inline: int
    managed: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.inline + sum(self.managed)

    @property
    def fits(self) -> bool:
        return (
            self.inline <= ROLE_INLINE_POLICY_LIMIT
            and all(size <= MANAGED_POLICY_LIMIT for size in self.managed)
            and len(self.managed) <= MANAGED_POLICIES_PER_ROLE
        )

    def __str__(self) -> str:
        managed = f" + {len(self.managed)} managed ({', '.join(f'{size:,}' for size in self.managed)})"
        return f"{self.inline:,} inline" + (managed if self.managed else "")


def role_policies(template: Mapping[str, Any]) -> RolePolicies:
    """The inline policies (AWS::IAM::Policy) and the managed ones aws-cdk splits off when they overflow."""

    def characters(resource: dict[str, Any]) -> int:
        return len("".join(json.dumps(resolve(resource["Properties"]["PolicyDocument"])).split()))

    resources = template["Resources"].values()
    inline = sum(characters(r) for r in resources if r["Type"] == "AWS::IAM::Policy")
    managed = tuple(characters(r) for r in resources if r["Type"] == "AWS::IAM::ManagedPolicy")
    return RolePolicies(inline, managed)
