#!/usr/bin/env bash
# A real local Kubernetes control plane on loopback, built from Go modules (see cluster/README.md):
# etcd, kube-apiserver (RBAC, OwnerReferencesPermissionEnforcement, service-account tokens),
# kube-controller-manager (garbage collector, TTL-after-finished, job, namespace, service-account...),
# the KubeRay operator and Kueue (with its webhooks), each a background process in its own session.
# There is no kubelet, scheduler or container runtime: pods stay Pending.
#
#   scripts/cluster.sh up      build what is missing, start everything, wait until ready (no-op if up)
#   scripts/cluster.sh down    stop everything (idempotent), leave no process behind
#   scripts/cluster.sh status  processes, their RSS and health; exit 0 only when all are up
#   scripts/cluster.sh env     print `export KUBECONFIG=...` lines for a shell (eval "$(... env)")
#   scripts/cluster.sh build   only build the binaries into .cache/cluster/bin
#
# Environment (all optional):
#   LIMR_CLUSTER_DIR        state: pki, etcd data, logs, pids, kubeconfig   (.cache/cluster)
#   LIMR_CLUSTER_BIN_DIR    versioned binaries                               (.cache/cluster/bin)
#   LIMR_CLUSTER_PORT_BASE  every port is BASE + a fixed offset              (26000)
#   LIMR_CLUSTER_{ETCD,ETCD_PEER,APISERVER,KCM,KUBERAY_METRICS,KUBERAY_PROBE,KUEUE_WEBHOOK,
#                 KUEUE_PROBE,KUEUE_METRICS}_PORT   one port each
#   LIMR_CLUSTER_KEEP_DATA=1  `up` keeps etcd's data from the last run (default: a fresh, empty store)
#   LIMR_KUEUE_FRAMEWORKS   Kueue's integrations.frameworks                 (batch/job,ray.io/rayjob)
#   LIMR_CLUSTER_NO_KUEUE=1 / LIMR_CLUSTER_NO_KUBERAY=1   leave that component out
#   LIMR_CLUSTER_KUBERAY_CRDS=1   apply KubeRay's CRDs even without its operator (RayJobs are kept,
#                                 nobody reconciles them: the operator benchmark)
#   LIMR_CLUSTER_AUDIT=1      the API server writes an audit log (logs/audit.log, one JSON line per
#                             request, level Metadata): who made which request (the benchmark counts)
#   LIMR_CLUSTER_KEEP_ON_FAILURE=1  a failed `up` leaves what it started running (for debugging)
set -euo pipefail
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
case " $GOFLAGS " in *" -buildvcs=false "*) ;; *) export GOFLAGS="$GOFLAGS -buildvcs=false" ;; esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
modules=$repo/cluster
state=${LIMR_CLUSTER_DIR:-$repo/.cache/cluster}
bindir=${LIMR_CLUSTER_BIN_DIR:-$repo/.cache/cluster/bin}
pki=$state/pki
logs=$state/logs
run=$state/run
base=${LIMR_CLUSTER_PORT_BASE:-26000}
etcd_port=${LIMR_CLUSTER_ETCD_PORT:-$((base + 379))}
etcd_peer_port=${LIMR_CLUSTER_ETCD_PEER_PORT:-$((base + 380))}
apiserver_port=${LIMR_CLUSTER_APISERVER_PORT:-$((base + 443))}
kcm_port=${LIMR_CLUSTER_KCM_PORT:-$((base + 257))}
kuberay_metrics_port=${LIMR_CLUSTER_KUBERAY_METRICS_PORT:-$((base + 80))}
kuberay_probe_port=${LIMR_CLUSTER_KUBERAY_PROBE_PORT:-$((base + 81))}
kueue_webhook_port=${LIMR_CLUSTER_KUEUE_WEBHOOK_PORT:-$((base + 444))}
kueue_probe_port=${LIMR_CLUSTER_KUEUE_PROBE_PORT:-$((base + 82))}
kueue_metrics_port=${LIMR_CLUSTER_KUEUE_METRICS_PORT:-$((base + 445))}
kueue_frameworks=${LIMR_KUEUE_FRAMEWORKS:-batch/job,ray.io/rayjob}
kueue_namespace=kueue-system
kubeconfig=$state/kubeconfig
server=https://127.0.0.1:$apiserver_port

