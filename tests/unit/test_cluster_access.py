"""KubernetesCluster against fakes of the kubernetes client and of the API server: DGD status, the
smoke requests through the Service proxy."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from infra.live.cluster_access import (
    DGD_GROUP,
    DGD_PLURAL,
    DGD_VERSION,
    ClusterAccessError,
    KubernetesCluster,
    ServiceProxyTransport,
    graph_state_from,
    probe_frontend,
)
from infra.live.rollout import Cluster, GraphState, ProbeResult

NS = "qwen"
MODEL = "Qwen/Qwen3-0.6B"


def api_error(status: int, reason: str, message: str = "") -> ApiException:
    exc = ApiException(status=status, reason=reason)
    if message:
        exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return exc


# --- fakes of the kubernetes API objects -----------------------------------------------------


class FakeCustomObjects:
    """CustomObjectsApi.get_namespaced_custom_object over a dict of objects (or errors)."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any] | ApiException]) -> None:
        self.objects = objects
        self.calls: list[tuple[Any, ...]] = []

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, **kw: Any
    ) -> dict[str, Any]:
        self.calls.append((group, version, namespace, plural, name, kw))
        found = self.objects.get((namespace, name))
        if found is None:
            raise api_error(404, "Not Found")
        if isinstance(found, ApiException):
            raise found
        return found


