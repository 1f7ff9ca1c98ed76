"""Former name of `lambda_runtime`, kept so existing imports keep working."""

from omsdev.localcloud.lambda_runtime import (  # noqa: F401
    FunctionError,
    FunctionTimeoutError,
    LambdaContext,
    LambdaRuntime,
    apply_environment,
    merge_environments,
)
