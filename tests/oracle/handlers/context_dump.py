import os
import sys

RESERVED_ENV = (
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
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
    "TZ",
    "LANG",
)


def _slots(obj):
    if obj is None:
        return None
    return {name: getattr(obj, name, None) for name in type(obj).__slots__}


def handler(event, context):
    client_context = _slots(context.client_context)
    if client_context is not None:
        client_context["client"] = _slots(context.client_context.client)
    remaining = context.get_remaining_time_in_millis()
    return {
        "context_type": type(context).__name__,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "memory_limit_in_mb_type": type(context.memory_limit_in_mb).__name__,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "identity_type": type(context.identity).__name__,
        "identity": _slots(context.identity),
        "client_context": client_context,
        "remaining_time_in_millis": remaining,
        "remaining_time_in_millis_type": type(remaining).__name__,
        "has_tenant_id": hasattr(context, "tenant_id"),
        "tenant_id": getattr(context, "tenant_id", None),
        "public_attributes": sorted(name for name in dir(context) if not name.startswith("_")),
        "env": {name: os.environ.get(name) for name in RESERVED_ENV},
        "sys_path_head": sys.path[:3],
        "cwd": os.getcwd(),
    }
