"""`python -m sandbox --port N [--orders N] [--plan TOKEN=CALLS]`: the fake Tiny API over HTTP."""

from __future__ import annotations

import argparse
import dataclasses

from sandbox.app import Sandbox
from sandbox.data import AccountSpec
from sandbox.server import serve


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, create the accounts and serve until interrupted."""
    args, sandbox, tokens = build(argv)
    print(
        f"Tiny API v2 sandbox on http://{args.host}:{args.port}/api2 "
        f"(tokens: {', '.join(tokens)}{'' if args.strict_tokens else ', or any other'}; "
        f"admin under /_sandbox/; API v3 under /public-api/v3, OAuth under /realms/tiny/)",
        flush=True,
    )
    try:
        serve(sandbox, args.host, args.port, quiet=args.quiet)
    except KeyboardInterrupt:
        pass


def build(argv: list[str] | None = None) -> tuple[argparse.Namespace, Sandbox, list[str]]:
    """The arguments, the sandbox with its accounts, and how to name them to a person."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--orders", type=int, default=AccountSpec.orders)
    parser.add_argument("--days", type=int, default=AccountSpec.days)
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=AccountSpec.rate_limit_calls,
        help="calls a minute every account allows (its plan, announced in x-limit-api)",
    )
    parser.add_argument(
        "--plan",
        action="append",
        default=[],
        type=_plan,
        metavar="TOKEN=CALLS",
        help="an account whose plan allows CALLS a minute (repeatable; Tiny's: 30, 60, 120)",
    )
    parser.add_argument(
        "--token",
        action="append",
        help="account token to create (repeatable; default: sandbox-token)",
    )
    parser.add_argument(
        "--strict-tokens",
        action="store_true",
        help="answer code 2 for tokens not given with --token instead of creating them on use",
    )
    parser.add_argument(
        "--v3-app",
        action="append",
        metavar="CLIENT_ID:SECRET:REDIRECT_URI",
        help="API v3 OAuth app reading the first token's account (repeatable)",
    )
    parser.add_argument(
        "--v3-auto-approve", action="store_true", help="approve v3 authorisations without a page"
    )
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)
    spec = AccountSpec(orders=args.orders, days=args.days, rate_limit_calls=args.rate_limit)
    sandbox = Sandbox(auto_accounts=not args.strict_tokens, default_spec=spec)
    tokens = list(args.token or ["sandbox-token"])
    for token in tokens:
        sandbox.add_account(token, spec)
    for token, calls in args.plan:
        sandbox.add_account(token, dataclasses.replace(spec, rate_limit_calls=calls))
        tokens.append(f"{token} ({calls}/min)")
    for app in args.v3_app or []:
        client_id, secret, redirect_uri = app.split(":", 2)
        sandbox.add_oauth_app(client_id, secret, redirect_uri, token=tokens[0])
    sandbox.oauth_auto_approve = args.v3_auto_approve
    return args, sandbox, tokens


def _plan(value: str) -> tuple[str, int]:
    token, _, calls = value.partition("=")
    try:
        limit = int(calls)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not TOKEN=CALLS") from None
    if not token or limit < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not TOKEN=CALLS with CALLS >= 1")
    return token, limit


if __name__ == "__main__":
    main()
