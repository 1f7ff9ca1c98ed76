"""`oms invoke FUNCTION --event FILE`: what `sam local invoke` does, in-process, against the local cloud.

The function's environment is resolved from the template against the running stack (its physical
names are deterministic, `{stack}-{LogicalId}`, so no state file is needed); `--env-vars` takes SAM's
format ({"Parameters": {...}, "<FunctionLogicalId>": {...}}) and, like SAM, overrides only variables
the template declares for the function. OMS_AWS_ENDPOINT_URL is always the `--endpoint`.
"""

from __future__ import annotations

import json
import sys
import traceback

from omsdev.localcloud.cloud import (
    DEFAULT_TEMPLATE,
    TOOLING_ENVIRONMENT,
    cold_start_containers,
    endpoint_is_up,
)
from omsdev.localcloud.lambda_runtime import LambdaRuntime, apply_environment
from omsdev.localcloud.provision import ProvisionError, Stack
from omsdev.localcloud.template import Template, TemplateError

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"


def register(subparsers) -> None:
    parser = subparsers.add_parser("invoke", help="invoke one function of the template against the running local cloud")
    parser.add_argument("function", help="logical id in the template, e.g. ShopifyPollerFunction")
    parser.add_argument("--event", required=True, help="event JSON file, e.g. events/poller/shopify.json")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help=f"the running local cloud (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    parser.add_argument("--env-vars", default=None,
                        help='SAM-style JSON file: {"Parameters": {...}, "<FunctionLogicalId>": {...}}')
    parser.add_argument("--stack-name", default="oms-local")
    parser.set_defaults(run=run)


def _fail(message: str) -> int:
    print(f"oms invoke: {message}", file=sys.stderr)
    return 2


def env_var_overrides(path: str, function_id: str, declared: set[str]) -> dict[str, str]:
    """SAM's --env-vars rules: Parameters for every function, the function's own section wins;
    only variables the template declares for the function are overridden."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a JSON object")
    wanted = {**document.get("Parameters", {}), **document.get(function_id, {})}
    ignored = sorted(set(wanted) - declared)
    if ignored:
        print(f"oms invoke: ignoring {', '.join(ignored)} from {path}: not declared for {function_id} "
              "in the template (sam local invoke ignores them too)", file=sys.stderr)
    return {key: str(value) for key, value in wanted.items() if key in declared}


def run(args) -> int:
    try:
        with open(args.event, encoding="utf-8") as handle:
            event = json.load(handle)
    except (OSError, ValueError) as error:
        return _fail(str(error))
    return invoke_function(args.function, event, endpoint=args.endpoint, template_path=args.template,
                           stack_name=args.stack_name, env_vars=args.env_vars)


def invoke_function(function_id: str, event, *, endpoint: str, template_path: str, stack_name: str,
                    env_vars: str | None = None) -> int:
    """Invoke one function of the template in this process against the running stack; print its
    result (or Lambda's error document) as JSON. Exit code 0, 1 (the function failed) or 2."""
    endpoint = endpoint.rstrip("/")
    if not endpoint_is_up(endpoint):
        return _fail(f"no local cloud at {endpoint}; start it with `oms local up`")
    try:
        template = Template.load(template_path)
        spec = template.function(function_id)
        apply_environment(TOOLING_ENVIRONMENT)
        stack = Stack(template, stack_name, endpoint).attach()
        environment = stack.function_environment(spec.logical_id)
        if env_vars:
            environment.update(env_var_overrides(env_vars, spec.logical_id, set(spec.environment)))
        environment["OMS_AWS_ENDPOINT_URL"] = endpoint
    except (KeyError, OSError, ValueError, TemplateError, ProvisionError) as error:
        return _fail(str(error.args[0]) if isinstance(error, KeyError) else str(error))
    apply_environment(environment)
    cold_start_containers()
    runtime = LambdaRuntime([spec], function_names={spec.logical_id: stack.function_name(spec.logical_id)},
                            region=stack.region, account_id=stack.account_id)
    try:
        result = runtime.invoke(spec.logical_id, event)
    except Exception as error:  # noqa: BLE001 - reported like Lambda reports an unhandled error
        print(json.dumps({
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_tb(error.__traceback__),
        }, indent=2))
        return 1
    print(json.dumps(result, indent=2, default=str, ensure_ascii=False))
    return 0