components=(etcd kube-apiserver kube-controller-manager)
[ "${LIMR_CLUSTER_NO_KUBERAY:-}" = 1 ] || components+=(kuberay-operator)
[ "${LIMR_CLUSTER_NO_KUEUE:-}" = 1 ] || components+=(kueue)

has() { [[ " ${components[*]} " == *" $1 "* ]]; } # has COMPONENT : it is part of this cluster
log() { printf '%s cluster: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- versions, read from the wrapper modules' go.mod files ------------------------------------------
modversion() { # modversion DIR MODULE -> the version DIR/go.mod requires
  sed -n "s#^\s*\(require \)\?$2 \(v[^ ]*\)\s*\$#\2#p" "$modules/$1/go.mod" | head -1
}
k8s_version=$(modversion kubernetes k8s.io/kubernetes)
etcd_version=$(modversion etcd go.etcd.io/etcd/server/v3)
kuberay_version=$(modversion kuberay github.com/ray-project/kuberay/ray-operator)
kueue_version=$(modversion kueue sigs.k8s.io/kueue)

# A binary is named after its version and rebuilt when its inputs change (go.mod, go.sum, Go itself,
# this script's build flags): the stamp next to it holds the hash of those inputs.
build_key() { # build_key MODULE_DIR LDFLAGS [EXTRA_FILES...]
  local dir=$modules/$1 ldflags=$2
  shift 2
  { go version; echo "$ldflags"; cat "$dir/go.mod" "$dir/go.sum" "$@"; } | sha256sum | cut -c1-16
}

go_build() { # go_build MODULE_DIR KEY LDFLAGS NAME=PKG...
  local dir=$1 key=$2 ldflags=$3
  shift 3
  local tmp start pair name pkg
  tmp=$(mktemp -d "$bindir/.build.XXXXXX")
  start=$(now)
  : >"$logs/build-$dir.log"
  log "building ${*#*=} (in cluster/$dir; a cold build of Kubernetes takes 10-20 minutes on 2 cores)"
  for pair in "$@"; do # one package at a time: the build cache shares what they have in common
    name=${pair%%=*} pkg=${pair#*=}
    if ! (cd "$modules/$dir" && go build -ldflags="$ldflags" -o "$tmp/$name" "$pkg") >>"$logs/build-$dir.log" 2>&1; then
      rm -rf "$tmp"
      tail -40 "$logs/build-$dir.log" >&2
      die "go build of $pkg in cluster/$dir failed (full log: $logs/build-$dir.log)"
    fi
  done
  for pair in "$@"; do
    name=${pair%%=*}
    mv -f "$tmp/$name" "$bindir/$name"
    echo "$key" >"$bindir/$name.stamp"
  done
  rm -rf "$tmp"
  log "built ${*%%=*} in $(since "$start") s"
}

needs_build() { # needs_build KEY NAME... : true when one of NAME is missing or stamped with another key
  local key=$1 name
  shift
  for name in "$@"; do
    [ -x "$bindir/$name" ] && [ "$(cat "$bindir/$name.stamp" 2>/dev/null)" = "$key" ] || return 0
  done
  return 1
}

k8s_ldflags() {
  local v=$k8s_version minor=${k8s_version#v1.}
  minor=${minor%%.*}
  local flags="-s -w" pkg
  # What hack/lib/version.sh stamps into release binaries (clients and Kueue read the server version).
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$flags"
}

bin_apiserver=$bindir/kube-apiserver-$k8s_version
bin_kcm=$bindir/kube-controller-manager-$k8s_version
bin_kubectl=$bindir/kubectl-$k8s_version
bin_etcd=$bindir/etcd-$etcd_version
bin_kuberay=$bindir/kuberay-operator-$kuberay_version
bin_kueue=$bindir/kueue-$kueue_version
bin_kueue_render=$bindir/kueue-render-$kueue_version

build() {
  mkdir -p "$bindir" "$logs"
  command -v go >/dev/null || die "go is not on PATH (Go 1.26 builds the control plane from cluster/*/go.mod)"
  local key ldflags
  ldflags=$(k8s_ldflags)
  key=$(build_key kubernetes "$ldflags")
  if needs_build "$key" "${bin_apiserver##*/}" "${bin_kcm##*/}" "${bin_kubectl##*/}"; then
    go_build kubernetes "$key" "$ldflags" \
      "${bin_apiserver##*/}=k8s.io/kubernetes/cmd/kube-apiserver" \
      "${bin_kcm##*/}=k8s.io/kubernetes/cmd/kube-controller-manager" \
      "${bin_kubectl##*/}=k8s.io/kubernetes/cmd/kubectl"
  fi
  ldflags="-s -w"
  key=$(build_key etcd "$ldflags")
  if needs_build "$key" "${bin_etcd##*/}"; then
    go_build etcd "$key" "$ldflags" "${bin_etcd##*/}=go.etcd.io/etcd/server/v3"
  fi
  key=$(build_key kuberay "$ldflags")
  if needs_build "$key" "${bin_kuberay##*/}"; then
    go_build kuberay "$key" "$ldflags" "${bin_kuberay##*/}=github.com/ray-project/kuberay/ray-operator"
  fi
  ldflags="-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$kueue_version"
  key=$(build_key kueue "$ldflags" "$modules/kueue/render/main.go")
  if needs_build "$key" "${bin_kueue##*/}" "${bin_kueue_render##*/}"; then
    go_build kueue "$key" "$ldflags" "${bin_kueue##*/}=sigs.k8s.io/kueue/cmd/kueue" \
      "${bin_kueue_render##*/}=limr.local/cluster/kueue/render"
  fi
  # kubectl matching the server, where the Makefile puts tools on PATH.
  mkdir -p "$repo/.cache/bin"
  if [ "$(readlink "$repo/.cache/bin/kubectl" 2>/dev/null)" != "$bin_kubectl" ]; then
    ln -sfn "$bin_kubectl" "$repo/.cache/bin/kubectl.tmp" && mv -Tf "$repo/.cache/bin/kubectl.tmp" "$repo/.cache/bin/kubectl"
  fi
}

module_dir() { # module_dir WRAPPER MODULE -> its directory in the module cache (downloaded if needed)
  local dir
  dir=$(cd "$modules/$1" && go list -m -f '{{.Dir}}' "$2" 2>/dev/null) || true
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    (cd "$modules/$1" && go mod download "$2") >&2
    dir=$(cd "$modules/$1" && go list -m -f '{{.Dir}}' "$2")
  fi
  echo "$dir"
}

# --- PKI (openssl) ---------------------------------------------------------------------------------
cert() { # cert NAME SUBJECT EXT  : a key and a certificate signed by the cluster CA
  local name=$1 subj=$2 ext=$3
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile <(printf '%s\n' "$ext") -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

pki_layout=2 # bump when make_pki changes: `up` then makes a new PKI

make_pki() {
  [ "$(cat "$pki/.complete" 2>/dev/null)" = "$pki_layout" ] && return
  command -v openssl >/dev/null || die "openssl is needed for the cluster's certificates"
  rm -rf "$pki"
  mkdir -p "$pki"
  chmod 700 "$pki"
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -subj "/CN=limr-local-ca" \
    -days 3650 -sha256 -out "$pki/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  local server_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
  local client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  cert apiserver "/CN=kube-apiserver" "$server_ext
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=limr-admin" "$client_ext"
  cert kube-controller-manager "/CN=system:kube-controller-manager" "$client_ext"
  cert kueue-webhook "/CN=kueue-webhook" "$server_ext
subjectAltName=IP:127.0.0.1,DNS:localhost"
  mkdir -p "$pki/kueue-webhook-certs"
  mv "$pki/kueue-webhook.crt" "$pki/kueue-webhook-certs/tls.crt"
  mv "$pki/kueue-webhook.key" "$pki/kueue-webhook-certs/tls.key"
  # The front proxy (request-header authentication) has a CA of its own, as kubeadm sets it up:
  # controllers' delegated authentication expects it, and aggregated API servers need it.
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/front-proxy-ca.key" -subj "/CN=limr-local-front-proxy-ca" \
    -days 3650 -sha256 -out "$pki/front-proxy-ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/front-proxy-client.key" -subj "/CN=front-proxy-client" \
    -out "$pki/front-proxy-client.csr" 2>/dev/null
  openssl x509 -req -in "$pki/front-proxy-client.csr" -CA "$pki/front-proxy-ca.crt" -CAkey "$pki/front-proxy-ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile <(printf '%s\n' "$client_ext") -out "$pki/front-proxy-client.crt" 2>/dev/null
  rm -f "$pki/front-proxy-client.csr"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  echo "$pki_layout" >"$pki/.complete"
}

kueue_metrics_certs() {
  # Kueue without its internal cert management serves metrics with a certificate from the fixed
  # path /etc/kueue/metrics/certs (cmd/kueue/main.go; no setting moves it). Any valid pair does:
  # nothing here scrapes those metrics.
  local dir=/etc/kueue/metrics/certs
  [ -r "$dir/tls.crt" ] && [ -r "$dir/tls.key" ] && return
  if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
    die "Kueue reads its metrics certificate from $dir/tls.{crt,key} (a path fixed in Kueue's main), which this user cannot create: run once as root:
  sudo mkdir -p $dir && sudo openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=kueue-metrics -keyout $dir/tls.key -out $dir/tls.crt && sudo chmod 644 $dir/tls.*"
  fi
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=kueue-metrics \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$dir/tls.key.tmp" -out "$dir/tls.crt.tmp" 2>/dev/null
  chmod 644 "$dir/tls.key.tmp" "$dir/tls.crt.tmp"
  mv -f "$dir/tls.key.tmp" "$dir/tls.key"
  mv -f "$dir/tls.crt.tmp" "$dir/tls.crt"
  log "wrote a self-signed Kueue metrics certificate to $dir"
}

write_kubeconfig() { # write_kubeconfig PATH USER CREDENTIAL... : the one kubeconfig writer; each CREDENTIAL is a line of the user block
  local credentials="" line
  for line in "${@:3}"; do credentials+="    $line"$'\n'; done
  cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: limr-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: $2
  user:
${credentials}contexts:
- name: limr-local
  context:
    cluster: limr-local
    user: $2
current-context: limr-local
EOF
  chmod 600 "$1.tmp"
  mv -f "$1.tmp" "$1"
}

cert_kubeconfig() { # cert_kubeconfig PATH USER CERT KEY : a client-certificate user's kubeconfig
  write_kubeconfig "$1" "$2" "client-certificate-data: $(base64 -w0 <"$3")" "client-key-data: $(base64 -w0 <"$4")"
}

# KubeRay and Kueue run as ServiceAccounts bound to the ClusterRoles of their own modules
# (config/rbac, config/components/rbac), as in their own installs, so a rule they lack shows here.
service_account_kubeconfig() { # service_account_kubeconfig NAMESPACE SA OUT
  kubectl get namespace "$1" >/dev/null 2>&1 || kubectl create namespace "$1" >/dev/null
  kubectl create serviceaccount "$2" -n "$1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  local token
  token=$(kubectl create token "$2" -n "$1" --duration 48h) || die "no token for $1/$2"
  write_kubeconfig "$3" "system:serviceaccount:$1:$2" "token: $token"
}

bind_cluster_role() { # bind_cluster_role ROLE NAMESPACE SA
  kubectl create clusterrolebinding "$1" --clusterrole "$1" --serviceaccount "$2:$3" --dry-run=client -o yaml |
    kubectl apply -f - >/dev/null
}

kuberay_rbac() {
  local dir
  dir=$(module_dir kuberay github.com/ray-project/kuberay/ray-operator)/config/rbac
  kubectl apply --server-side --force-conflicts --field-manager limr-cluster -f "$dir/role.yaml" >/dev/null ||
    die "applying KubeRay's ClusterRole ($dir/role.yaml) failed"
  service_account_kubeconfig kuberay-system kuberay-operator "$state/kuberay.kubeconfig"
  bind_cluster_role kuberay-operator kuberay-system kuberay-operator
}

kueue_rbac() {
  local dir name
  dir=$(module_dir kueue sigs.k8s.io/kueue)/config/components/rbac
  for name in role metrics_auth_role; do # manager-role, metrics-auth-role (kustomize prefixes kueue-)
    sed 's/^  name: \(manager-role\|metrics-auth-role\)$/  name: kueue-\1/' "$dir/$name.yaml" |
      kubectl apply --server-side --force-conflicts --field-manager limr-cluster -f - >/dev/null ||
      die "applying Kueue's $dir/$name.yaml failed"
  done
  service_account_kubeconfig "$kueue_namespace" kueue-controller-manager "$state/kueue.kubeconfig"
  bind_cluster_role kueue-manager-role "$kueue_namespace" kueue-controller-manager
  bind_cluster_role kueue-metrics-auth-role "$kueue_namespace" kueue-controller-manager
  # The Role on secrets in its own namespace (its caches wait for it even without cert management).
  sed -e 's/^  name: manager-secrets-role$/  name: kueue-manager-secrets-role/' \
    -e "s/^  namespace: system\$/  namespace: $kueue_namespace/" "$dir/manager_secrets_role.yaml" |
    kubectl apply --server-side --force-conflicts --field-manager limr-cluster -f - >/dev/null ||
    die "applying Kueue's $dir/manager_secrets_role.yaml failed"
  kubectl create rolebinding kueue-manager-secrets-rolebinding -n "$kueue_namespace" \
    --role kueue-manager-secrets-role --serviceaccount "$kueue_namespace:kueue-controller-manager" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
}

# --- processes ---------------------------------------------------------------------------------------
pidfile() { echo "$run/$1.pid"; }

binary_of() { # binary_of NAME -> the binary that component runs at the versions go.mod asks for
  case "$1" in
    etcd) echo "$bin_etcd" ;;
    kube-apiserver) echo "$bin_apiserver" ;;
    kube-controller-manager) echo "$bin_kcm" ;;
    kuberay-operator) echo "$bin_kuberay" ;;
    kueue) echo "$bin_kueue" ;;
  esac
}

