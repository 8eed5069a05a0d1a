#!/usr/bin/env bash
# Install the system packages the tests and the demo need, from Debian's
# packages, only when missing: git, python3 venv support, ansible-core
# (ansible-playbook services), a Java runtime (DynamoDB Local), chromium (the
# web console's browser tests). Idempotent.
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v ansible-playbook >/dev/null || need+=(ansible-core)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v npm >/dev/null || need+=(npm)
[ -x /usr/bin/chromium ] || command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${need[*]} from Debian's packages" >&2
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
