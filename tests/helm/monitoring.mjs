// Checks the chart's Grafana dashboard and PrometheusRule as rendered by
// `helm template`. Usage:
//   node monitoring.mjs RENDERED.yaml DASHBOARD.json METRICS.txt RULES_OUT.yaml
// - the dashboard ConfigMap holds DASHBOARD.json (the chart's file) verbatim,
//   valid JSON, with the sidecar label;
// - every metric name in the dashboard's PromQL (panel targets, template
//   variables) and in the rules' expressions is one nodedns exports (its
//   /metrics text, METRICS.txt, scraped from the binary under test) or one of
//   the few named below that come from elsewhere (cAdvisor, kube-state-metrics);
// - the rule groups are written to RULES_OUT.yaml for `promtool check rules`.
// Exits non-zero on the first failure.
import fs from 'node:fs';
import * as yaml from 'js-yaml';

const [, , renderedPath, dashboardPath, metricsPath, rulesOut] = process.argv;
function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}
function expect(cond, msg) {
  if (!cond) fail(msg);
}

// Metrics the chart uses that nodedns does not export: the kubelet's cAdvisor
// (container memory) and kube-state-metrics (container restarts).
const external = new Set(['container_memory_rss', 'container_memory_working_set_bytes',
  'kube_pod_container_status_restarts_total']);
const exported = new Set();
for (const line of fs.readFileSync(metricsPath, 'utf8').split('\n')) {
  const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[ {]/);
  if (m) exported.add(m[1]);
}
expect(exported.size > 50, `only ${exported.size} metric names in ${metricsPath}`);

// Metric names in a PromQL expression: identifiers outside label matchers,
// strings, ranges, grouping clauses and function calls.
const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or',
  'unless', 'offset', 'inf', 'nan']);
function metricNames(expr) {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  e = e.replace(/\$\{?\w+\}?/g, ' ');
  e = e.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = [];
  for (const m of e.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    if (!keywords.has(m[1].toLowerCase())) names.push(m[1]);
  }
  return names;
}
function checkNames(where, expr) {
  const names = metricNames(expr);
  expect(names.length > 0, `${where}: no metric name found in: ${expr}`);
  for (const n of names) {
    expect(exported.has(n) || external.has(n), `${where}: ${n} is not exported by nodedns (nor a known external metric): ${expr}`);
  }
  return names;
}

const docs = yaml.loadAll(fs.readFileSync(renderedPath, 'utf8')).filter((d) => d);
const used = new Set();

// The dashboard.
const file = fs.readFileSync(dashboardPath, 'utf8');
const cm = docs.find((d) => d.kind === 'ConfigMap' && d.data && 'nodedns.json' in d.data);
expect(cm, 'a dashboard ConfigMap with nodedns.json');
expect(cm.metadata.labels.grafana_dashboard === '1', 'the dashboard ConfigMap has grafana_dashboard: "1"');
expect(cm.data['nodedns.json'].trim() === file.trim(), 'the ConfigMap holds dashboards/nodedns.json verbatim');
let dash;
try {
  dash = JSON.parse(cm.data['nodedns.json']);
} catch (e) {
  fail(`dashboard JSON: ${e.message}`);
}
expect(dash.uid && dash.title && Array.isArray(dash.panels) && dash.panels.length > 0, 'dashboard: uid, title, panels');
const ids = new Set();
for (const p of dash.panels) {
  expect(!ids.has(p.id), `dashboard: panel id ${p.id} twice`);
  ids.add(p.id);
  expect(p.targets && p.targets.length > 0, `panel "${p.title}": no targets`);
  for (const t of p.targets) {
    checkNames(`panel "${p.title}"`, t.expr).forEach((n) => used.add(n));
  }
}
for (const v of dash.templating?.list || []) {
  const q = typeof v.query === 'object' ? v.query.query : v.query;
  const m = v.type === 'query' && q.match(/^label_values\(\s*([^,)]+)\s*,/);
  if (m) checkNames(`variable ${v.name}`, m[1]).forEach((n) => used.add(n));
}
console.log(`dashboard: ${dash.panels.length} panels`);

// The rules.
const rule = docs.find((d) => d.kind === 'PrometheusRule');
expect(rule, 'a PrometheusRule');
expect(Array.isArray(rule.spec?.groups) && rule.spec.groups.length > 0, 'PrometheusRule: spec.groups');
const alerts = [];
for (const g of rule.spec.groups) {
  expect(g.name && Array.isArray(g.rules) && g.rules.length > 0, 'PrometheusRule: a group with a name and rules');
  for (const r of g.rules) {
    expect(r.alert && r.expr && r.labels?.severity, `rule ${r.alert}: alert, expr and severity`);
    checkNames(`alert ${r.alert}`, String(r.expr)).forEach((n) => used.add(n));
    alerts.push(r.alert);
  }
}
fs.writeFileSync(rulesOut, yaml.dump({groups: rule.spec.groups}));
console.log(`alerts: ${alerts.join(', ')}`);
console.log(`metric names used: ${[...used].sort().join(' ')}`);
