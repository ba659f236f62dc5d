"""KubernetesCluster against fakes of the kubernetes client: DGD status, pod choice, HTTP checks."""

from __future__ import annotations

import json
import socket
import threading
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
    PortForwardTransport,
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


class FakeCore:
    """CoreV1Api: Services by name, pods filtered by an equality label selector."""

    def __init__(
        self, services: dict[str, client.V1Service | ApiException], pods: list[client.V1Pod]
    ) -> None:
        self.services = services
        self.pods = pods
        self.selectors: list[str] = []

    def read_namespaced_service(self, name: str, namespace: str, **kw: Any) -> client.V1Service:
        found = self.services.get(name)
        if found is None:
            raise api_error(404, "Not Found")
        if isinstance(found, ApiException):
            raise found
        return found

    def list_namespaced_pod(
        self, namespace: str, label_selector: str = "", **kw: Any
    ) -> client.V1PodList:
        self.selectors.append(label_selector)
        wanted = dict(pair.split("=", 1) for pair in label_selector.split(","))
        items = [p for p in self.pods if wanted.items() <= (p.metadata.labels or {}).items()]
        return client.V1PodList(items=items)

    def connect_get_namespaced_pod_portforward(self, name: str, namespace: str, **kw: Any) -> None:
        raise AssertionError("the fake forward function stands in for this")


FRONTEND_LABELS = {
    "nvidia.com/dynamo-graph-deployment-name": "qwen-blue",
    "nvidia.com/dynamo-component-type": "frontend",
}


def service(name: str = "qwen-blue-frontend", selector: dict[str, str] | None = None) -> Any:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name, namespace=NS),
        spec=client.V1ServiceSpec(selector=FRONTEND_LABELS if selector is None else selector),
    )


