"""The local cloud: an AWS-compatible endpoint, the template's resources and its wiring, on loopback.

`LocalCloud.start()` starts a moto server unless `endpoint` names one that already runs (LocalStack,
another moto): by default a `ThreadedMotoServer` in this process that serves DynamoDB requests one at
a time (moto checks a write's condition and writes without a lock; DynamoDB is atomic), with
`server="process"` a child process (`omsdev.localcloud.moto_endpoint`, its own interpreter and core,
every request one at a time). It then provisions
the template, merges the functions' environments into this process (plus `OMS_AWS_ENDPOINT_URL`)
and starts the emulated event sources; with `api_port` it also serves the template's API routes
(`api_gateway`, at `api_url`). With `fault_proxy=True` the functions reach the endpoint through a
fault-injecting proxy (`fault_proxy.FaultProxy`, started after provisioning): `OMS_AWS_ENDPOINT_URL`
names the proxy, `endpoint` stays the endpoint itself (for tooling and test assertions), and
`faults` holds the proxy's rules and counters (no rules: nothing is faulted). `stop()` undoes all
of it: threads joined, proxy and server stopped, environment restored.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from omsdev.localcloud.api_gateway import ApiGateway
from omsdev.localcloud.event_sources import (
    ApiRoute,
    EventSource,
    ScheduleSource,
    api_routes,
    build_sources,
)
from omsdev.localcloud.fault_proxy import FaultProxy, FaultRules
from omsdev.localcloud.lambda_runtime import LambdaRuntime, merge_environments
from omsdev.localcloud.provision import Stack
from omsdev.localcloud.stream_source import DynamoDBStreamSource
from omsdev.localcloud.template import REGION, Template

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[3] / "infra" / "template.yaml"
FUNCTIONS_DIR = DEFAULT_TEMPLATE.parents[1] / "functions"
TOOLING_ENVIRONMENT = {
    # Dummy credentials: nothing started here may ever reach real AWS.
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


def find_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def endpoint_is_up(endpoint: str) -> bool:
    """True when something answers HTTP at the endpoint (moto, LocalStack)."""
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/moto-api/", timeout=2):
            return True
    except OSError as error:
        return hasattr(error, "code")  # an HTTP error status is still an answer (LocalStack: 404)


def cold_start_containers() -> None:
    """Forget what warm handler modules cached (settings, clients, secrets) when a new stack starts.

    Only modules already imported are touched; nothing is imported here.
    """
    # Channel adapters keep access and refresh tokens per shop at module level: a new container
    # starts without them and reads the shop's secret again.
    for module_name in [name for name in sys.modules if name.startswith("oms.adapters.channels.")]:
        module = sys.modules[module_name]
        if hasattr(module, "_tokens") or hasattr(module, "_sessions"):
            importlib.reload(module)
    # Handlers build some dependencies once per container (the retry consumer's idempotency store,
    # bound to one table on one endpoint): a new stack gets fresh handler modules too.
    for module_name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").resolve().is_relative_to(FUNCTIONS_DIR):
            importlib.reload(module)
    for module_name, attribute, action in (
        ("oms.settings", "get_settings", "cache_clear"),
        ("oms.adapters.aws", "client", "cache_clear"),
        ("oms.adapters.secrets", "_provider", "cache_clear"),
        ("oms.adapters.channels.limiters", "forget_all", None),
    ):
        module = sys.modules.get(module_name)
        target = getattr(module, attribute, None) if module else None
        if target is not None:
            (getattr(target, action) if action else target)()
    # Lambda imports a function with its environment already set; here the CLI may have imported the
    # layer's Logger before this stack's POWERTOOLS_LOG_LEVEL was, so a new container sets it again.
    observability, level = sys.modules.get("oms.observability"), os.environ.get("POWERTOOLS_LOG_LEVEL")
    if observability is not None and level:
        observability.logger.setLevel(level)


class SerialisedThreadedMotoServer(ThreadedMotoServer):
    """moto's ThreadedMotoServer with its app wrapped in `OneDynamoDBRequestAtATime` and whole-table-copy-free
    transactions (`moto_transactions`)."""

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from omsdev.localcloud import moto_query, moto_queue_attributes, moto_transactions
        from omsdev.localcloud.moto_endpoint import OneDynamoDBRequestAtATime

        moto_transactions.install()
        moto_queue_attributes.install()
        moto_query.install()
        app = OneDynamoDBRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


class MotoThread:
    """A moto server in a thread of this process; port 0 lets the OS choose."""

    def __init__(self, host: str, port: int):
        # werkzeug logs every request at INFO; a local cloud's console is for progress.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = SerialisedThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._server.start()
        self.endpoint = f"http://{host}:{self._server.get_host_and_port()[1]}"

    def stop(self) -> None:
        self._server.stop()


class MotoProcess:
    """The moto endpoint as a child process: its own interpreter and GIL, like a remote service."""

    def __init__(self, host: str, port: int):
        port = port or find_free_port(host)
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
                raise RuntimeError(f"moto server did not start on {self.endpoint}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def start_moto_server(host: str = "127.0.0.1", port: int = 0, server: str = "thread") -> MotoThread | MotoProcess:
    """A started moto server (`.endpoint`, `.stop()`); a clear error when the port is taken."""
    if server not in ("thread", "process"):
        raise ValueError("server must be 'thread' or 'process'")
    if port and not port_is_free(host, port):
        raise RuntimeError(f"port {port} on {host} is taken (a local cloud already running? "
                           f"use it with --endpoint http://{host}:{port})")
    return MotoThread(host, port) if server == "thread" else MotoProcess(host, port)


class LocalCloud:
    """Endpoint + provisioned stack + in-process functions + emulated event sources."""

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
        extra_environment: dict | None = None,
        start_event_sources: bool = True,
        server: str = "thread",
        api_port: int | None = None,
        fault_proxy: bool = False,
        fault_seed: int = 0,
    ):
        if server not in ("thread", "process"):
            raise ValueError("server must be 'thread' or 'process'")
        self.template = Template.load(template_path, parameter_overrides)
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.host, self.port, self.speed = host, port, speed
        self.stack_name = stack_name
        self.extra_environment = dict(extra_environment or {})
        self.start_event_sources = start_event_sources
        self.server_kind = server
        self.api_port = api_port  # None: the API routes are not served; 0: on a free port
        self.api_gateway: ApiGateway | None = None
        # The functions' calls to AWS through a fault-injecting proxy; rules can be set before start().
        self.faults: FaultRules | None = FaultRules(seed=fault_seed) if fault_proxy else None
        self.fault_proxy: FaultProxy | None = None
        self.server: MotoThread | MotoProcess | None = None
        self.stack: Stack | None = None
        self.runtime: LambdaRuntime | None = None
        self.sources: list[EventSource] = []
        self.routes: list[ApiRoute] = []
        self.environment: dict[str, str] = {}
        self._saved_environment: dict[str, str | None] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "LocalCloud":
        try:
            self._set_environment(TOOLING_ENVIRONMENT)
            if self.endpoint is None:
                self.server = start_moto_server(self.host, self.port, self.server_kind)
                self.endpoint = self.server.endpoint
            elif not endpoint_is_up(self.endpoint):
                raise RuntimeError(f"nothing answers at {self.endpoint}")
            self.stack = Stack(self.template, self.stack_name, self.endpoint).provision()
            functions = self.template.functions()
            environment = merge_environments({spec.logical_id: self.stack.function_environment(spec.logical_id)
                                              for spec in functions})
            functions_endpoint = self.endpoint
            if self.faults is not None:  # after provisioning: the stack is never built through faults
                self.fault_proxy = FaultProxy(self.endpoint, self.faults, host=self.host).start()
                functions_endpoint = self.fault_proxy.url
            self.environment = {**environment, "OMS_AWS_ENDPOINT_URL": functions_endpoint, **self.extra_environment}
            self._set_environment(self.environment)
            cold_start_containers()
            self.runtime = LambdaRuntime(
                functions, function_names={spec.logical_id: self.stack.function_name(spec.logical_id) for spec in functions},
                region=self.stack.region, account_id=self.stack.account_id,
            )
            self.routes = api_routes(functions, self.stack.resolver)
            build_sources(self.runtime, self.stack, self.speed)  # refuse unsupported wiring now, not later
            if self.api_port is not None:
                self.api_gateway = ApiGateway(self.routes, self.runtime, self.stack, host=self.host,
                                              port=self.api_port).start()
            if self.start_event_sources:
                self.start_wiring()
        except BaseException:
            self.stop()
            raise
        return self

    def start_wiring(self, only: set[str] | None = None) -> list[EventSource]:
        """Start the template's event sources (optionally only those of some functions)."""
        started = [source for source in build_sources(self.runtime, self.stack, self.speed)
                   if only is None or source.function_id in only]
        for source in started:
            source.start()
        self.sources.extend(started)
        return started

    def settle(self, timeout: float, stop: threading.Event | None = None, quiet_checks: int = 2) -> float | None:
        """Stop the schedules (pollers, feeds, sweeps: nothing new comes in) and let the stream and queue
        consumers go on until every stream consumer has seen the stream's last record, in `quiet_checks`
        looks a second and a half apart (one consumer's writes are records for the others). The seconds
        it took; None if `timeout` (or `stop`) came first. Everything keeps running until `stop_wiring`."""
        started, stop = time.monotonic(), stop or threading.Event()
        for source in self.sources:
            if isinstance(source, ScheduleSource):
                source.stop()
        streams = [source for source in self.sources if isinstance(source, DynamoDBStreamSource)]
        quiet = 0
        while quiet < quiet_checks:
            quiet = quiet + 1 if all(source.caught_up.is_set() for source in streams) else 0
            if quiet < quiet_checks and (stop.wait(1.5) or time.monotonic() - started >= timeout):
                return None
        return time.monotonic() - started

    def stop_wiring(self, timeout: float = 60) -> None:
        for source in self.sources:
            source.stop()
        for source in self.sources:
            source.join(timeout=timeout)
        self.sources = []

    def stop(self) -> None:
        if self.api_gateway is not None:
            self.api_gateway.stop()
            self.api_gateway = None
        self.stop_wiring()
        if self.fault_proxy is not None:
            self.fault_proxy.stop()
            self.fault_proxy = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        self._restore_environment()

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- use -----------------------------------------------------------------------------------
    @property
    def api_url(self) -> str | None:
        """Where the template's API routes are served (`api_port`), None when they are not."""
        return self.api_gateway.url if self.api_gateway else None

    def invoke(self, function_logical_id: str, event: Any, *, bypass_concurrency: bool = False) -> Any:
        """A RequestResponse invocation; beyond the function's reserved concurrency it is throttled."""
        return self.runtime.invoke(function_logical_id, event, bypass_concurrency=bypass_concurrency)

    def stats(self) -> dict:
        stats = {
            "endpoint": self.endpoint,
            "stack": self.stack_name,
            "functions": self.runtime.snapshot() if self.runtime else {},
            "event_sources": [source.stats() for source in self.sources],
        }
        if self.faults is not None:
            stats["aws_faults"] = self.faults.snapshot()
        return stats

    def _set_environment(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_environment.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_environment(self) -> None:
        for key, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environment = {}
