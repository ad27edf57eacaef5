// Validates every object `helm template` rendered against the Kubernetes API
// schemas (kubernetes-models) and asserts what matters for a node-local DNS
// DaemonSet. Usage: node validate.mjs RENDERED.yaml CONFIG_OUT.toml
// Writes the ConfigMap's nodedns.toml to CONFIG_OUT.toml (the caller runs
// `nodedns --check-config` on it). Exits non-zero on the first failure.
import fs from 'node:fs';
import * as yaml from 'js-yaml';

const [, , renderedPath, configOut] = process.argv;
const docs = yaml.loadAll(fs.readFileSync(renderedPath, 'utf8')).filter((d) => d);

const modules = {
  'v1': 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};
function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}
function expect(cond, msg) {
  if (!cond) fail(msg);
}

const byKind = {};
for (const d of docs) {
  const mod = modules[d.apiVersion];
  expect(mod, `no schema module for ${d.apiVersion} ${d.kind}`);
  const m = await import(mod);
  expect(m[d.kind], `no model for ${d.apiVersion} ${d.kind}`);
  try {
    new m[d.kind](d).validate();
  } catch (e) {
    fail(`${d.kind} ${d.metadata?.name}: ${e.message}`);
  }
  byKind[d.kind] = d;
}
console.log(`valid: ${docs.map((d) => d.kind).join(', ')}`);

const ds = byKind.DaemonSet;
// cleanup.enabled (tests/helm/cleanup.mjs) is off in every variant here.
expect(!docs.some((d) => d.metadata?.name?.endsWith('-cleanup')), 'no cleanup objects unless cleanup.enabled');
// The nodedns config (dashboard.enabled renders a second ConfigMap).
const cm = docs.find((d) => d.kind === 'ConfigMap' && d.data && 'nodedns.toml' in d.data);
expect(ds && cm, 'a DaemonSet and a ConfigMap are rendered');
const toml = cm.data['nodedns.toml'];
fs.writeFileSync(configOut, toml);

const pod = ds.spec.template.spec;
expect(pod.hostNetwork === true, 'hostNetwork: true');
expect(pod.dnsPolicy === 'Default', 'dnsPolicy: Default (nodedns must not resolve through itself)');
expect(pod.priorityClassName === 'system-node-critical', 'priorityClassName: system-node-critical');
expect((pod.tolerations || []).some((t) => t.operator === 'Exists' && !t.key), 'tolerates every taint');
const c = pod.containers[0];
expect(c.securityContext.readOnlyRootFilesystem === true, 'read-only root filesystem');
expect(c.securityContext.allowPrivilegeEscalation === false, 'no privilege escalation');
expect(c.securityContext.capabilities.drop.includes('ALL'), 'drops all capabilities');

// The probes hit the endpoint nodedns opens for them: the health address
// when it has one ([health] listen, or --health-listen), else the metrics
// one; a flag when the DaemonSet passes it (the node's IP from the downward
// API), else the config's.
const endpoint = (name) => {
  const flag = (c.args || []).map((a) => a.match(new RegExp(`^--${name}-listen=(.+):(\\d+)$`))).find((m) => m);
  return flag || toml.match(new RegExp(`\\[${name}\\]\\nlisten = "([^"]+):(\\d+)"`));
};
const health = endpoint('health');
const listen = health || endpoint('metrics');
expect(listen, 'a metrics or health listen address (flag or config)');
if (health) console.log(`  probes on the health endpoint ${health[1]}:${health[2]}`);
const host = listen[1];
const port = Number(listen[2]);
expect(port !== 8080, 'the health port is not 8080');
if (host === '$(NODE_IP)') {
  const env = (c.env || []).find((e) => e.name === 'NODE_IP');
  expect(env && env.valueFrom.fieldRef.fieldPath === 'status.hostIP', 'NODE_IP is the node IP (status.hostIP)');
}
for (const probe of ['livenessProbe', 'readinessProbe']) {
  expect(c[probe].httpGet.port === port, `${probe} uses the ${health ? 'health' : 'metrics'} port ${port}`);
  // Without a host the kubelet probes the pod IP: the node IP under hostNetwork.
  const wildcardOrNode = host === '0.0.0.0' || host === '$(NODE_IP)';
  expect(wildcardOrNode ? !c[probe].httpGet.host : c[probe].httpGet.host === host, `${probe} host for ${host}`);
}
expect(c.livenessProbe.httpGet.path === '/healthz' && c.readinessProbe.httpGet.path === '/readyz', 'probe paths');
// No declared ports: with hostNetwork they would be host ports, and the
// scheduler would refuse the surge pod beside the old one.
expect(!c.ports || c.ports.length === 0, 'no container ports (they would block the maxSurge pod)');
const dnsPort = Number(toml.match(/\[server\]\nlisten = \["[^"]+:(\d+)"/)[1]);

// NET_ADMIN only when nodedns sets up its interface.
const setup = /\[interface\]\nsetup = true/.test(toml);
const caps = c.securityContext.capabilities.add;
expect(caps.includes('NET_BIND_SERVICE'), 'NET_BIND_SERVICE');
expect(caps.includes('NET_ADMIN') === setup, `NET_ADMIN iff interface setup (setup=${setup})`);
expect(caps.length === (setup ? 2 : 1), 'no other capabilities');

// Upgrades: surge (the default) or maxUnavailable.
const ru = ds.spec.updateStrategy.rollingUpdate;
expect(ds.spec.updateStrategy.type === 'RollingUpdate', 'RollingUpdate');
expect((ru.maxSurge === 0) !== (ru.maxUnavailable === 0), 'exactly one of maxSurge and maxUnavailable is 0');
// minReadySeconds is always rendered (0 included), so the rollout waits as set.
expect(Number.isInteger(ds.spec.minReadySeconds) && ds.spec.minReadySeconds >= 0, 'spec.minReadySeconds is rendered');

// The snapshot directory survives the pod when the snapshot is on.
const snapshotOn = /\[snapshot\]\npath = "\/var\/lib\/nodedns\/cache.snap"/.test(toml);
const state = (pod.volumes || []).find((v) => v.name === 'state');
expect(snapshotOn === !!(state && state.hostPath), 'a hostPath state volume iff the snapshot is on');
expect(pod.volumes.find((v) => v.name === 'run').hostPath, 'the control socket directory is on the host (handover)');

// Memory derived from the cache size.
const maxBytes = Number(toml.match(/max_bytes = (\d+)/)[1]);
const limitMi = Number(c.resources.limits.memory.replace('Mi', ''));
expect(limitMi * 1048576 > maxBytes * 2, `memory limit ${limitMi}Mi covers the cache (${maxBytes} bytes) and a snapshot copy`);

if (byKind.ServiceMonitor) {
  const sm = byKind.ServiceMonitor;
  expect(sm.spec.endpoints[0].port === 'metrics', 'the ServiceMonitor scrapes the metrics port');
  expect(byKind.Service.spec.ports[0].port === port, 'the metrics Service port');
  expect(byKind.Service.spec.ports[0].targetPort === port, 'the metrics Service target port');
}
console.log(`ok: probes ${host}:${port}, dns ${dnsPort}, interface setup ${setup}, snapshot ${snapshotOn}, strategy ` +
            `maxSurge=${ru.maxSurge} maxUnavailable=${ru.maxUnavailable} minReadySeconds=${ds.spec.minReadySeconds}`);
