"""What an execution environment sees: its environment variables and its log stream name."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from lambdad.manifest.model import Function
from lambdad.runtime.invocation import VERSION

#: Variables taken from lambdad's own environment: what a local handler needs to find its home and
#: credentials (on AWS the execution role provides them). Everything else starts clean, as on Lambda.
PASSTHROUGH = ("HOME", "USER", "LOGNAME", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")
#: Variables Lambda sets for every Python function (LANG, TZ) or that a local process needs (PATH).
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
#: Environment variables the Lambda runtime sets itself; a function cannot override them (the
#: manifest's check refuses them) and lambdad's own are not passed through.
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


def log_stream_name(now: float) -> str:
    """`2020/01/31/[$LATEST]3893xmpl7fac4485b47bb75b671a283c`, one per environment."""
    return time.strftime("%Y/%m/%d", time.gmtime(now)) + f"/[{VERSION}]{uuid.uuid4().hex}"


def worker_environment(
    fn: Function, region: str, log_stream: str, python_version: str, inherited: Mapping[str, str]
) -> dict[str, str]:
    """Lambda's variables, the function's own, and a few of lambdad's (see PASSTHROUGH and AWS_*)."""
    env = {k: v for k, v in inherited.items() if k in PASSTHROUGH or (k.startswith("AWS_") and k not in RESERVED_ENV)}
    env.update(PATH=inherited.get("PATH", DEFAULT_PATH), LANG="en_US.UTF-8", TZ=":UTC")
    env.update(fn.environment)
    major_minor = ".".join(python_version.split(".")[:2])
    env.update(
        AWS_LAMBDA_FUNCTION_NAME=fn.name,
        AWS_LAMBDA_FUNCTION_VERSION=VERSION,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(fn.memory_mb),
        AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{fn.name}",
        AWS_LAMBDA_LOG_STREAM_NAME=log_stream,
        AWS_LAMBDA_INITIALIZATION_TYPE="on-demand",
        AWS_EXECUTION_ENV=f"AWS_Lambda_python{major_minor}",
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        LAMBDA_TASK_ROOT=str(fn.code),
        _HANDLER=fn.handler,
    )
    return env
