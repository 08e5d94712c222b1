"""docker-compose.yml and the Dockerfile, checked for structure (Docker does not run here), and the secrets
they mount made by secrets/generate.sh and read by the service's own settings loader."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from authz.settings import load_settings
from tests.deploy.envoy_config import GRPC_CONFIG, ROOT, load_yaml, parse

COMPOSE = ROOT / "docker-compose.yml"
SECRETS_SCRIPT = ROOT / "secrets" / "generate.sh"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
PORT = re.compile(r"^(?:(?:\d{1,3}\.){3}\d{1,3}:)?(?:\d+:)?\d+(?:/(?:tcp|udp))?$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def test_the_deployment_has_its_services(compose: dict[str, Any]) -> None:
    assert {"authz", "postgres", "redis", "envoy", "upstream"} <= set(services(compose))


def test_every_service_has_an_image_or_a_build_context_with_a_dockerfile(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            build = service["build"] if isinstance(service["build"], dict) else {"context": service["build"]}
            context = ROOT / build["context"]
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_the_dockerfile_installs_the_package_and_serves_as_an_unprivileged_user() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert any(line.startswith("RUN pip install") for line in instructions)
    [user] = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert user not in ("root", "0")
    assert instructions[-1] == 'CMD ["authz", "serve"]'
    for line in instructions:
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "secrets" in ignored and ".venv" in ignored  # never baked into the image


def test_ports_are_well_formed(compose: dict[str, Any]) -> None:
    published = {name: service.get("ports", []) for name, service in services(compose).items()}
    assert published["envoy"] == ["10000:10000"]
    assert not published["authz"]  # only through the gateway
    for name, ports in published.items():
        for port in [*ports, *services(compose)[name].get("expose", [])]:
            assert PORT.match(str(port)), (name, port)


def test_depends_on_names_defined_services_with_conditions(compose: dict[str, Any]) -> None:
    defined = services(compose)
    for name, service in defined.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends.items():
            assert target in defined and target != name, (name, target)
            assert spec["condition"] in CONDITIONS, (name, target)
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in defined[target], (name, target)
    assert defined["authz"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert defined["envoy"]["depends_on"]["authz"]["condition"] == "service_healthy"


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        test = service["healthcheck"]["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name


def test_envoy_mounts_a_config_that_exists(compose: dict[str, Any]) -> None:
    envoy = services(compose)["envoy"]
    mounts = [volume.split(":") for volume in envoy["volumes"]]
    [(source, target, *_)] = [m for m in mounts if m[1] == "/etc/envoy/envoy.yaml"]
    assert (ROOT / source).is_file()
    assert target in envoy["command"]
    # The gRPC variant reaches the port the sidecar serves Check on.
    grpc_cluster = next(
        c for c in parse(load_yaml(GRPC_CONFIG)).static_resources.clusters if c.name == "authz_grpc"
    )
    port = (
        grpc_cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value
    )
    assert services(compose)["authz"]["environment"]["AUTHZ_GRPC_PORT"] == str(port)


def test_bind_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)


def test_secrets_are_defined_files_mounted_where_the_file_variables_point(compose: dict[str, Any]) -> None:
    defined = compose["secrets"]
    for name, service in services(compose).items():
        mounted = set(service.get("secrets", []))
        assert mounted <= set(defined), name
        for variable, value in service.get("environment", {}).items():
            if variable.endswith("_FILE"):
                secret = str(value).removeprefix("/run/secrets/")
                assert secret in mounted, (name, variable)
    # No secret travels in plain environment variables.
    for service in services(compose).values():
        for variable, value in service.get("environment", {}).items():
            assert "PASSWORD" not in variable or variable.endswith("_FILE")
            assert "@" not in str(value) or variable == "AUTHZ_SMTP_URL", variable


@pytest.mark.skipif(shutil.which("openssl") is None, reason="secrets/generate.sh needs openssl")
def test_generated_secrets_are_every_file_compose_mounts_and_the_service_accepts_them(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "secrets"
    subprocess.run(["sh", str(SECRETS_SCRIPT), str(folder)], check=True, capture_output=True)
    files = {name: folder / Path(spec["file"]).name for name, spec in compose["secrets"].items()}
    for name, path in files.items():
        assert Path(compose["secrets"][name]["file"]).parent == Path("secrets")
        assert path.is_file() and path.read_text().strip(), name
    environment = services(compose)["authz"]["environment"]
    env = {
        k: str(files[v.removeprefix("/run/secrets/")]) if k.endswith("_FILE") else str(v)
        for k, v in environment.items()
    }
    settings = load_settings(env=env)  # raises SettingsError naming every problem
    assert settings.database_url.startswith("postgresql://authz:")
    assert files["postgres-password"].read_text().strip() in settings.database_url
    assert settings.grpc_port == 9191
    before = {name: path.read_text() for name, path in files.items()}
    subprocess.run(["sh", str(SECRETS_SCRIPT), str(folder)], check=True, capture_output=True)
    assert {name: path.read_text() for name, path in files.items()} == before  # never overwritten


def test_authz_trusts_exactly_envoys_fixed_address_as_its_proxy(compose: dict[str, Any]) -> None:
    """Envoy reaches authz over the compose network, not loopback: the sidecar must be told to believe it, and
    only it (any other container, or the Docker gateway that published ports come through, is a client)."""
    [network] = compose["networks"]["default"]["ipam"]["config"]
    subnet, dynamic = ipaddress.ip_network(network["subnet"]), ipaddress.ip_network(network["ip_range"])
    envoy = ipaddress.ip_address(services(compose)["envoy"]["networks"]["default"]["ipv4_address"])
    assert envoy in subnet and dynamic.subnet_of(subnet)  # type: ignore[arg-type]
    assert envoy not in dynamic  # no other container can be given Envoy's address
    environment = {k: str(v) for k, v in services(compose)["authz"]["environment"].items()}
    settings = load_settings(env={"AUTHZ_TRUSTED_PROXIES": environment["AUTHZ_TRUSTED_PROXIES"]})
    assert settings.trusted_proxies == (ipaddress.ip_network(envoy),)


def test_the_sidecar_listens_for_the_gateway_and_promotes_no_sign_up(compose: dict[str, Any]) -> None:
    """Out of the box the service listens on 127.0.0.1; in the image and the deployment it must take the
    gateway's connections, so there the first sign-up (reachable through Envoy) is no superadmin."""
    environment = services(compose)["authz"]["environment"]
    chosen = {name: str(environment[name]) for name in ("AUTHZ_HOST", "AUTHZ_FIRST_REGISTRATION_SUPERADMIN")}
    settings = load_settings(env=chosen)
    assert (settings.host, settings.first_registration_superadmin) == ("0.0.0.0", False)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "AUTHZ_HOST=0.0.0.0" in dockerfile and "AUTHZ_FIRST_REGISTRATION_SUPERADMIN=false" in dockerfile
