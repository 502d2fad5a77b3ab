"""The environment a function sees: Lambda's reserved variables over the developer's shell."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping

from pylive.cdk.manifest import FunctionSpec

# Variables of the developer's shell that would make the worker behave unlike Lambda.
_DROPPED = ("PYTHONSTARTUP", "PYTHONINSPECT", "VIRTUAL_ENV_PROMPT", "PS1")
# What a process needs from the shell to start at all (find its interpreter, libraries and
# pylive itself, a temporary directory): the rest of a function's environment in Lambda is
# Lambda's reserved variables and the function's own.
_PROCESS_VARIABLES = frozenset(
    {"PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP"}
)


def process_environment(shell: Mapping[str, str]) -> dict[str, str]:
    """The part of ``shell`` a process needs to start, nothing else: the base of code that
    stands in for what Lambda runs (the relay stub locally), whose environment must not hold
    the developer's shell (it is relayed with every invocation)."""
    return {k: v for k, v in shell.items() if k in _PROCESS_VARIABLES}


def lambda_environment(
    spec: FunctionSpec, *, region: str, base: Mapping[str, str]
) -> dict[str, str]:
    """``base`` (the developer's environment, so local credentials keep working), then the
    variables the Lambda Python runtime reserves, then the function's own environment."""
    name = spec.function_name or spec.id
    runtime = spec.runtime if spec.runtime.startswith("python") else "python3.12"
    env = {k: v for k, v in base.items() if k not in _DROPPED}
    env.update(
        {
            "_HANDLER": spec.handler,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": _log_stream_name(),
            "LAMBDA_TASK_ROOT": spec.code_dir,
            "LAMBDA_RUNTIME_DIR": spec.code_dir,
            "LANG": "en_US.UTF-8",
            "TZ": "UTC",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(spec.environment)
    return env


def function_arn(spec: FunctionSpec, *, region: str, account: str = "123456789012") -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{spec.function_name or spec.id}"


def _log_stream_name() -> str:
    return time.strftime("%Y/%m/%d", time.gmtime()) + "/[$LATEST]" + secrets.token_hex(16)
