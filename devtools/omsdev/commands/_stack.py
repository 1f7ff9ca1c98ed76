"""Points this process at a running local cloud's stack, the way its functions see it."""

from __future__ import annotations

import sys

from omsdev.localcloud.cloud import (
    DEFAULT_TEMPLATE,
    TOOLING_ENVIRONMENT,
    cold_start_containers,
    endpoint_is_up,
)
from omsdev.localcloud.provision import Stack
from omsdev.localcloud.runtime import apply_environment, merge_environments
from omsdev.localcloud.template import Template


def add_stack_arguments(parser) -> None:
    parser.add_argument("--endpoint", default="http://127.0.0.1:4566")
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    parser.add_argument("--stack-name", default="oms-local")


def attached_stack(args, command: str) -> Stack | None:
    """The running local cloud's stack, attached (never provisioned: a command that only reads or signs
    creates nothing, and a missing resource is an error worth seeing); None after saying why."""
    from omsdev.localcloud.provision import ProvisionError
    from omsdev.localcloud.template import TemplateError

    if not endpoint_is_up(args.endpoint):
        print(f"no local cloud at {args.endpoint}; start it with `oms local up`", file=sys.stderr)
        return None
    try:
        return Stack(Template.load(args.template), args.stack_name, args.endpoint).attach()
    except (ProvisionError, TemplateError) as error:
        print(f"{command}: {error}", file=sys.stderr)
        return None


def use_stack(args) -> bool:
    if not endpoint_is_up(args.endpoint):
        print(f"no local cloud at {args.endpoint}; start it with `oms local up`", file=sys.stderr)
        return False
    template = Template.load(args.template)
    apply_environment(TOOLING_ENVIRONMENT)
    stack = Stack(template, args.stack_name, args.endpoint).provision()
    environment = merge_environments({f.logical_id: stack.function_environment(f.logical_id) for f in template.functions()})
    apply_environment({**environment, "OMS_AWS_ENDPOINT_URL": args.endpoint})
    cold_start_containers()
    return True
