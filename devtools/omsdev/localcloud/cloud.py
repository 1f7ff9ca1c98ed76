"""The local cloud: an AWS-compatible endpoint, the template's resources, and its wiring, on loopback.

`LocalCloud.start()` starts a moto server in its own process (so it gets its own core, like a
remote service) unless `endpoint` names one that already runs (LocalStack, another moto), provisions
`infra/template.yaml`, merges the functions' environments into this process and starts the
emulated event sources. `stop()` undoes all of it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from omsdev.localcloud.event_sources import build_sources
from omsdev.localcloud.provision import Stack
from omsdev.localcloud.runtime import LambdaRuntime, apply_environment, merge_environments
from omsdev.localcloud.template import REGION, Template

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[3] / "infra" / "template.yaml"
TOOLING_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # botocore >= 1.44.4 with moto 5.2: DynamoDB Streams calls fail without this.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    # No X-Ray daemon locally; Powertools would otherwise try to send segments.
    "POWERTOOLS_TRACE_DISABLED": "true",
    # CloudWatch EMF lines on stdout mean nothing without CloudWatch.
    "POWERTOOLS_METRICS_DISABLED": "true",
}


def cold_start_containers() -> None:
    """Forget what warm containers cached (settings, clients, secrets, rate state): a new stack is a new world."""
    from oms.adapters import aws, secrets
    from oms.adapters.channels import limiters
    from oms.settings import get_settings

    get_settings.cache_clear()
    aws.client.cache_clear()
    secrets._provider.cache_clear()
    limiters.forget_all()


def find_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def endpoint_is_up(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
            return True
    except OSError as error:
        # Any HTTP answer (LocalStack answers 404 here) means something listens.
        return hasattr(error, "code")


class MotoServerProcess:
    def __init__(self, host: str, port: int):
        self.endpoint = f"http://{host}:{port}"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "omsdev.localcloud.moto_endpoint", "-H", host, "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"},
        )
        deadline = time.monotonic() + 30
        while not endpoint_is_up(self.endpoint):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto server did not start on {self.endpoint} (port taken?)")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()


class LocalCloud:
    def __init__(
        self,
        template_path: str | Path = DEFAULT_TEMPLATE,
        *,
        endpoint: str | None = None,
        host: str = "127.0.0.1",
        port: int = 4566,
        speed: float = 1.0,
        stack_name: str = "oms-local",
        parameter_overrides: dict | None = None,
        start_event_sources: bool = True,
    ):
        self.template = Template.load(template_path, parameter_overrides)
        self.endpoint = endpoint
        self.host, self.port, self.speed = host, port or find_free_port(), speed
        self.stack_name = stack_name
        self.start_event_sources = start_event_sources
        self.server: MotoServerProcess | None = None
        self.stack: Stack | None = None
        self.runtime: LambdaRuntime | None = None
        self.sources = []

    def start(self) -> "LocalCloud":
        os.environ.update(TOOLING_ENVIRONMENT)
        if self.endpoint is None:
            self.server = MotoServerProcess(self.host, self.port)
            self.endpoint = self.server.endpoint
        self.stack = Stack(self.template, self.stack_name, self.endpoint).provision()
        functions = self.template.functions()
        environment = merge_environments(
            {spec.logical_id: self.stack.function_environment(spec.logical_id) for spec in functions}
        )
        environment["OMS_AWS_ENDPOINT_URL"] = self.endpoint
        apply_environment(environment)
        cold_start_containers()
        self.runtime = LambdaRuntime(functions)
        if self.start_event_sources:
            self.start_wiring()
        return self

    def start_wiring(self, only: set[str] | None = None) -> None:
        """Start the template's event sources (optionally only for some functions)."""
        sources = build_sources(self.runtime, self.stack, self.speed)
        started = [source for source in sources if only is None or source.function_id in only]
        for source in started:
            source.start()
        self.sources.extend(started)

    def stop_wiring(self) -> None:
        for source in self.sources:
            source.stop()
        for source in self.sources:
            source.join(timeout=60)
        self.sources = []

    def invoke(self, function_id: str, event: dict):
        return self.runtime.invoke(function_id, event)

    def stop(self) -> None:
        self.stop_wiring()
        if self.server:
            self.server.stop()

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
