# The authz sidecar: `authz serve` (migrates, seeds the default permissions, serves HTTP and, with
# AUTHZ_GRPC_PORT, Envoy's gRPC ext_authz) as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/authz --create-home authz

WORKDIR /app
COPY pyproject.toml README.md ./
COPY policies ./policies
COPY identity ./identity
COPY authz ./authz
# A regular install: the packages and their data (the policy files too) go to site-packages, as from the
# wheel that .ci/wheel_smoke.sh checks; the build's leftovers go.
RUN pip install . && rm -rf build authz.egg-info

USER authz
# Outside a container the service listens on 127.0.0.1 only; here it must take connections from the network
# (the gateway), so the first sign-up is not made superadmin: `authz users create --role superadmin` is.
ENV AUTHZ_DATA_DIR=/var/lib/authz \
    AUTHZ_HOST=0.0.0.0 \
    AUTHZ_PORT=8080 \
    AUTHZ_FIRST_REGISTRATION_SUPERADMIN=false
VOLUME ["/var/lib/authz"]
EXPOSE 8080 9191
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]
CMD ["authz", "serve"]
