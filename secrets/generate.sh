#!/bin/sh
# Creates the secrets docker-compose.yml mounts (as files under /run/secrets/), once: existing files are kept.
#   sh secrets/generate.sh [DIR]      (DIR defaults to this script's directory)
# The directory is made private (0700); the files inside stay readable (0644) because compose bind-mounts
# them as they are and the service runs as an unprivileged user.
set -eu
dir=${1:-$(dirname "$0")}
mkdir -p "$dir"
chmod 700 "$dir"
umask 022

# RS256 signing key of the upstream JWTs (AUTHZ_JWT_PRIVATE_KEY_FILE).
[ -s "$dir/jwt-private.pem" ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
  -out "$dir/jwt-private.pem" 2>/dev/null
chmod 644 "$dir/jwt-private.pem"  # openssl writes it 0600: the container's user must read the mount
# AES-GCM key of the secrets kept in the database (AUTHZ_ENCRYPTION_KEY_FILE): base64 of 32 random bytes.
[ -s "$dir/encryption.key" ] || openssl rand -base64 32 > "$dir/encryption.key"
# PostgreSQL's password (POSTGRES_PASSWORD_FILE) and the URL authz connects with (DATABASE_URL_FILE).
if [ ! -s "$dir/postgres-password" ]; then
  openssl rand -hex 24 > "$dir/postgres-password"
  rm -f "$dir/database-url"
fi
[ -s "$dir/database-url" ] || printf 'postgresql://authz:%s@postgres:5432/authz\n' \
  "$(cat "$dir/postgres-password")" > "$dir/database-url"
echo "secrets in $dir: jwt-private.pem encryption.key postgres-password database-url"
