#!/usr/bin/env bash
# A plain (non-editable) install works on its own: build the wheel from the checkout's files, install it into
# a new virtualenv, and from an empty directory run `authz serve` on its embedded defaults, create a user with
# the CLI, log in and get an allowed decision.  Everything lives in one temporary directory, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "wheel smoke: $*" >&2
  [ -f "$work/serve.log" ] && tail -n 30 "$work/serve.log" >&2
  exit 1
}

# Build from a copy of the checkout's files (tracked, and new ones not ignored), as a fresh clone would:
# building in the tree would leave build/ and *.egg-info in it.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$work/src"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" wheel -q --no-deps -w "$work/dist" "$work/src" || fail "the wheel did not build"
"$work/venv/bin/pip" install -q "$work"/dist/authz-*.whl || fail "the wheel did not install"

mkdir "$work/run"
cd "$work/run"  # unrelated to the checkout: the data dir is ./var here
authz="$work/venv/bin/authz"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$authz" serve --port "$port" </dev/null >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 150); do
  curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || fail "authz serve exited"
  sleep 0.2
done
curl -fsS -o /dev/null "$base/healthz" || fail "/healthz did not answer within 30 s"

"$authz" users create --email smoke@example.com --password 'Sm0ke-test!' --role member --state active \
  </dev/null >/dev/null || fail "authz users create failed"
login=$(curl -sS -D - -o /dev/null -A wheel-smoke -H 'Content-Type: application/json' \
  -d '{"email":"smoke@example.com","password":"Sm0ke-test!"}' "$base/api/v2/barong/identity/sessions")
cookie=$(printf '%s' "$login" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(_barong_session=[^;]*\).*/\1/p')
[ -n "$cookie" ] || fail "the login set no session cookie: $login"
decision=$(curl -sS -D - -o /dev/null -A wheel-smoke -H "Cookie: $cookie" \
  "$base/api/v2/auth/api/v2/peatio/account/balances" | tr -d '\r')
[[ "$decision" == "HTTP/"*" 200 "* ]] || fail "the decision was not 200: $decision"
[[ "${decision,,}" == *$'\n'"authorization: bearer "* ]] || fail "no Authorization header: $decision"

kill "$server" && wait "$server" 2>/dev/null || true
server=""
echo "wheel smoke: the installed wheel serves, creates a user, logs in and allows"
