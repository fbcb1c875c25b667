"""The `context` object handed to handlers, shaped like the one the AWS Python runtime builds.

Stdlib only and Python 3.8 compatible (imported inside worker processes). As in AWS's runtime,
static fields come from the environment (so `memory_limit_in_mb` is a string), per-invocation
fields from the invoke request, and `identity` is always an object whose fields may be None.
"""

from __future__ import annotations

import os
import sys
import time


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, data: dict | None = None) -> None:
        data = data or {}
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")

    def __repr__(self) -> str:
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client:
    __slots__ = ("app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id")

    def __init__(self, data: dict) -> None:
        for name in self.__slots__:
            setattr(self, name, data.get(name))

    def __repr__(self) -> str:
        return "Client([%s])" % ",".join("%s=%s" % (n, getattr(self, n)) for n in self.__slots__)


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, data: dict) -> None:
        client = data.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = data.get("custom")
        self.env = data.get("env")

    def __repr__(self) -> str:
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


_STATIC_ENV = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
)
_static: tuple = ()


def _static_fields() -> tuple:
    """The environment's fixed fields, read once: they cannot change during an environment's life."""
    global _static
    if not _static:
        _static = tuple(os.environ.get(name) for name in _STATIC_ENV)
    return _static


class LambdaContext:
    def __init__(
        self,
        aws_request_id: str,
        deadline_ms: int,
        invoked_function_arn: str,
        client_context: dict | None = None,
        identity: dict | None = None,
    ) -> None:
        static = _static_fields()
        self.aws_request_id = aws_request_id
        self.function_name = static[0]
        self.function_version = static[1]
        self.memory_limit_in_mb = static[2]
        self.log_group_name = static[3]
        self.log_stream_name = static[4]
        self.invoked_function_arn = invoked_function_arn
        self.client_context = ClientContext(client_context) if isinstance(client_context, dict) else None
        self.identity = CognitoIdentity(identity)
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg: object) -> None:
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        fields = (
            "aws_request_id",
            "log_group_name",
            "log_stream_name",
            "function_name",
            "memory_limit_in_mb",
            "function_version",
            "invoked_function_arn",
            "client_context",
            "identity",
        )
        return "LambdaContext([%s])" % ",".join("%s=%s" % (f, getattr(self, f)) for f in fields)
