"""moto's server (S3 + DynamoDB on one port), answering one request at a time.

DynamoDB applies the writes to one item one after another, so `UpdateItem ADD` counters are
atomic. moto's own `moto_server` is threaded and updates an item without a lock, so concurrent
increments can be lost in the emulator (seen: 399 of 400). Serving requests one by one gives the
emulator DynamoDB's per-item serialization; the clients under test still send concurrently.

Usage: python aws_emulator.py HOST PORT
"""

import os
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