def pod(
    name: str,
    phase: str = "Running",
    ready: str = "True",
    labels: dict[str, str] | None = None,
    deleting: bool = False,
) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=name,
            namespace=NS,
            labels=FRONTEND_LABELS if labels is None else labels,
            deletion_timestamp="2025-01-01T00:00:00Z" if deleting else None,
        ),
        status=client.V1PodStatus(
            phase=phase, conditions=[client.V1PodCondition(type="Ready", status=ready)]
        ),
    )


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
    core: FakeCore | None = None,
    frontend: FakeFrontend | None = None,
) -> tuple[KubernetesCluster, list[tuple[str, str]]]:
    opened: list[tuple[str, str]] = []
    transport = frontend or FakeFrontend()

    def open_transport(namespace: str, pod_name: str) -> Callable[..., tuple[int, bytes]]:
        opened.append((namespace, pod_name))
        return transport

    built = KubernetesCluster(
        object(),
        custom_api=FakeCustomObjects(objects or {}),
        core_api=core or FakeCore({}, []),
        transport=open_transport,
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
    assert kw["_request_timeout"] > 0


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


# --- probe: finding a pod ----------------------------------------------------------------------


def test_probe_all_ok_picks_a_running_ready_pod() -> None:
    core = FakeCore(
        {"qwen-blue-frontend": service()},
        [
            pod("a-pending", phase="Pending", ready="False"),
            pod("b-unready", ready="False"),
            pod("c-terminating", deleting=True),
            pod("e-ready"),
            pod("d-ready"),
            pod("z-other", labels={"app": "other"}),
        ],
    )
    frontend = FakeFrontend()
    built, opened = cluster(core=core, frontend=frontend)
    got = built.probe(NS, "qwen-blue-frontend", MODEL)
    assert got == ProbeResult(True, "health ok, model listed, completion ok via pod d-ready")
    assert opened == [(NS, "d-ready")]
    assert core.selectors == [
        "nvidia.com/dynamo-component-type=frontend,"
        "nvidia.com/dynamo-graph-deployment-name=qwen-blue"
    ]
    method, path, body = frontend.sent[2]
    assert (method, path) == ("POST", "/v1/completions")
    assert json.loads(body or b"") == {"model": MODEL, "prompt": "ping", "max_tokens": 1}


def test_probe_service_missing() -> None:
    built, opened = cluster(core=FakeCore({}, [pod("p")]))
    assert built.probe(NS, "qwen", MODEL) == ProbeResult(False, f"no Service {NS}/qwen")
    assert opened == []


def test_probe_service_read_forbidden_raises() -> None:
    core = FakeCore({"qwen": api_error(403, "Forbidden")}, [])
    built, _ = cluster(core=core)
    with pytest.raises(ClusterAccessError, match="HTTP 403 Forbidden"):
        built.probe(NS, "qwen", MODEL)


def test_probe_service_without_selector() -> None:
    built, _ = cluster(core=FakeCore({"qwen": service("qwen", selector={})}, [pod("p")]))
    got = built.probe(NS, "qwen", MODEL)
    assert not got.ok
    assert "has no selector" in got.detail


def test_probe_no_ready_pod() -> None:
    core = FakeCore({"qwen": service("qwen")}, [pod("p", ready="False")])
    built, opened = cluster(core=core)
    got = built.probe(NS, "qwen", MODEL)
    assert not got.ok
    assert got.detail.startswith(f"no Running and Ready pod behind Service {NS}/qwen (1 match ")
    assert opened == []


# --- probe: the HTTP checks --------------------------------------------------------------------


def ready_cluster(frontend: FakeFrontend) -> KubernetesCluster:
    core = FakeCore({"qwen": service("qwen")}, [pod("fe-0")])
    return cluster(core=core, frontend=frontend)[0]


def test_probe_health_failing() -> None:
    frontend = FakeFrontend({"GET /health": (503, b"  engine\n not ready  ")})
    got = ready_cluster(frontend).probe(NS, "qwen", MODEL)
    assert got == ProbeResult(False, "GET /health -> HTTP 503: engine not ready via pod fe-0")
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
    assert got.detail.endswith("(after health ok, model listed) via pod fe-0")
    assert len(got.detail) < 400  # long bodies are cut to an excerpt


# --- HTTP over the port-forward socket ---------------------------------------------------------


class FakePortForward:
    """kubernetes.stream.portforward's result: socket(port) is one end of a socketpair."""

    def __init__(self, port: int, serve: Callable[[socket.socket], None], error: str | None):
        ours, theirs = socket.socketpair()
        self.port = port
        self._ours = ours
        self._error = error
        self.closed = False
        self.thread = threading.Thread(target=serve, args=(theirs,), daemon=True)
        self.thread.start()

    def socket(self, port: int) -> socket.socket:
        assert port == self.port
        return self._ours

    def error(self, port: int) -> str | None:
        return self._error

    def close(self) -> None:
        self.closed = True
        self._ours.close()


def read_request(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def forwarder(
    serve: Callable[[socket.socket], None], error: str | None = None
) -> tuple[Callable[..., FakePortForward], list[Any]]:
    made: list[Any] = []

    def forward(method: Any, name: str, namespace: str, ports: str) -> FakePortForward:
        pf = FakePortForward(int(ports), serve, error)
        made.append((method, name, namespace, ports, pf))
        return pf

    return forward, made


def test_port_forward_transport_speaks_http() -> None:
    seen: list[bytes] = []

    def serve(sock: socket.socket) -> None:
        seen.append(read_request(sock))
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        sock.close()

    forward, made = forwarder(serve)
    core = FakeCore({}, [])
    transport = PortForwardTransport(core, NS, "fe-0", timeout=5, forward=forward)
    assert transport("POST", "/v1/completions", b'{"a":1}') == (200, b"ok")

    method, name, namespace, ports, pf = made[0]
    assert method == core.connect_get_namespaced_pod_portforward
    assert (name, namespace, ports) == ("fe-0", NS, "8000")
    assert pf.closed
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/completions HTTP/1.1"
    assert "Connection: close" in lines
    assert "Content-Type: application/json" in lines
    assert body == b'{"a":1}'


def test_port_forward_transport_times_out() -> None:
    release = threading.Event()

    def serve(sock: socket.socket) -> None:
        read_request(sock)
        release.wait(5)  # never answers while the client waits
        sock.close()

    forward, made = forwarder(serve)
    transport = PortForwardTransport(FakeCore({}, []), NS, "fe-0", timeout=0.2, forward=forward)
    try:
        assert probe_frontend(transport, MODEL) == ProbeResult(
            False, "GET /health failed: TimeoutError: timed out"
        )
    finally:
        release.set()
    assert made[0][4].closed


def test_port_forward_transport_reports_the_kubelet_error() -> None:
    def serve(sock: socket.socket) -> None:
        read_request(sock)
        sock.close()  # the kubelet could not reach the pod port

    forward, _ = forwarder(serve, error="connection refused on port 8000")
    transport = PortForwardTransport(FakeCore({}, []), NS, "fe-0", timeout=5, forward=forward)
    with pytest.raises(ConnectionError, match="fe-0:8000: connection refused on port 8000"):
        transport("GET", "/health", None)


def test_port_forward_transport_handshake_failure() -> None:
    def forward(*args: Any, **kwargs: Any) -> Any:
        raise ApiException(status=0, reason="Handshake status 403 Forbidden")

    transport = PortForwardTransport(FakeCore({}, []), NS, "fe-0", forward=forward)
    got = probe_frontend(transport, MODEL)
    assert got == ProbeResult(
        False,
        "GET /health failed: ConnectionError: port-forward to fe-0:8000: "
        "Handshake status 403 Forbidden",
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
    assert isinstance(built._core, client.CoreV1Api)
    assert built._core.api_client is built.api_client


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
