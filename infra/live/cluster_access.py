"""The real `Cluster`: DGD readiness and frontend smoke tests through the official kubernetes client.

`graph_state` reads the DynamoGraphDeployment's status; `probe` sends the smoke requests to a
frontend Service through the API server's Service proxy. The HTTP checks (`probe_frontend`) take
any request function, so they are tested without a cluster.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from components.dgd import FRONTEND_PORT
from infra.live.rollout import GraphState, ProbeResult

DGD_GROUP = "nvidia.com"
DGD_VERSION = "v1alpha1"
DGD_PLURAL = "dynamographdeployments"

# (method, path, body) -> (HTTP status, response body); raises OSError/HTTPException on failure.
Request = Callable[[str, str, bytes | None], tuple[int, bytes]]
# (namespace, service) -> a Request bound to that Service's frontend port.
TransportFactory = Callable[[str, str], Request]

_EXCERPT_CHARS = 200


class ClusterAccessError(Exception):
    """The Kubernetes API refused or failed a call. The message is meant for users as is."""

    def __init__(self, message: str, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _api_error(action: str, exc: ApiException) -> ClusterAccessError:
    """One line with the HTTP status, reason and the API server's own message, if any."""
    status = exc.status or None
    reason = exc.reason or None
    text = f"{action}: HTTP {status} {reason or ''}".rstrip() if status else f"{action}: {reason}"
    message = _status_message(exc.body)
    if message:
        text += f" ({message})"
    return ClusterAccessError(text, status=status, reason=reason)


def _status_message(body: Any) -> str:
    """The `message` of a metav1.Status error body; '' when the body is not one."""
    status = _api_status(body)
    return str(status.get("message") or "") if status else ""


