"""`oms invoke FUNCTION --event FILE`: what `sam local invoke` does, in-process, against the local cloud."""

from __future__ import annotations

import json
import sys

from omsdev.localcloud.cloud import DEFAULT_TEMPLATE, TOOLING_ENVIRONMENT, cold_start_containers, endpoint_is_up
from omsdev.localcloud.provision import Stack
from omsdev.localcloud.runtime import LambdaRuntime, apply_environment
from omsdev.localcloud.template import Template


def register(subparsers) -> None:
    parser = subparsers.add_parser("invoke", help="invoke one function of the template against the running local cloud")
    parser.add_argument("function", help="logical id in the template, e.g. ShopifyPollerFunction")
    parser.add_argument("--event", required=True, help="event JSON file, e.g. events/poller/shopify.json")
    parser.add_argument("--endpoint", default="http://127.0.0.1:4566")
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    parser.add_argument("--stack-name", default="oms-local")
    parser.add_argument("--env-vars", default=None, help="SAM-style overrides: {\"Parameters\": {...}, \"Fn\": {...}}")
    parser.set_defaults(run=run)


def run(args) -> int:
    if not endpoint_is_up(args.endpoint):
        print(f"oms invoke: no local cloud at {args.endpoint}; start it with `oms local up`", file=sys.stderr)
        return 2
    template = Template.load(args.template)
    try:
        spec = template.function(args.function)
    except KeyError as error:
        print(f"oms invoke: {error.args[0]}", file=sys.stderr)
        return 2
    apply_environment(TOOLING_ENVIRONMENT)
    # Provisioning is idempotent: it finds the running stack's resources by their deterministic names.
    stack = Stack(template, args.stack_name, args.endpoint).provision()
    environment = {**stack.function_environment(spec.logical_id), "OMS_AWS_ENDPOINT_URL": args.endpoint}
    if args.env_vars:
        overrides = json.loads(open(args.env_vars, encoding="utf-8").read())
        for section in ("Parameters", spec.logical_id):
            environment.update({k: v for k, v in overrides.get(section, {}).items() if k in spec.environment})
    apply_environment(environment)
    cold_start_containers()
    with open(args.event, encoding="utf-8") as handle:
        event = json.load(handle)
    result = LambdaRuntime([spec]).invoke(spec.logical_id, event)
    print(json.dumps(result, indent=2, default=str))
    return 0