class FakeFrontend:
    """A Request: canned (status, body) or an exception per (method, path)."""

    def __init__(self, overrides: dict[str, tuple[int, bytes] | Exception] | None = None) -> None:
        self.routes: dict[str, tuple[int, bytes] | Exception] = {
            "GET /health": (200, b'{"status":"healthy"}'),
            "GET /v1/models": (200, json.dumps({"data": [{"id": MODEL}]}).encode()),
            "POST /v1/completions": (200, b'{"choices":[{"text":"!"}]}'),
        }
        self.routes.update(overrides or {})
        self.sent: list[tuple[str, str, bytes | None]] = []

    def __call__(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        self.sent.append((method, path, body))
        answer = self.routes[f"{method} {path}"]
        if isinstance(answer, Exception):
            raise answer
        return answer


def cluster(
    objects: dict[tuple[str, str], dict[str, Any] | ApiException] | None = None,
    frontend: FakeFrontend | None = None,
) -> tuple[KubernetesCluster, list[tuple[str, str]]]:
    opened: list[tuple[str, str]] = []
    transport = frontend or FakeFrontend()

    def open_transport(namespace: str, service: str) -> Callable[..., tuple[int, bytes]]:
        opened.append((namespace, service))
        return transport

    built = KubernetesCluster(
        object(), custom_api=FakeCustomObjects(objects or {}), transport=open_transport
    )
    return built, opened


def dgd(state: str | None, conditions: list[dict[str, Any]] | None = None, **status: Any) -> dict:
    body: dict[str, Any] = {"metadata": {"name": "qwen-blue", "generation": 3}}
    if state is not None:
        body["status"] = {"state": state, **status}
        if conditions is not None:
            body["status"]["conditions"] = conditions
    return body


READY = {"type": "Ready", "status": "True", "reason": "all_resources_are_ready"}
NOT_READY = {
    "type": "Ready",
    "status": "False",
    "reason": "some_resources_are_not_ready",
    "message": "decode: 1/2 ready",
}


# --- graph_state -------------------------------------------------------------------------------


def test_kubernetes_cluster_is_a_cluster() -> None:
    built: Cluster = cluster()[0]
    assert isinstance(built, KubernetesCluster)


def test_ready_graph() -> None:
    built, _ = cluster({(NS, "qwen-blue"): dgd("successful", [READY])})
    assert built.graph_state(NS, "qwen-blue") == GraphState(
        exists=True, ready=True, state="successful", detail="all_resources_are_ready"
    )
    group, version, namespace, plural, name, kw = built._custom.calls[0]
    assert (group, version, namespace, plural, name) == (
        DGD_GROUP,
        DGD_VERSION,
        NS,
        DGD_PLURAL,
        "qwen-blue",
    )
    assert (DGD_GROUP, DGD_VERSION, DGD_PLURAL) == (
        "nvidia.com",
        "v1alpha1",
        "dynamographdeployments",
    )
    assert kw["_request_timeout"] == (10.0, 10.0)  # a bare float would be ignored


@pytest.mark.parametrize("state", ["pending", "failed", "initializing"])
def test_graph_not_ready_while_state_is_not_successful(state: str) -> None:
    got = graph_state_from(dgd(state, [NOT_READY]))
    assert got == GraphState(
        exists=True,
        ready=False,
        state=state,
        detail="some_resources_are_not_ready: decode: 1/2 ready",
    )


def test_graph_successful_but_ready_condition_false() -> None:
    got = graph_state_from(dgd("successful", [NOT_READY]))
    assert not got.ready
    assert got.state == "successful"
    assert "decode: 1/2 ready" in got.detail


def test_graph_successful_without_conditions_is_ready() -> None:
    got = graph_state_from(dgd("successful"))
    assert got == GraphState(exists=True, ready=True, state="successful", detail="state successful")


def test_graph_successful_with_conditions_but_none_ready_typed() -> None:
    got = graph_state_from(dgd("successful", [{"type": "Progressing", "status": "True"}]))
    assert not got.ready
    assert got.detail == "state successful"


def test_graph_without_status_yet() -> None:
    got = graph_state_from(dgd(None))
    assert (got.exists, got.ready, got.state) == (True, False, "initializing")


def test_graph_successful_for_an_older_generation_is_not_ready() -> None:
    got = graph_state_from(dgd("successful", [READY], observedGeneration=2))
    assert not got.ready
    assert "generation 3" in got.detail
    assert graph_state_from(dgd("successful", [READY], observedGeneration=3)).ready


def test_absent_graph() -> None:
    built, _ = cluster({})
    got = built.graph_state(NS, "qwen-green")
    assert got == GraphState(
        exists=False,
        ready=False,
        state="absent",
        detail=f"no DynamoGraphDeployment {NS}/qwen-green",
    )


def test_other_api_error_is_a_cluster_access_error() -> None:
    forbidden = api_error(403, "Forbidden", 'dynamographdeployments.nvidia.com "x" is forbidden')
    built, _ = cluster({(NS, "x"): forbidden})
    with pytest.raises(ClusterAccessError) as caught:
        built.graph_state(NS, "x")
    assert caught.value.status == 403
    assert caught.value.reason == "Forbidden"
    assert str(caught.value) == (
        f"reading DynamoGraphDeployment {NS}/x: HTTP 403 Forbidden"
        ' (dynamographdeployments.nvidia.com "x" is forbidden)'
    )
    assert caught.value.__suppress_context__


def test_api_error_without_status_body() -> None:
    built, _ = cluster({(NS, "x"): ApiException(status=0, reason="Connection refused")})
    with pytest.raises(ClusterAccessError, match=r"^reading .*: Connection refused$"):
        built.graph_state(NS, "x")


# --- probe: through a frontend Service ----------------------------------------------------------


def test_probe_all_ok_asks_the_service() -> None:
    frontend = FakeFrontend()
    built, opened = cluster(frontend=frontend)
    got = built.probe(NS, "qwen-blue-frontend", MODEL)
    assert got == ProbeResult(
        True, f"health ok, model listed, completion ok via Service {NS}/qwen-blue-frontend"
    )
    assert opened == [(NS, "qwen-blue-frontend")]
    method, path, body = frontend.sent[2]
    assert (method, path) == ("POST", "/v1/completions")
    assert json.loads(body or b"") == {"model": MODEL, "prompt": "ping", "max_tokens": 1}


# --- probe: the HTTP checks --------------------------------------------------------------------


def ready_cluster(frontend: FakeFrontend) -> KubernetesCluster:
    return cluster(frontend=frontend)[0]


def test_probe_health_failing() -> None:
    frontend = FakeFrontend({"GET /health": (503, b"  engine\n not ready  ")})
    got = ready_cluster(frontend).probe(NS, "qwen", MODEL)
    assert got == ProbeResult(
        False, f"GET /health -> HTTP 503: engine not ready via Service {NS}/qwen"
    )
    assert len(frontend.sent) == 1


def test_probe_health_unreachable() -> None:
    frontend = FakeFrontend({"GET /health": TimeoutError("timed out")})
    got = probe_frontend(frontend, MODEL)
    assert got == ProbeResult(False, "GET /health failed: TimeoutError: timed out")


def test_probe_model_not_listed() -> None:
    listed = json.dumps({"object": "list", "data": [{"id": "other"}]}).encode()
    frontend = FakeFrontend({"GET /v1/models": (200, listed)})
    got = probe_frontend(frontend, MODEL)
    assert got == ProbeResult(
        False, f"GET /v1/models does not list {MODEL!r} (listed: ['other']) (after health ok)"
    )
    assert [s[1] for s in frontend.sent] == ["/health", "/v1/models"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((500, b"boom"), "GET /v1/models -> HTTP 500: boom"),
        ((200, b"<html>"), "GET /v1/models: response is not a JSON object: <html>"),
        ((200, b'{"data": "nope"}'), f"GET /v1/models does not list {MODEL!r} (listed: [])"),
    ],
)
def test_probe_models_bad_answers(answer: tuple[int, bytes], expected: str) -> None:
    got = probe_frontend(FakeFrontend({"GET /v1/models": answer}), MODEL)
    assert got == ProbeResult(False, f"{expected} (after health ok)")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((500, b'{"error":"' + b"x" * 500 + b'"}'), "POST /v1/completions -> HTTP 500: "),
        ((200, b'{"choices": []}'), "POST /v1/completions returned no choices: "),
        ((200, b"not json"), "POST /v1/completions returned no choices: not json"),
        (ConnectionResetError("reset"), "POST /v1/completions failed: ConnectionResetError"),
    ],
)
def test_probe_completion_failing(answer: tuple[int, bytes] | Exception, expected: str) -> None:
    got = ready_cluster(FakeFrontend({"POST /v1/completions": answer})).probe(NS, "qwen", MODEL)
    assert not got.ok
    assert got.detail.startswith(expected)
    assert got.detail.endswith(f"(after health ok, model listed) via Service {NS}/qwen")
    assert len(got.detail) < 400  # long bodies are cut to an excerpt


