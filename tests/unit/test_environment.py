from pathlib import Path

from lambdad.manifest.model import Function
from lambdad.runtime.environment import log_stream_name, worker_environment


def test_worker_environment_is_lambdas_plus_the_functions_own():
    fn = Function(
        name="thumb", handler="app.handler", code=Path("/code"), python="/usr/bin/python3", memory_mb=256,
        environment={"STAGE": "local", "PATH": "/custom"},
    )
    inherited = {
        "PATH": "/usr/bin", "HOME": "/home/me", "SECRET_TOKEN": "nope", "AWS_PROFILE": "dev",
        "AWS_LAMBDA_FUNCTION_NAME": "spoofed", "PYTHONPATH": "/elsewhere",
    }
    env = worker_environment(fn, "eu-west-1", "2026/11/27/[$LATEST]abc", "3.11.7", inherited)
    assert env == {
        "HOME": "/home/me",
        "AWS_PROFILE": "dev",
        "PATH": "/custom",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "STAGE": "local",
        "AWS_LAMBDA_FUNCTION_NAME": "thumb",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/thumb",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/27/[$LATEST]abc",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "LAMBDA_TASK_ROOT": "/code",
        "_HANDLER": "app.handler",
    }


def test_log_stream_name_format():
    name = log_stream_name(1_764_246_000.0)  # 2025-11-27
    date, rest = name[:10], name[10:]
    assert date == "2025/11/27"
    assert rest.startswith("/[$LATEST]") and len(rest) == len("/[$LATEST]") + 32
