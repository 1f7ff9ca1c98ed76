"""The local cloud's AWS endpoint: moto's server app, one DynamoDB request at a time.

DynamoDB makes each conditional write atomic; moto's threaded server does not (two concurrent
PutItem with attribute_not_exists can both succeed). Serialising requests restores the AWS
semantics our exactly-once guarantees rest on; connections stay keep-alive and threaded. Transactions
skip moto's whole-table backups (`moto_transactions`), a send to a long queue does not count its
messages (`moto_queue_attributes`), and a Query reads its partition, not the table (`moto_query`).
Run: python -m omsdev.localcloud.moto_endpoint -H 127.0.0.1 -p 4566
"""

from __future__ import annotations

import argparse
import os
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

from omsdev.localcloud import moto_query, moto_queue_attributes, moto_transactions


class OneDynamoDBRequestAtATime:
    """Serialises DynamoDB calls only: an SQS long poll must not hold up the rest of the endpoint."""

    def __init__(self, app):
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    moto_transactions.install()
    moto_queue_attributes.install()
    moto_query.install()
    run_simple(args.host, args.port, OneDynamoDBRequestAtATime(DomainDispatcherApplication(create_backend_app)),
               threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
