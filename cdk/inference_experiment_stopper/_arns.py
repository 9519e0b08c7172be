"""The ARNs IAM names a SageMaker endpoint and an endpoint configuration by, wherever the app knows them at synth.

Shared by the stopper function's role (a bake describes the endpoint, a rollback updates it) and a ShadowTest's
role, so that both follow the same rules: a name known at synth is written in lower case, as SageMaker writes
these ARNs; a name that is a resource of this app is that resource's own ARN; any other token names nothing IAM
can match, and the caller grants the account's and region's resources of that kind, saying why.
"""

from __future__ import annotations

from typing import TypeVar

from aws_cdk import Reference, Stack, Token, Tokenization
from aws_cdk import aws_sagemaker as sagemaker
from constructs import IConstruct

_Resource = TypeVar("_Resource", sagemaker.CfnEndpoint, sagemaker.CfnEndpointConfig)


def endpoint_arn(scope: IConstruct, name: str) -> str | None:
    """The endpoint's own ARN, or None where its name is a token that names no CfnEndpoint of the app.

    Args:
        scope: a construct of the stack whose account and region the ARN names.
        name: the endpoint's name: a string, or a CfnEndpoint's ``attr_endpoint_name``.
    """
    endpoint = _named_by(name, sagemaker.CfnEndpoint, "EndpointName")
    if endpoint is None:
        return _lower_case_arn(scope, "endpoint", name)
    return _lower_case_arn(scope, "endpoint", endpoint.endpoint_name) or endpoint.ref  # its Ref is its ARN


def endpoint_config_arn(scope: IConstruct, config: sagemaker.CfnEndpointConfig | str) -> str | None:
    """The endpoint configuration's own ARN, or None where its name is a token that names no CfnEndpointConfig.

    Args:
        scope: a construct of the stack whose account and region the ARN names.
        config: the configuration: a CfnEndpointConfig, its name, or its ``attr_endpoint_config_name``.
    """
    if isinstance(config, str):
        named = _named_by(config, sagemaker.CfnEndpointConfig, "EndpointConfigName")
        if named is None:
            return _lower_case_arn(scope, "endpoint-config", config)
        config = named
    # One CloudFormation names is known by its Ref, which is its ARN as SageMaker wrote it.
    return _lower_case_arn(scope, "endpoint-config", config.endpoint_config_name) or config.ref


def _lower_case_arn(scope: IConstruct, resource: str, name: str | None) -> str | None:
    """The ARN of a name known at synth, in lower case as SageMaker writes endpoint and configuration ARNs."""
    if not isinstance(name, str) or Token.is_unresolved(name):
        return None
    return Stack.of(scope).format_arn(service="sagemaker", resource=resource, resource_name=name.lower())


def _named_by(name: str, kind: type[_Resource], attribute: str) -> _Resource | None:
    """The resource of the app whose ``attribute`` the whole name is (an attr_* token), else None."""
    fragments = Tokenization.reverse_string(name)
    token = fragments.first_token if fragments.length == 1 else None
    # aws-cdk's Reference keeps the construct it refers to: an attr_* token is one, with the attribute's name.
    if isinstance(token, Reference) and token.display_name == attribute and isinstance(token.target, kind):
        return token.target
    return None
