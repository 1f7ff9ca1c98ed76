"""Registering a shop: its credentials in Secrets Manager and its row in the ShopCursors table.

What an operator does once per shop in AWS (README "Deploying"); the local cloud does it for the
simulators' shops. Runs with the environment of a function (table names, endpoint) already set.
"""

from __future__ import annotations

import json

from oms.adapters import aws
from oms.adapters.cursors_table import CursorsTable
from oms.adapters.secrets import secret_name
from oms.settings import get_settings


def register_shop(channel: str, shop_id: str, credentials: dict) -> str:
    settings = get_settings()
    name = secret_name(settings.secrets_prefix, channel, shop_id)
    secrets = aws.client("secretsmanager")
    try:
        secrets.create_secret(Name=name, SecretString=json.dumps(credentials))
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=name, SecretString=json.dumps(credentials))
    CursorsTable(settings.shop_cursors_table).register_shop(channel, shop_id)
    return name
