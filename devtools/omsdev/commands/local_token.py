"""`oms local token`: a Cognito ID token for a reviewer role that the running local cloud's API accepts.

The token is signed with the local stack's key (`omsdev.localcloud.local_auth`), so any process can
issue one for the `oms local up` that serves the API:
    curl -H "Authorization: $(oms local token --role reviewer)" http://127.0.0.1:3000/...
"""

from __future__ import annotations

import sys

from omsdev.commands._stack import add_stack_arguments, attached_stack
from omsdev.localcloud.local_auth import LocalAuthError, issue_token

ROLES = ("reviewer", "risk_reviewer", "admin")
# Cognito's own bounds for an ID token's validity.
MIN_MINUTES, MAX_MINUTES = 5, 24 * 60


def register_token(commands) -> None:
    """Adds `token` to the `oms local` sub-commands."""
    token = commands.add_parser("token", help="print an ID token for a reviewer role, for the running local cloud")
    token.add_argument("--role", required=True, choices=ROLES, help="the user's Cognito group")
    token.add_argument("--username", default=None, help="the user (default: local-<role>@example.com)")
    token.add_argument("--minutes", type=int, default=60,
                       help=f"validity in minutes, {MIN_MINUTES} to {MAX_MINUTES} as in Cognito (default: 60)")
    add_stack_arguments(token)
    token.set_defaults(run=run_token)


def run_token(args) -> int:
    if not MIN_MINUTES <= args.minutes <= MAX_MINUTES:
        print(f"oms local token: --minutes must be {MIN_MINUTES} to {MAX_MINUTES}", file=sys.stderr)
        return 2
    stack = attached_stack(args, "oms local token")
    if stack is None:
        return 2
    try:
        token = issue_token(stack, args.role, username=args.username, minutes=args.minutes)
    except LocalAuthError as error:
        print(f"oms local token: {error}", file=sys.stderr)
        return 2
    print(token)
    return 0
