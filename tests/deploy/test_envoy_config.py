"""envoy/envoy.yaml and envoy/envoy-grpc.yaml against Envoy's own schema (xds-protos), and what they route where.

Envoy cannot run here; parsing into its v3 messages catches what Envoy would refuse at start-up: a misspelled
field, a value of the wrong type, an extension whose ``@type`` does not exist.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from envoy.config.core.v3.config_source_pb2 import ApiVersion
from envoy.extensions.filters.http.ext_authz.v3.ext_authz_pb2 import ExtAuthz
from envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2 import (
    HttpConnectionManager,
)
from envoy.extensions.upstreams.http.v3.http_protocol_options_pb2 import HttpProtocolOptions
from google.protobuf import json_format

from identity.http.admin.console import ROOT as CONSOLE_ROOT
from identity.http.admin.console import load_assets
from tests.deploy.envoy_config import (
    EXT_AUTHZ,
    GRPC_CONFIG,
    HTTP_CONFIG,
    checked,
    connection_manager,
    ext_authz,
    load_yaml,
    parse,
    route_for,
    routes,
    typed_configs,
)

CONFIGS = pytest.mark.parametrize("path", [HTTP_CONFIG, GRPC_CONFIG], ids=["http", "grpc"])


@CONFIGS
def test_config_parses_into_envoys_bootstrap_with_every_typed_config_resolved(path: Path) -> None:
    bootstrap = parse(load_yaml(path))
    types = {message.DESCRIPTOR.full_name for message in typed_configs(bootstrap)}
    assert {
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute",
        "envoy.extensions.filters.http.router.v3.Router",
    } <= types


def _ext_authz_config(document: dict[str, Any]) -> dict[str, Any]:
    [listener] = document["static_resources"]["listeners"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    [config] = [f["typed_config"] for f in manager["http_filters"] if f["name"] == EXT_AUTHZ]
    return config  # type: ignore[no-any-return]


def _rename(config: dict[str, Any], old: str, new: str) -> None:
    config[new] = config.pop(old)


MISTAKES: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("misspelled field", lambda d: _rename(_ext_authz_config(d), "failure_mode_allow", "failure_mode_alow")),
    (
        "misspelled nested field",
        lambda d: _rename(_ext_authz_config(d)["http_service"], "path_prefix", "path_prefx"),
    ),
    ("wrong type", lambda d: _ext_authz_config(d).update(failure_mode_allow="no")),
    (
        "bad duration",
        lambda d: d["static_resources"]["clusters"][0].update(connect_timeout="a quarter second"),
    ),
    ("unknown enum value", lambda d: _ext_authz_config(d).update(transport_api_version="V4")),
    (
        "unknown @type",
        lambda d: _ext_authz_config(d).update({"@type": "type.googleapis.com/envoy.NoSuchFilter"}),
    ),
]


@pytest.mark.parametrize(("mistake", "make"), MISTAKES, ids=[m for m, _ in MISTAKES])
def test_a_mistake_in_a_copy_of_the_config_is_rejected(
    mistake: str, make: Callable[[dict[str, Any]], None]
) -> None:
    document = copy.deepcopy(load_yaml(HTTP_CONFIG))
    parse(document)  # the original is fine...
    make(document)
    with pytest.raises(json_format.ParseError):
        parse(document)  # ...and the copy is not


@CONFIGS
def test_ext_authz_fails_closed_and_runs_before_the_router(path: Path) -> None:
    bootstrap = parse(load_yaml(path))
    config = ext_authz(bootstrap)
    assert config.failure_mode_allow is False
    assert config.status_on_error.code == 503
    assert ApiVersion.Name(config.transport_api_version) == "V3"
    assert [f.name for f in connection_manager(bootstrap).http_filters] == [
        EXT_AUTHZ,
        "envoy.filters.http.router",
    ]


def test_http_service_is_barongs_authz_contract() -> None:
    config = ext_authz(parse(load_yaml(HTTP_CONFIG)))
    service = config.http_service
    assert service.path_prefix == "/api/v2/auth"
    assert service.server_uri.cluster == "authz"
    assert 0 < service.server_uri.timeout.ToMilliseconds() <= 1000
    allowed = {p.exact for p in service.authorization_request.allowed_headers.patterns}
    assert {
        "cookie", "user-agent", "x-csrf-token", "x-auth-apikey", "x-auth-nonce", "x-auth-signature",
        "authorization", "x-forwarded-for",
    } <= allowed  # fmt: skip
    upstream = service.authorization_response.allowed_upstream_headers.patterns
    assert [p.exact for p in upstream] == ["authorization"]
    assert not config.HasField("with_request_body")


def test_grpc_service_reaches_the_sidecar_over_http2() -> None:
    bootstrap = parse(load_yaml(GRPC_CONFIG))
    config: ExtAuthz = ext_authz(bootstrap)
    assert config.WhichOneof("services") == "grpc_service"
    cluster_name = config.grpc_service.envoy_grpc.cluster_name
    assert 0 < config.grpc_service.timeout.ToMilliseconds() <= 1000
    [cluster] = [c for c in bootstrap.static_resources.clusters if c.name == cluster_name]
    options = HttpProtocolOptions()
    cluster.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Unpack(
        options
    )
    assert options.explicit_http_config.HasField("http2_protocol_options")
    [endpoint] = cluster.load_assignment.endpoints[0].lb_endpoints
    assert (
        endpoint.endpoint.address.socket_address.port_value == 9191
    )  # AUTHZ_GRPC_PORT in docker-compose.yml


@CONFIGS
def test_every_referenced_cluster_is_defined(path: Path) -> None:
    bootstrap = parse(load_yaml(path))
    defined = {cluster.name for cluster in bootstrap.static_resources.clusters}
    for cluster in bootstrap.static_resources.clusters:
        assert cluster.load_assignment.cluster_name == cluster.name
    used = {route.route.cluster for route in routes(bootstrap)}
    config = ext_authz(bootstrap)
    used.add(config.http_service.server_uri.cluster or config.grpc_service.envoy_grpc.cluster_name)
    assert used <= defined


@CONFIGS
@pytest.mark.parametrize(
    ("request_path", "cluster", "checked"),
    [
        ("/admin", "authz", False),  # the console's static page
        ("/admin/", "authz", False),
        ("/admin/console.js", "authz", False),
        ("/admin/console.css", "authz", False),
        ("/.well-known/jwks.json", "authz", False),
        ("/administrator", "upstream", True),  # not the console: not public
        ("/admin/x", "upstream", True),  # not one of the console's files: an ordinary request
        ("/admin/console.js/x", "upstream", True),
        ("/api/v2/barong/admin/users", "authz", True),  # the admin API is authorized
        ("/api/v2/barong/identity/sessions", "authz", True),
        ("/api/v2/barong/resource/users/me", "authz", True),
        ("/api/v2/identity/sessions", "authz", True),
        ("/api/v2/resource/users/me", "authz", True),
        ("/api/v2/admin/permissions", "authz", True),
        ("/api/v2/public/ping", "authz", True),
        ("/v1/oauth/token", "authz", True),
        ("/u/3b0fd1c7", "authz", True),
        ("/p/3b0fd1c7", "authz", True),
        ("/api/v2/peatio/account/balances", "upstream", True),
        ("/", "upstream", True),
    ],
)
def test_routes(path: Path, request_path: str, cluster: str, checked: bool) -> None:
    assert route_for(parse(load_yaml(path)), request_path) == (cluster, checked)


@CONFIGS
def test_envoy_is_the_edge_and_hands_authz_the_address_of_its_peer(path: Path) -> None:
    """X-Forwarded-For gets the client's socket address appended, and no hop before Envoy is believed."""
    manager = connection_manager(parse(load_yaml(path)))
    assert manager.use_remote_address.value is True
    assert manager.xff_num_trusted_hops == 0
    assert manager.skip_xff_append is False
    assert not manager.original_ip_detection_extensions


@CONFIGS
def test_only_exact_normalised_paths_skip_the_check(path: Path) -> None:
    """A route without ext_authz matches one path exactly, after Envoy has normalised it (and refused escaped
    slashes): no other target can land there, and the one it forwards is the one it matched."""
    manager = connection_manager(parse(load_yaml(path)))
    assert manager.normalize_path.value is True and manager.merge_slashes is True
    action = HttpConnectionManager.PathWithEscapedSlashesAction.Name(manager.path_with_escaped_slashes_action)
    assert action == "REJECT_REQUEST"
    unchecked = [route for route in routes(parse(load_yaml(path))) if not checked(route)]
    console = [CONSOLE_ROOT, *(asset.url for asset in load_assets())]  # what the sidecar serves there
    assert [route.match.path for route in unchecked] == [*console, "/.well-known/jwks.json"]
    for route in unchecked:
        assert route.match.WhichOneof("path_specifier") == "path", route.match
        assert not route.match.HasField("case_sensitive") or route.match.case_sensitive.value
        assert route.route.cluster == "authz"
        assert not route.route.prefix_rewrite and not route.route.HasField("regex_rewrite")