running() { # running NAME : its process runs (and is one we started: its executable is in $bindir)
  local pid exe
  pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case "$exe" in "$bindir"/*) return 0 ;; *) return 1 ;; esac
}

alive() { # alive NAME : it runs, and runs the binary of the current version (not an older build)
  running "$1" || return 1
  local exe
  exe=$(readlink "/proc/$(cat "$(pidfile "$1")")/exe")
  [ "${exe% (deleted)}" = "$(binary_of "$1")" ]
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() { # start NAME BINARY ARGS... : in its own session (so `down` kills its whole group)
  local name=$1
  shift
  local logfile=$logs/$name.log
  : >"$logfile"
  # setsid makes the process a session and process-group leader that survives the calling shell.
  # fd 9 (the lock) is closed for it, else it would hold the lock for as long as it runs.
  setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  local pid=$!
  echo "$pid" >"$(pidfile "$name")"
}

fail_with_log() { # fail_with_log NAME MESSAGE
  log "last lines of $logs/$1.log:"
  tail -30 "$logs/$1.log" >&2 || true
  die "$2"
}

wait_for() { # wait_for NAME TIMEOUT_S DESCRIPTION COMMAND... : poll until COMMAND succeeds
  local name=$1 timeout=$2 what=$3
  shift 3
  local deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail_with_log "$name" "$name exited before $what"
    [ "$(date +%s)" -lt "$deadline" ] || fail_with_log "$name" "$name: no $what within $timeout s"
    sleep 0.2
  done
}

kubectl() { "$bin_kubectl" --kubeconfig "$kubeconfig" "$@"; }
curl_admin() { curl -fsS --max-time 2 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$@"; }
healthz_ok() { [ "$(curl -ksS --max-time 2 "$1" 2>/dev/null)" = ok ]; }

exited() { # exited PID : gone, or a zombie (dead; its parent, PID 1 here, has not reaped it yet)
  [ ! -d "/proc/$1" ] || grep -q '^State:[[:space:]]*[ZX]' "/proc/$1/status" 2>/dev/null
}

stop_tier() { # stop_tier NAME... : SIGTERM their process groups, wait, SIGKILL what is left after 15 s
  local name pid entries=() entry
  for name in "$@"; do
    pid=$(cat "$(pidfile "$name")" 2>/dev/null) || continue
    if running "$name"; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      entries+=("$name:$pid")
    fi
    rm -f "$(pidfile "$name")"
  done
  local deadline=$(($(date +%s) + 15))
  for entry in "${entries[@]}"; do
    name=${entry%%:*} pid=${entry#*:}
    while ! exited "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.05; done
    if ! exited "$pid"; then
      log "$name ($pid) did not stop on SIGTERM: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    stopped_pids+=("$pid")
  done
}

leftovers() { # pids of processes from $bindir whose arguments name $state
  local pid
  for pid in $(pgrep -f "^$bindir/" || true); do
    # (the arguments only: the binaries themselves live under the default state directory)
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | tail -n +2 | grep -qF "$state/" && echo "$pid"
  done
  return 0
}

stop_all() {
  local stopped_pids=() pid i name known=" "
  # First a safety net for processes whose pid file was lost: anything running from our binaries
  # with this state directory on its command line (every component has one: another cluster from
  # the same binaries with another LIMR_CLUSTER_DIR is left alone). They go first, as clients would.
  for name in etcd kube-apiserver kube-controller-manager kuberay-operator kueue; do
    running "$name" && known+="$(cat "$(pidfile "$name")") "
  done
  for pid in $(leftovers); do
    [[ "$known" == *" $pid "* ]] && continue
    log "stopping leftover $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120) ($pid)"
    kill -KILL "$pid" 2>/dev/null || true
    stopped_pids+=("$pid")
  done
  # Clients before servers (an operator stops at once while its API server still answers), etcd last.
  stop_tier kueue kuberay-operator
  stop_tier kube-controller-manager
  stop_tier kube-apiserver
  stop_tier etcd
  for ((i = 0; i < 50; i++)); do
    [ -z "$(leftovers)" ] && break
    sleep 0.1
  done
  [ -z "$(leftovers)" ] || die "processes of this cluster are still running: $(leftovers)"
  # Give PID 1 a moment to reap the dead (a zombie holds no port or file, but shows in `pgrep`).
  local waiting
  for ((i = 0; i < 50; i++)); do
    waiting=0
    for pid in "${stopped_pids[@]}"; do [ -d "/proc/$pid" ] && waiting=1; done
    [ "$waiting" = 0 ] && break
    sleep 0.1
  done
  return 0
}

healthy() { # every component runs and answers its health check
  local name
  for name in "${components[@]}"; do alive "$name" || return 1; done
  [ -s "$kubeconfig" ] || return 1
  [ "$(curl_admin "$server/readyz" 2>/dev/null)" = ok ] || return 1
  if has kuberay-operator; then
    healthz_ok "http://127.0.0.1:$kuberay_probe_port/readyz" || return 1
  fi
  if has kueue; then
    healthz_ok "http://127.0.0.1:$kueue_probe_port/readyz" || return 1
  fi
}

# --- the components ------------------------------------------------------------------------------------
start_etcd() {
  [ "${LIMR_CLUSTER_KEEP_DATA:-}" = 1 ] || rm -rf "$state/etcd-data"
  mkdir -p "$state/etcd-data"
  chmod 700 "$state/etcd-data"
  start etcd "$bin_etcd" --name limr-local --data-dir "$state/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "limr-local=http://127.0.0.1:$etcd_peer_port" --initial-cluster-state new \
    --unsafe-no-fsync --log-level warn
  # A test store, wiped on every `up`: no fsync (fast on slow disks).
  wait_for etcd 30 "health on :$etcd_port" \
    bash -c "curl -fsS --max-time 2 http://127.0.0.1:$etcd_port/health | grep -q '\"health\":\"true\"'"
}

start_apiserver() {
  local audit=()
  if [ "${LIMR_CLUSTER_AUDIT:-}" = 1 ]; then
    printf '%s\n' "apiVersion: audit.k8s.io/v1" "kind: Policy" "omitStages: [RequestReceived]" \
      "rules:" "- level: Metadata" >"$state/audit-policy.yaml"
    : >"$logs/audit.log"
    audit=(--audit-policy-file "$state/audit-policy.yaml" --audit-log-path "$logs/audit.log"
      --audit-log-format json --audit-log-mode blocking)
  fi
  start kube-apiserver "$bin_apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$apiserver_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode RBAC \
    --enable-admission-plugins OwnerReferencesPermissionEnforcement \
    --allow-privileged=true \
    --endpoint-reconciler-type none \
    --profiling=false "${audit[@]}"
  # Endpoint reconciler off: the only address is loopback, which an Endpoints object may not hold.
  wait_for kube-apiserver 90 "/readyz on $server" bash -c "[ \"\$(curl -fsS --max-time 2 --cacert '$pki/ca.crt' --cert '$pki/admin.crt' --key '$pki/admin.key' $server/readyz)\" = ok ]"
}

start_controller_manager() {
  cert_kubeconfig "$state/kube-controller-manager.kubeconfig" system:kube-controller-manager \
    "$pki/kube-controller-manager.crt" "$pki/kube-controller-manager.key"
  local kc=$state/kube-controller-manager.kubeconfig
  start kube-controller-manager "$bin_kcm" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" \
    --controllers '*' --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --profiling=false
}

wait_controller_manager() {
  wait_for kube-controller-manager 60 "/healthz on :$kcm_port" healthz_ok "https://127.0.0.1:$kcm_port/healthz"
}

apply_crds() { # apply_crds FILE_OR_DIR... (Kueue's Workload CRD is too big for a client-side apply)
  local args=() f names
  for f in "$@"; do args+=(-f "$f"); done
  if [ "${LIMR_CLUSTER_KEEP_DATA:-}" = 1 ]; then
    names=$(kubectl apply --server-side --force-conflicts --field-manager limr-cluster "${args[@]}" -o name)
  else # a fresh store: create is faster than a server-side apply
    names=$(kubectl create "${args[@]}" -o name)
  fi || die "creating the CRDs in $* failed"
  # shellcheck disable=SC2086 # one word per CRD
  kubectl wait --for condition=Established --timeout 60s $names >/dev/null ||
    die "the CRDs in $* did not become Established"
}

kuberay_crds() { # KubeRay's CRDs, from its own module
  echo "$(module_dir kuberay github.com/ray-project/kuberay/ray-operator)/config/crd/bases"
}

render_kueue() { # Kueue's CRDs and webhook configurations, from its own module, rewritten for loopback
  local dir
  dir=$(module_dir kueue sigs.k8s.io/kueue)
  "$bin_kueue_render" -kueue-dir "$dir" -url "https://127.0.0.1:$kueue_webhook_port" -ca-file "$pki/ca.crt" \
    -frameworks "$kueue_frameworks" -namespace "$kueue_namespace" \
    -crds-out "$state/kueue-crds.yaml" -webhooks-out "$state/kueue-webhooks.yaml" ||
    die "rendering Kueue's manifests from $dir failed"
}

start_kuberay() {
  # Outside a cluster: its ServiceAccount's token, no leader election, metrics and probes on loopback.
  kuberay_rbac
  start kuberay-operator "$bin_kuberay" --kubeconfig "$state/kuberay.kubeconfig" \
    --metrics-addr "127.0.0.1:$kuberay_metrics_port" \
    --health-probe-bind-address "127.0.0.1:$kuberay_probe_port" \
    --enable-leader-election=false \
    --log-stdout-encoder console
}

start_kueue() {
  kueue_metrics_certs
  kubectl get namespace "$kueue_namespace" >/dev/null 2>&1 || kubectl create namespace "$kueue_namespace" >/dev/null
  kubectl apply --server-side --force-conflicts --field-manager limr-cluster -f "$state/kueue-webhooks.yaml" >/dev/null ||
    die "applying Kueue's webhook configurations failed"
  local fw frameworks=""
  for fw in ${kueue_frameworks//,/ }; do frameworks+="
  - \"$fw\""; done
  cat >"$state/kueue-config.yaml" <<EOF
apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: $kueue_namespace
health:
  healthProbeBindAddress: 127.0.0.1:$kueue_probe_port
metrics:
  bindAddress: 127.0.0.1:$kueue_metrics_port
webhook:
  host: 127.0.0.1
  port: $kueue_webhook_port
  certDir: $pki/kueue-webhook-certs
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
featureGates:
  # The visibility API server would read its certificate from the fixed path /visibility and
  # needs an APIService plus a Service: not on loopback.
  VisibilityOnDemand: false
clientConnection:
  qps: 50
  burst: 100
integrations:
  frameworks:$frameworks
EOF
  kueue_rbac
  start kueue "$bin_kueue" --kubeconfig "$state/kueue.kubeconfig" --config "$state/kueue-config.yaml"
}

wait_kuberay() {
  wait_for kuberay-operator 60 "/readyz on :$kuberay_probe_port" healthz_ok "http://127.0.0.1:$kuberay_probe_port/readyz"
}

wait_kueue() {
  wait_for kueue 90 "/readyz on :$kueue_probe_port" healthz_ok "http://127.0.0.1:$kueue_probe_port/readyz"
  # The webhooks answer: a server-side dry run of a ResourceFlavor goes through Kueue's mutating
  # and validating webhooks (failurePolicy Fail).
  local probe="apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: limr-cluster-webhook-probe}"
  wait_for kueue 60 "webhook answer on :$kueue_webhook_port" \
    bash -c "printf '%s' \"\$1\" | '$bin_kubectl' --kubeconfig '$kubeconfig' create --dry-run=server -o name -f -" _ "$probe"
}

up() {
  local start_t
  start_t=$(now)
  if healthy; then
    log "already up ($server; KUBECONFIG=$kubeconfig)"
    return 0
  fi
  build
  mkdir -p "$state" "$logs" "$run"
  stop_all # whatever half of an earlier cluster is left
  local port
  for port in "$etcd_port" "$etcd_peer_port" "$apiserver_port" "$kcm_port" "$kuberay_metrics_port" \
    "$kuberay_probe_port" "$kueue_webhook_port" "$kueue_probe_port" "$kueue_metrics_port"; do
    port_in_use "$port" && die "port 127.0.0.1:$port is taken (another cluster? set LIMR_CLUSTER_PORT_BASE, default 26000)"
  done
  make_pki
  # A failed `up` leaves nothing running (the logs stay), unless LIMR_CLUSTER_KEEP_ON_FAILURE=1.
  [ "${LIMR_CLUSTER_KEEP_ON_FAILURE:-}" = 1 ] || trap 'log "up failed: stopping what it started (logs in $logs)"; stop_all' EXIT
  local t
  t=$(now)
  start_etcd
  log "etcd $etcd_version up on :$etcd_port ($(since "$t") s)"
  t=$(now)
  start_apiserver
  cert_kubeconfig "$kubeconfig" limr-admin "$pki/admin.crt" "$pki/admin.key"
  log "kube-apiserver $k8s_version up on $server ($(since "$t") s)"
  has kueue && render_kueue
  t=$(now)
  start_controller_manager
  # The CRDs of both operators in one go, then the operators, then wait for all of them.
  local crds=()
  if has kuberay-operator || [ "${LIMR_CLUSTER_KUBERAY_CRDS:-}" = 1 ]; then crds+=("$(kuberay_crds)"); fi
  has kueue && crds+=("$state/kueue-crds.yaml")
  [ ${#crds[@]} = 0 ] || apply_crds "${crds[@]}"
  log "CRDs established: ${#crds[@]} sets ($(since "$t") s)"
  has kuberay-operator && start_kuberay
  has kueue && start_kueue
  wait_controller_manager
  log "kube-controller-manager up on :$kcm_port ($(since "$t") s)"
  has kuberay-operator && { wait_kuberay; log "KubeRay $kuberay_version up ($(since "$t") s)"; }
  has kueue && { wait_kueue; log "Kueue $kueue_version up, webhooks answering ($(since "$t") s)"; }
  write_env
  trap - EXIT
  log "up in $(since "$start_t") s: export KUBECONFIG=$kubeconfig"
}

write_env() {
  cat >"$state/env" <<EOF
export KUBECONFIG=$kubeconfig
export LIMR_CLUSTER_SERVER=$server
export LIMR_CLUSTER_KUBECTL=$bin_kubectl
export LIMR_CLUSTER_LOGS=$logs
EOF
}

status() {
  local name pid rss ok=0
  for name in "${components[@]}"; do
    if alive "$name"; then
      pid=$(cat "$(pidfile "$name")")
      rss=$(awk '/^VmRSS/ {printf "%d MiB", $2 / 1024}' "/proc/$pid/status")
      printf '%-24s running  pid %-7s rss %s\n' "$name" "$pid" "$rss"
    else
      printf '%-24s stopped\n' "$name"
      ok=1
    fi
  done
  if [ "$ok" = 0 ] && healthy; then echo "healthy: $server (KUBECONFIG=$kubeconfig)"; else echo "not healthy"; ok=1; fi
  return $ok
}

cmd=${1:-}
case "$cmd" in
  up | down | build | status | env) ;;
  *) echo "usage: $0 up|down|status|env|build" >&2; exit 2 ;;
esac
mkdir -p "$state" "$run"
if [ "$cmd" = env ]; then
  echo "export KUBECONFIG=$kubeconfig"
  echo "export LIMR_CLUSTER_SERVER=$server"
  echo "export LIMR_CLUSTER_KUBECTL=$bin_kubectl"
  echo "export LIMR_CLUSTER_LOGS=$logs"
  exit 0
fi
# One `up`/`down` at a time per state directory (parallel pytest sessions share one cluster).
exec 9>"$state/.lock"
flock 9
case "$cmd" in
  up) up ;;
  down) stop_all; log "down" ;;
  build) build ;;
  status) status ;;
esac
