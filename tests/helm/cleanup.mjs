// The chart with cleanup.enabled (uninstall cleanup, see "Upgrades and
// uninstall" in helm/nodedns/README.md): every rendered object is validated
// against the Kubernetes API schemas, the nodedns DaemonSet is gone and the
// cleanup DaemonSet is there, reaching the same nodes with only what it needs,
// and its config names the interface and addresses nodedns's config does.
// Usage: node cleanup.mjs RENDERED.yaml OUT_DIR
// Writes OUT_DIR/cleanup.sh and OUT_DIR/cleanup.toml (what the ConfigMap
// ships; chart_test.sh runs them) and OUT_DIR/nodedns.toml.
import fs from 'node:fs';
import * as yaml from 'js-yaml';

const [, , renderedPath, outDir] = process.argv;
const docs = yaml.loadAll(fs.readFileSync(renderedPath, 'utf8')).filter((d) => d);
function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}
function expect(cond, msg) {
  if (!cond) fail(msg);
}

const modules = {'v1': 'kubernetes-models/v1', 'apps/v1': 'kubernetes-models/apps/v1',
                 'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'};
for (const d of docs) {
  expect(modules[d.apiVersion], `no schema module for ${d.apiVersion} ${d.kind}`);
  const m = await import(modules[d.apiVersion]);
  try {
    new m[d.kind](d).validate();
  } catch (e) {
    fail(`${d.kind} ${d.metadata?.name}: ${e.message}`);
  }
}

const daemonSets = docs.filter((d) => d.kind === 'DaemonSet');
expect(daemonSets.length === 1 && daemonSets[0].metadata.name.endsWith('-cleanup'),
       `one DaemonSet, the cleanup one, instead of nodedns (got ${daemonSets.map((d) => d.metadata.name)})`);
const ds = daemonSets[0];
const name = ds.metadata.name;
const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === name);
expect(cm && cm.data['cleanup.sh'] && cm.data['cleanup.toml'], `ConfigMap ${name} with cleanup.sh and cleanup.toml`);
const main = docs.find((d) => d.kind === 'ConfigMap' && d.data && 'nodedns.toml' in d.data);
expect(main, "nodedns's ConfigMap");

const pod = ds.spec.template.spec;
expect(pod.hostNetwork === true, "hostNetwork: true (the interface and the table are the node's)");
expect((pod.tolerations || []).some((t) => t.operator === 'Exists' && !t.key), 'tolerates every taint, as nodedns');
expect(pod.priorityClassName === 'system-node-critical', 'priorityClassName as nodedns');
// Not selected by the metrics Service (it selects nodedns's pods).
const svc = docs.find((d) => d.kind === 'Service');
if (svc) {
  const labels = ds.spec.template.metadata.labels;
  expect(!Object.entries(svc.spec.selector).every(([k, v]) => labels[k] === v), 'the metrics Service does not select cleanup pods');
}

const init = (pod.initContainers || []).find((c) => c.name === 'cleanup');
expect(init, 'an init container "cleanup"');
expect(JSON.stringify(init.command) === JSON.stringify(['/bin/sh', '/etc/nodedns-cleanup/cleanup.sh']), 'it runs cleanup.sh');
const sc = init.securityContext;
expect(sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false, 'read-only, no escalation');
expect(sc.capabilities.drop.includes('ALL') && JSON.stringify(sc.capabilities.add) === '["NET_ADMIN"]', 'only NET_ADMIN');
const env = Object.fromEntries(init.env.map((e) => [e.name, e.value]));
const mainToml = main.data['nodedns.toml'];
const socket = mainToml.match(/\[control\]\nsocket = "([^"]+)"/)[1];
expect(env.NODEDNS_CONTROL_SOCKET === socket, `it watches nodedns's control socket ${socket} (${env.NODEDNS_CONTROL_SOCKET})`);
const runDir = socket.replace(/\/[^/]+$/, '');
const runMount = init.volumeMounts.find((m) => m.mountPath === runDir);
expect(runMount && !runMount.readOnly, `${runDir} mounted`);
const runVolume = pod.volumes.find((v) => v.name === runMount.name);
expect(runVolume.hostPath && runVolume.hostPath.path === runDir, `${runDir} is the host's`);
expect(init.volumeMounts.some((m) => m.mountPath === env.NODEDNS_CLEANUP_WORK), 'a writable work directory');

// The short-lived nodedns adopts the interface nodedns made: same name, same addresses.
const toml = cm.data['cleanup.toml'];
function section(t, s) {  // the lines of [s], up to the next section
  const rest = t.slice(t.indexOf(`[${s}]\n`) + s.length + 3);
  const end = rest.search(/\n\[/);
  return end < 0 ? rest : rest.slice(0, end);
}
const field = (t, key) => (section(t, 'interface').match(new RegExp(`^${key} = (.+)$`, 'm')) || [])[1];
expect(field(toml, 'setup') === 'true', 'cleanup.toml: interface setup');
expect(field(toml, 'notrack') === 'false', 'cleanup.toml: no NOTRACK rules of its own');
expect(field(toml, 'name') === field(mainToml, 'name') && env.NODEDNS_INTERFACE === JSON.parse(field(mainToml, 'name')),
       `the interface name nodedns uses (${field(mainToml, 'name')})`);
expect(field(toml, 'addresses') === field(mainToml, 'addresses'), `the addresses nodedns uses (${field(mainToml, 'addresses')})`);
expect(/\[control\]\nsocket = ""/.test(toml), 'cleanup.toml: no control socket (never a handover)');

const idle = pod.containers.find((c) => c.name === 'idle');
expect(idle && idle.securityContext.runAsNonRoot === true && !idle.securityContext.capabilities.add, 'an idle, unprivileged container');

fs.mkdirSync(outDir, {recursive: true});
fs.writeFileSync(`${outDir}/cleanup.sh`, cm.data['cleanup.sh']);
fs.writeFileSync(`${outDir}/cleanup.toml`, toml);
fs.writeFileSync(`${outDir}/nodedns.toml`, mainToml);
console.log(`ok: ${name}, interface ${field(toml, 'name')} ${field(toml, 'addresses')}, socket ${socket}`);