def _api_status(body: Any) -> dict[str, Any] | None:
    """The body as the API server's own metav1.Status object; None for any other body (an
    upstream's answer relayed by a proxy, or no JSON at all)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) and parsed.get("kind") == "Status" else None


def client_timeout(seconds: float) -> tuple[float, float]:
    """The kubernetes client's `_request_timeout` for `seconds`: it honours an int or a
    (connect, read) pair and silently drops a float."""
    return (seconds, seconds)


# --- DGD status ---------------------------------------------------------------------------------


def graph_state_from(obj: Mapping[str, Any]) -> GraphState:
    """Readiness of a DGD object as returned by the API (a plain dict)."""
    status = obj.get("status") or {}
    state = str(status.get("state") or "")
    if not state:
        return GraphState(
            exists=True,
            ready=False,
            state="initializing",
            detail="the operator has not reported a status yet",
        )
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    ready_condition = next((c for c in conditions if c.get("type") == "Ready"), None)
    detail = _condition_text(ready_condition) or f"state {state}"
    # A "successful" left over from the previous spec says nothing about the current one.
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        stale = f"operator has not observed generation {generation} yet (at {observed})"
        return GraphState(exists=True, ready=False, state=state, detail=stale)
    if conditions:
        ready = (
            state == "successful"
            and ready_condition is not None
            and ready_condition.get("status") == "True"
        )
    else:
        # Some operator versions report only the state; trust it then.
        ready = state == "successful"
    return GraphState(exists=True, ready=ready, state=state, detail=detail)


def _condition_text(condition: Mapping[str, Any] | None) -> str:
    if condition is None:
        return ""
    parts = [str(condition[k]) for k in ("reason", "message") if condition.get(k)]
    return ": ".join(parts)


# --- HTTP checks --------------------------------------------------------------------------------


def probe_frontend(request: Request, served_model_name: str) -> ProbeResult:
    """/health -> 200, /v1/models lists the model, a one-token completion returns choices.

    Stops at the first failing check; the detail names it and what passed before it.
    """
    passed: list[str] = []

    def fail(what: str) -> ProbeResult:
        after = f" (after {', '.join(passed)})" if passed else ""
        return ProbeResult(False, what + after)

    got = _send(request, "GET", "/health", None)
    if isinstance(got, str):
        return fail(got)
    if got[0] != 200:
        return fail(_bad_status("GET /health", got))
    passed.append("health ok")

    got = _send(request, "GET", "/v1/models", None)
    if isinstance(got, str):
        return fail(got)
    if got[0] != 200:
        return fail(_bad_status("GET /v1/models", got))
    models = _json_object(got[1])
    if models is None:
        return fail(f"GET /v1/models: response is not a JSON object: {_excerpt(got[1])}")
    entries = models.get("data")
    listed = (
        [str(m.get("id")) for m in entries if isinstance(m, dict)]
        if isinstance(entries, list)
        else []
    )
    if served_model_name not in listed:
        return fail(f"GET /v1/models does not list {served_model_name!r} (listed: {listed})")
    passed.append("model listed")

    payload = {"model": served_model_name, "prompt": "ping", "max_tokens": 1}
    got = _send(request, "POST", "/v1/completions", json.dumps(payload).encode())
    if isinstance(got, str):
        return fail(got)
    if got[0] != 200:
        return fail(_bad_status("POST /v1/completions", got))
    completion = _json_object(got[1])
    choices = completion.get("choices") if completion is not None else None
    if not isinstance(choices, list) or not choices:
        return fail(f"POST /v1/completions returned no choices: {_excerpt(got[1])}")
    passed.append("completion ok")
    return ProbeResult(True, ", ".join(passed))


def _send(request: Request, method: str, path: str, body: bytes | None) -> tuple[int, bytes] | str:
    """The response, or a one-line description of why there is none."""
    try:
        return request(method, path, body)
    except (OSError, http.client.HTTPException) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return f"{method} {path} failed: {reason}"


def _bad_status(what: str, response: tuple[int, bytes]) -> str:
    status, body = response
    return f"{what} -> HTTP {status}: {_excerpt(body)}"


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _excerpt(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    if not text:
        return "(empty body)"
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "..."


# --- HTTP through the API server's Service proxy -------------------------------------------------


class ServiceProxyTransport:
    """A `Request` to one Service port through the API server's proxy
    (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH`, RBAC `services/proxy`).

    The API server picks a ready endpoint and dials it over the pod network, so the frontend's
    NetworkPolicy decides (it lets the API server's control-plane subnets in on 8000), unlike a
    pod port-forward, which the kubelet delivers past every policy.
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        service: str,
        port: int = FRONTEND_PORT,
        timeout: float = 30.0,
    ) -> None:
        self._api = api_client
        self._namespace = namespace
        self._service = service
        self._port = port
        self._timeout = timeout

    @property
    def base(self) -> str:
        return f"/api/v1/namespaces/{self._namespace}/services/{self._service}:{self._port}/proxy"

    def __call__(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.loads(body)  # the client serializes JSON bodies itself
        try:
            response = self._api.call_api(
                self.base + path,
                method,
                header_params=headers,
                body=payload,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=client_timeout(self._timeout),
            )
        except ApiException as exc:
            return self._refused_or_answered(exc)
        except urllib3.exceptions.HTTPError as exc:
            raise self._transport_error(exc) from None
        return int(response.status), bytes(response.data)

    def _transport_error(self, exc: urllib3.exceptions.HTTPError) -> OSError:
        cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
        # urllib3 files a refused connection under its connect timeouts; it is not one.
        if isinstance(cause, urllib3.exceptions.TimeoutError) and not isinstance(
            cause, urllib3.exceptions.NewConnectionError
        ):
            return TimeoutError("timed out")
        return ConnectionError(f"{self._where}: {cause}")

    @property
    def _where(self) -> str:
        return f"Service proxy to {self._namespace}/{self._service}:{self._port}"

    def _refused_or_answered(self, exc: ApiException) -> tuple[int, bytes]:
        """The frontend's own error answer, or ConnectionError when the API server refused or
        could not deliver (its answers are metav1.Status objects: forbidden, no endpoints)."""
        body = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
        if not exc.status:
            raise ConnectionError(f"{self._where}: {exc.reason}")
        if _api_status(body) is not None:
            detail = _status_message(body) or str(exc.reason or "")
            raise ConnectionError(f"{self._where}: HTTP {exc.status} {detail}".rstrip())
        return int(exc.status), body


# --- the Cluster ------------------------------------------------------------------------------


class KubernetesCluster:
    """`infra.live.rollout.Cluster` over one API client (one cluster, one set of credentials)."""

    def __init__(
        self,
        api_client: Any,
        *,
        request_timeout: float = 10.0,
        probe_timeout: float = 30.0,
        custom_api: Any = None,
        transport: TransportFactory | None = None,
    ) -> None:
        """`custom_api` and `transport` replace the real ones in tests."""
        self.api_client = api_client
        self._request_timeout = request_timeout
        self._probe_timeout = probe_timeout
        self._custom = custom_api if custom_api is not None else client.CustomObjectsApi(api_client)
        self._transport = transport or self._service_proxy

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: dict[str, Any] | str | Path | None, context: str | None = None
    ) -> KubernetesCluster:
        """From a kubeconfig dict (or its JSON/YAML text, as a stack exports it), a file path, or
        None for the default loading rules ($KUBECONFIG, ~/.kube/config)."""
        loaded = _kubeconfig_dict(kubeconfig)
        try:
            if loaded is not None:
                api_client = config.new_client_from_config_dict(
                    loaded, context=context, persist_config=False
                )
            else:
                path = str(kubeconfig) if kubeconfig is not None else None
                # persist_config=False: never rewrite the user's kubeconfig with refreshed tokens.
                api_client = config.new_client_from_config(
                    config_file=path, context=context, persist_config=False
                )
        except (ConfigException, OSError) as exc:
            raise ClusterAccessError(f"cannot load kubeconfig: {exc}") from None
        return cls(api_client)

    def graph_state(self, namespace: str, name: str) -> GraphState:
        try:
            obj = self._custom.get_namespaced_custom_object(
                DGD_GROUP,
                DGD_VERSION,
                namespace,
                DGD_PLURAL,
                name,
                _request_timeout=client_timeout(self._request_timeout),
            )
        except ApiException as exc:
            if exc.status == 404:
                detail = f"no DynamoGraphDeployment {namespace}/{name}"
                return GraphState(exists=False, ready=False, state="absent", detail=detail)
            raise _api_error(f"reading DynamoGraphDeployment {namespace}/{name}", exc) from None
        return graph_state_from(obj)

    def probe(self, namespace: str, service: str, served_model_name: str) -> ProbeResult:
        result = probe_frontend(self._transport(namespace, service), served_model_name)
        return ProbeResult(result.ok, f"{result.detail} via Service {namespace}/{service}")

    def _service_proxy(self, namespace: str, service: str) -> Request:
        return ServiceProxyTransport(
            self.api_client, namespace, service, timeout=self._probe_timeout
        )


def _kubeconfig_dict(kubeconfig: dict[str, Any] | str | Path | None) -> dict[str, Any] | None:
    """The kubeconfig as a dict when given inline (dict, JSON or YAML text); None for a path."""
    if kubeconfig is None or isinstance(kubeconfig, Path):
        return None
    if isinstance(kubeconfig, dict):
        return kubeconfig
    text = kubeconfig.strip()
    if not text.startswith("{") and "\n" not in text:
        return None  # a file path
    try:
        parsed = json.loads(text) if text.startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ClusterAccessError(f"cannot parse the kubeconfig text: {exc}") from None
    if not isinstance(parsed, dict):
        raise ClusterAccessError("the kubeconfig text is not a mapping")
    return parsed