# --- HTTP through the API server's Service proxy -------------------------------------------------


class FakeApiServer:
    """An HTTP server standing in for the API server: records each request and answers what the
    test gives for its path (status, body)."""

    def __init__(self, answers: dict[str, tuple[int, bytes]], delay: float = 0.0) -> None:
        self.answers = answers
        self.seen: list[tuple[str, str, Any, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.seen.append((self.command, self.path, self.headers, body))
                time.sleep(delay)
                status, payload = outer.answers[self.path]
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped waiting (the timeout test)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        configuration.api_key = {"authorization": "not-a-real-token"}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_server() -> Any:
    servers: list[FakeApiServer] = []

    def start(answers: dict[str, tuple[int, bytes]], delay: float = 0.0) -> FakeApiServer:
        servers.append(FakeApiServer(answers, delay))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


PROXY = f"/api/v1/namespaces/{NS}/services/qwen:8000/proxy"


def status_body(code: int, message: str) -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "code": code,
        }
    ).encode()


def test_service_proxy_sends_the_smoke_requests_with_the_callers_token(api_server: Any) -> None:
    server = api_server(
        {
            PROXY + "/health": (200, b'{"status":"healthy"}'),
            PROXY + "/v1/models": (200, json.dumps({"data": [{"id": MODEL}]}).encode()),
            PROXY + "/v1/completions": (200, b'{"choices":[{"text":"!"}]}'),
        }
    )
    built = KubernetesCluster(server.client(), custom_api=FakeCustomObjects({}))
    got = built.probe(NS, "qwen", MODEL)
    assert got == ProbeResult(True, f"health ok, model listed, completion ok via Service {NS}/qwen")
    assert [(method, path) for method, path, _, _ in server.seen] == [
        ("GET", PROXY + "/health"),
        ("GET", PROXY + "/v1/models"),
        ("POST", PROXY + "/v1/completions"),
    ]
    _, _, headers, body = server.seen[2]
    assert headers["Authorization"] == "Bearer not-a-real-token"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"model": MODEL, "prompt": "ping", "max_tokens": 1}


