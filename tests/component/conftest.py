"""Component-test fixtures: one moto server on a free loopback port for the whole session.

`moto_endpoint` is its URL. AWS credentials and region are dummies set for the session;
`AWS_ENDPOINT_URL` is deliberately not set (it would stop `moto.mock_aws` from intercepting in
unit tests): pass the endpoint to each client. `cloud_factory` starts `LocalCloud`s on that endpoint
with unique stack names and stops them after the test.
"""

from __future__ import annotations

import os
import uuid
import pytest

from omsdev.localcloud.cloud import LocalCloud, start_moto_server

SESSION_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # botocore >= 1.44.4 with moto 5.2: DynamoDB Streams calls fail without this.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


@pytest.fixture(scope="session")
def moto_endpoint():
    saved = {key: os.environ.get(key) for key in SESSION_ENVIRONMENT}
    os.environ.update(SESSION_ENVIRONMENT)
    server = start_moto_server("127.0.0.1", 0)  # moto's ThreadedMotoServer, DynamoDB writes atomic
    yield server.endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def unique_stack_name():
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cloud_factory(moto_endpoint):
    """make(template_path, **LocalCloud kwargs) -> a started LocalCloud on the session endpoint."""
    started = []

    def make(template_path, **kwargs):
        kwargs.setdefault("stack_name", f"t{uuid.uuid4().hex[:10]}")
        cloud = LocalCloud(template_path, endpoint=moto_endpoint, **kwargs)
        started.append(cloud)
        return cloud.start()

    yield make
    for cloud in started:
        cloud.stop()
