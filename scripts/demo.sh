#!/usr/bin/env bash
# make demo: start an all-in-one gateway on the embedded store in a temp data
# dir, create the sample services in examples/, run them, print the results,
# and stop. Needs only bin/autogate, git and python3 (ansible-core optional).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/autogate"
tmp=$(mktemp -d)
export AUTOGATE_CONFIG="$tmp/cli.yaml"
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "a git repository with the sample services ($tmp/repo)"
mkdir -p "$tmp/repo"
cp -r "$root/examples/ping" "$root/examples/hello" "$root/examples/facts" "$tmp/repo/"
git -C "$tmp/repo" init -q -b main
git -C "$tmp/repo" add -A
git -C "$tmp/repo" -c user.name=demo -c user.email=demo@example.invalid commit -q -m "sample services"
git -C "$tmp/repo" log --oneline

step "a local wheel for the ping service's requirement (no package index needed)"
python3 "$root/scripts/wheel.py" "$root/examples/pylib" pinglib 0.1.0 "$tmp/wheels"

step "start an all-in-one server"
"$bin" server --data-dir "$tmp/data" --listen 127.0.0.1:0 --log-format text --log-level warn \
  --pip-no-index --pip-find-links "$tmp/wheels" >"$tmp/server.out" 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 100); do
  grep -q "active" "$tmp/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log"; exit 1; }
  sleep 0.1
done
cat "$tmp/server.out"
url=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$tmp/server.out")

step "log in as admin (password from the data dir, certificate pinned)"
show "$bin" login --server "$url" --ca-file "$tmp/data/tls/tls.crt" --password-file "$tmp/data/admin-password" --name demo

step "the web console"
echo "console: $url/ui/  (user admin, password in $tmp/data/admin-password; the certificate is self-signed)"
echo "set DEMO_KEEP=1 to keep the server and its console running after the demo"

step "create a secret, then apply examples/resources.yaml"
printf 'tok-%s' "$RANDOM$RANDOM" | "$bin" create secret demo-token --from-stdin --description "demo API token"
sed "s|REPO_PATH|$tmp/repo|" "$root/examples/resources.yaml" >"$tmp/resources.yaml"
show "$bin" apply -f "$tmp/resources.yaml"
show "$bin" apply -f "$tmp/resources.yaml"   # idempotent: all unchanged
show "$bin" get services
show "$bin" get secrets

step "run the python-script service (builds its virtualenv on first run)"
show "$bin" run service python-script ping --set host=10.0.0.1 --set count=3

step "run the executable service (the secret is redacted from its output)"
show "$bin" run service executable hello

if command -v ansible-playbook >/dev/null; then
  step "run the ansible-playbook service against localhost"
  show "$bin" run service ansible-playbook facts --set site=lab-1
else
  step "ansible-playbook not installed (apt-get install ansible-core): skipping the facts service"
fi

step "inputs that violate the decorator are refused before anything runs"
set +e
"$bin" run service python-script ping --set host=10.0.0.1 --set count=99
echo "exit code $?"
set -e

step "an async run, then its logs"
id=$("$bin" run service python-script ping --set host=192.0.2.7 --async)
echo "execution $id"
show "$bin" logs --wait "$id"
show "$bin" get executions
show "$bin" describe execution "$id"

if [ -n "${DEMO_KEEP:-}" ]; then
  step "the server keeps running: console at $url/ui/ (user admin, password in $tmp/data/admin-password); Ctrl-C stops it"
  wait "$server_pid" || true
fi

step "done; stopping the server"