def test_service_proxy_passes_the_frontends_own_error_on(api_server: Any) -> None:
    server = api_server({PROXY + "/health": (503, b"engine not ready")})
    transport = ServiceProxyTransport(server.client(), NS, "qwen", timeout=5)
    assert transport("GET", "/health", None) == (503, b"engine not ready")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (503, 'no endpoints available for service "qwen"'),
        (
            403,
            'services "qwen:8000" is forbidden: User "alice" cannot get resource "services/proxy"',
        ),
        (404, 'services "qwen" not found'),
    ],
)
def test_service_proxy_reports_what_the_api_server_refused(
    api_server: Any, code: int, message: str
) -> None:
    server = api_server({PROXY + "/health": (code, status_body(code, message))})
    transport = ServiceProxyTransport(server.client(), NS, "qwen", timeout=5)
    got = probe_frontend(transport, MODEL)
    assert got == ProbeResult(
        False,
        f"GET /health failed: ConnectionError: Service proxy to {NS}/qwen:8000: "
        f"HTTP {code} {message}",
    )


def test_service_proxy_times_out(api_server: Any) -> None:
    server = api_server({PROXY + "/health": (200, b"late")}, delay=1.0)
    transport = ServiceProxyTransport(server.client(), NS, "qwen", timeout=0.2)
    assert probe_frontend(transport, MODEL) == ProbeResult(
        False, "GET /health failed: TimeoutError: timed out"
    )


def test_service_proxy_unreachable_api_server() -> None:
    configuration = client.Configuration()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        configuration.host = f"http://127.0.0.1:{probe.getsockname()[1]}"
    configuration.retries = False
    transport = ServiceProxyTransport(client.ApiClient(configuration), NS, "qwen", timeout=2)
    got = probe_frontend(transport, MODEL)
    assert not got.ok
    assert got.detail.startswith(
        f"GET /health failed: ConnectionError: Service proxy to {NS}/qwen:8000: "
    )


# --- from_kubeconfig ---------------------------------------------------------------------------

KUBECONFIG: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://k8s.example.invalid:6443"}}],
    "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
    "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "ctx",
}


def host(built: KubernetesCluster) -> str:
    return str(built.api_client.configuration.host)


def test_from_kubeconfig_dict() -> None:
    built = KubernetesCluster.from_kubeconfig(KUBECONFIG)
    assert host(built) == "https://k8s.example.invalid:6443"
    assert isinstance(built._custom, client.CustomObjectsApi)
    assert built._custom.api_client is built.api_client


def test_from_kubeconfig_json_and_yaml_text() -> None:
    assert host(KubernetesCluster.from_kubeconfig(json.dumps(KUBECONFIG))).endswith(":6443")
    assert host(KubernetesCluster.from_kubeconfig(yaml.safe_dump(KUBECONFIG))).endswith(":6443")


def test_from_kubeconfig_path_and_context(tmp_path: Path) -> None:
    second = {"name": "other", "cluster": {"server": "https://other.example.invalid"}}
    data = KUBECONFIG | {
        "clusters": [*KUBECONFIG["clusters"], second],
        "contexts": [
            *KUBECONFIG["contexts"],
            {"name": "other", "context": {"cluster": "other", "user": "u"}},
        ],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(data))
    assert host(KubernetesCluster.from_kubeconfig(path)).endswith(":6443")
    assert host(KubernetesCluster.from_kubeconfig(str(path), context="other")) == (
        "https://other.example.invalid"
    )


def test_from_kubeconfig_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    monkeypatch.setattr(
        "kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path), raising=True
    )
    assert host(KubernetesCluster.from_kubeconfig(None)).endswith(":6443")


@pytest.mark.parametrize(
    ("kubeconfig", "context", "message"),
    [
        ("{not json", None, "cannot parse the kubeconfig text"),
        ("- a\n- list\n", None, "not a mapping"),
        (KUBECONFIG, "missing", "cannot load kubeconfig"),
    ],
)
def test_from_kubeconfig_errors(kubeconfig: Any, context: str | None, message: str) -> None:
    with pytest.raises(ClusterAccessError, match=message):
        KubernetesCluster.from_kubeconfig(kubeconfig, context=context)


def test_from_kubeconfig_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ClusterAccessError, match="cannot load kubeconfig"):
        KubernetesCluster.from_kubeconfig(tmp_path / "nope")
