"""`oms openapi [--write | --check]`: the reviewer API's OpenAPI document, generated from the code
(functions/review_api/handler.py) and committed at docs/openapi/reviewer-api.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "openapi" / "reviewer-api.json"


def register(subparsers) -> None:
    parser = subparsers.add_parser("openapi", help="the reviewer API's OpenAPI document")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--write", action="store_true", help=f"write it to {DOCUMENT.relative_to(DOCUMENT.parents[2])}")
    what.add_argument("--check", action="store_true", help="fail when the committed document differs from the code")
    parser.set_defaults(run=run)


def generated() -> str:
    functions = str(Path(__file__).resolve().parents[3] / "functions")
    if functions not in sys.path:
        sys.path.insert(0, functions)
    from review_api.handler import openapi_document

    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def run(args) -> int:
    text = generated()
    if args.write:
        DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
        DOCUMENT.write_text(text, encoding="utf-8")
        print(f"wrote {DOCUMENT}")
        return 0
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text(encoding="utf-8") != text:
            print(f"{DOCUMENT} differs from the code: run `oms openapi --write` and commit it", file=sys.stderr)
            return 1
        print("the committed OpenAPI document matches the code")
        return 0
    sys.stdout.write(text)
    return 0
