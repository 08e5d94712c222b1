"""Envoy's configuration files read as Envoy reads them: YAML parsed into the v3 protobuf messages.

Every ``typed_config`` is a ``google.protobuf.Any``; ``json_format`` resolves its ``@type`` through the
descriptor pool, so the modules of the extensions the files use are imported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from envoy.config.bootstrap.v3.bootstrap_pb2 import Bootstrap
from envoy.config.route.v3.route_components_pb2 import Route
from envoy.extensions.access_loggers.stream.v3 import stream_pb2  # noqa: F401 - registers StdoutAccessLog
from envoy.extensions.filters.http.ext_authz.v3.ext_authz_pb2 import ExtAuthz, ExtAuthzPerRoute
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401 - registers Router
from envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2 import (
    HttpConnectionManager,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401 - registers HttpProtocolOptions
from google.protobuf import any_pb2, json_format, symbol_database
from google.protobuf.message import Message

ROOT = Path(__file__).resolve().parents[2]
ENVOY_DIR = ROOT / "envoy"
HTTP_CONFIG = ENVOY_DIR / "envoy.yaml"
GRPC_CONFIG = ENVOY_DIR / "envoy-grpc.yaml"
EXT_AUTHZ = "envoy.filters.http.ext_authz"


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def parse(document: dict[str, Any]) -> Bootstrap:
    """The bootstrap message; raises ``json_format.ParseError`` on an unknown field, a wrong type or an
    unknown ``@type``, as Envoy does."""
    return json_format.ParseDict(document, Bootstrap())


def unpack(packed: any_pb2.Any) -> Message:
    """The message inside ``packed``, of the type its URL names."""
    name = packed.type_url.rsplit("/", 1)[-1]
    message = symbol_database.Default().GetSymbol(name)()
    assert packed.Unpack(message), packed.type_url
    return message


def typed_configs(message: Message) -> Iterator[Message]:
    """Every message packed in an ``Any`` anywhere under ``message`` (nested ones too), unpacked."""
    for field, value in message.ListFields():
        values = value.values() if _is_map(field) else value if _is_repeated(field) else [value]
        for item in values:
            if not isinstance(item, Message):
                continue
            if isinstance(item, any_pb2.Any):
                inner = unpack(item)
                yield inner
                yield from typed_configs(inner)
            else:
                yield from typed_configs(item)


def _is_repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def _is_map(field: Any) -> bool:
    return (
        _is_repeated(field) and field.message_type is not None and field.message_type.GetOptions().map_entry
    )


def connection_manager(bootstrap: Bootstrap) -> HttpConnectionManager:
    [listener] = bootstrap.static_resources.listeners
    [chain] = listener.filter_chains
    [network_filter] = chain.filters
    manager = unpack(network_filter.typed_config)
    assert isinstance(manager, HttpConnectionManager)
    return manager


def ext_authz(bootstrap: Bootstrap) -> ExtAuthz:
    [config] = [f.typed_config for f in connection_manager(bootstrap).http_filters if f.name == EXT_AUTHZ]
    message = unpack(config)
    assert isinstance(message, ExtAuthz)
    return message


def routes(bootstrap: Bootstrap) -> list[Route]:
    [virtual_host] = connection_manager(bootstrap).route_config.virtual_hosts
    return list(virtual_host.routes)


def checked(route: Route) -> bool:
    """Whether ext_authz runs on ``route`` (it is on unless the route turns it off)."""
    per_route = route.typed_per_filter_config.get(EXT_AUTHZ)
    if per_route is None:
        return True
    off = unpack(per_route)
    return not (isinstance(off, ExtAuthzPerRoute) and off.disabled)


def route_for(bootstrap: Bootstrap, path: str) -> tuple[str, bool]:
    """(cluster, ext_authz on?) of the first route whose path or prefix matches ``path``, as Envoy picks."""
    for route in routes(bootstrap):
        match = route.match
        kind = match.WhichOneof("path_specifier")
        if (kind == "path" and path == match.path) or (kind == "prefix" and path.startswith(match.prefix)):
            return route.route.cluster, checked(route)
        assert kind in ("path", "prefix"), f"matcher {kind} not understood by this test"
    raise AssertionError(f"no route for {path}")
