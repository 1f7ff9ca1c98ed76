"""Sub-commands of `oms`; each module exposes `register(subparsers)` and sets `run` on its parser."""

from __future__ import annotations

import importlib

COMMAND_MODULES = ("normalize", "local", "invoke", "reconcile", "quarantine", "bench", "inventory", "risk", "openapi", "kpis", "audit")


def register_all(subparsers) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"omsdev.commands.{name}").register(subparsers)
