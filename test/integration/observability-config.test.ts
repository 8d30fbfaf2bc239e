/**
 * The deployment side of observability: docker-compose.yml and observability/ (OTel Collector,
 * Prometheus and its alerts, Tempo, Grafana). None of those servers runs here, so this checks
 * what can be checked for real: Prometheus' own promtool validates the config, parses every
 * PromQL expression (dashboard panels, alerts, Grafana's trace-to-metrics queries) and runs the
 * alerts' unit tests; docker-compose validates the compose file; and the files are checked
 * against each other (ports, service names, datasource uids, mounts).
 *
 * Needs `promtool` (Debian package prometheus) and `docker-compose` (Debian package
 * docker-compose). .ci/run installs both.
 */
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gatewayConfig } from '../../src/gateway/config.js';

/** A parsed YAML or JSON config: a free-form document navigated key by key below. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- configs are free-form documents read key by key; the assertions are their type check
type Doc = any;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OBS = path.join(ROOT, 'observability');
const PROMETHEUS_YML = path.join(OBS, 'prometheus', 'prometheus.yml');
const ALERTS_YML = path.join(OBS, 'prometheus', 'alerts.yml');
const ALERTS_TEST_YML = path.join(OBS, 'prometheus', 'alerts.test.yml');
const COLLECTOR_YAML = path.join(OBS, 'otel-collector', 'config.yaml');
const TEMPO_YAML = path.join(OBS, 'tempo', 'tempo.yaml');
const DATASOURCES_YAML = path.join(OBS, 'grafana', 'provisioning', 'datasources', 'datasources.yaml');
const DASHBOARD_PROVIDERS_YAML = path.join(OBS, 'grafana', 'provisioning', 'dashboards', 'dashboards.yaml');
const DASHBOARD_JSON = path.join(OBS, 'grafana', 'dashboards', 'sagas.json');
const COMPOSE_YML = path.join(ROOT, 'docker-compose.yml');

/** The metrics the four processes export, by their Prometheus names. */
const COUNTERS = [
  'saga_started_total',
  'saga_finished_total',
  'saga_recoveries_total',
  'saga_step_retries_total',
  'idempotency_replays_total',
];
const GAUGES = [
  'saga_inflight',
  'saga_parked',
  'saga_oldest_inflight_age_seconds',
  'saga_stuck',
  'idempotency_fallback_active',
];
const HISTOGRAMS = [
  'saga_duration_seconds',
  'saga_step_duration_seconds',
  'http_server_request_duration',
  'rpc_server_duration',
];
const EXPORTED = new Set([
  ...COUNTERS,
  ...GAUGES,
  ...HISTOGRAMS.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]),
]);
/** Gauges read from the saga log: every gateway sharing one log reports the same value. */
const SAGA_LOG_GAUGES = ['saga_inflight', 'saga_parked', 'saga_oldest_inflight_age_seconds', 'saga_stuck'];
/** The gateways of the default setup and of the "multi" and "replicas" profiles. */
const GATEWAYS = ['gateway', 'gateway-1', 'gateway-2', 'gateway-replicas'];
/** The participants of the default setup, and the two replicas of each of the "replicas" profile. */
const PARTICIPANTS = ['order', 'inventory', 'payment'].flatMap((p) => [p, `${p}-1`, `${p}-2`]);
/** The services `docker compose up` (no profile) runs: the same as before the profiles. */
const DEFAULT_SERVICES = [
  'certs',
  'gateway',
  'grafana',
  'inventory',
  'order',
  'otel-collector',
  'payment',
  'prometheus',
  'redis',
  'tempo',
  'tempo-init',
];
/** The processes of the app image, each with its own mutual-TLS identity (the gateways share the gateway's). */
const IDENTITY_OF: Record<string, string> = {
  gateway: 'gateway',
  'gateway-1': 'gateway',
  'gateway-2': 'gateway',
  'gateway-replicas': 'gateway',
  ...Object.fromEntries(PARTICIPANTS.map((p) => [p, p.replace(/-\d$/, '')])),
};

// ---------------------------------------------------------------------------------------------
// tools

const TOOLS = {
  promtool: 'the Debian package prometheus',
  'docker-compose': 'the Debian package docker-compose',
} as const;
type Tool = keyof typeof TOOLS;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The secrets compose requires (docker-compose.yml, top comment; README: an .env file), and the
 * values the checks below run it with, as an operator's .env would give them.
 */
const COMPOSE_SECRETS = {
  GRAFANA_ADMIN_PASSWORD: 'test-grafana',
  REDIS_PASSWORD: 'test-redis',
  POSTGRES_PASSWORD: 'test-postgres',
} as const;
type ComposeSecret = keyof typeof COMPOSE_SECRETS;

/**
 * Runs `tool` with the compose secrets of COMPOSE_SECRETS (not those of whoever runs the tests, so
 * that the file is checked alike everywhere), `extraEnv` on top, and without the `unset` ones.
 */
function run(
  tool: Tool,
  args: string[],
  input?: string,
  extraEnv: Record<string, string> = {},
  unset: readonly ComposeSecret[] = [],
): Run {
  const env: Record<string, string | undefined> = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !(k in COMPOSE_SECRETS))),
    ...COMPOSE_SECRETS,
    ...extraEnv,
  };
  for (const k of unset) delete env[k];
  const r = spawnSync(tool, args, { cwd: ROOT, encoding: 'utf8', input, timeout: 60_000, env });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    assert.fail(
      `${tool} is not installed: it comes with ${TOOLS[tool]}, which .ci/run installs. ` +
        'On Debian/Ubuntu: apt-get update && apt-get install -y prometheus docker-compose',
    );
  }
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOk(r: Run, what: string): void {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
}

/** YAML → plain data (the `yaml` package; aliases resolved). */
function yaml(textOrFile: { file: string } | { text: string }): Doc {
  const text = 'file' in textOrFile ? fs.readFileSync(textOrFile.file, 'utf8') : textOrFile.text;
  return parseYaml(text);
}

let composeCache: Doc;
/** The compose file as docker-compose resolves it (anchors, merges and relative paths applied). */
function compose(): Doc {
  composeCache ??= composeWith([]);
  return composeCache;
}

/** The compose file resolved with `profiles` and the variables of `env` set (nothing else of the compose secrets). */
function composeWith(profiles: string[], env: Record<string, string> = {}): Doc {
  const r = run(
    'docker-compose',
    ['-f', COMPOSE_YML, ...profiles.flatMap((p) => ['--profile', p]), 'config'],
    undefined,
    env,
  );
  assertOk(r, 'docker-compose config');
  return yaml({ text: r.stdout });
}

interface PortMapping {
  hostIp: string | undefined;
  published: number;
  target: number;
}

/** A `ports` entry in either form docker-compose prints: `[ip:]published:target[/proto]` or the long form. */
function portMapping(p: Doc): PortMapping {
  if (typeof p === 'object') return { hostIp: p.host_ip, published: Number(p.published), target: Number(p.target) };
  const parts = String(p)
    .replace(/\/\w+$/, '')
    .split(':');
  assert.ok(parts.length === 2 || parts.length === 3, `port mapping ${p}`);
  return {
    hostIp: parts.length === 3 ? parts[0] : undefined,
    published: Number(parts.at(-2)),
    target: Number(parts.at(-1)),
  };
}

// ---------------------------------------------------------------------------------------------
// PromQL

/** Grafana's macros, replaced by what Grafana would put there, so promtool can parse the query. */
function expandGrafanaMacros(expr: string): string {
  const out = expr
    .replace(/\$\$/g, '$') // provisioning files escape `$` as `$$`
    .replace(/\$__(rate_interval|interval|range)\b/g, '5m')
    .replace(/\$__tags\b/g, 'service="gateway"');
  assert.ok(!out.includes('$'), `unknown Grafana variable in ${JSON.stringify(expr)}`);
  return out;
}

/** Parses each expression with promtool (as recording rules); fails naming the ones that do not parse. */
function assertPromqlParses(exprs: { where: string; expr: string }[]): void {
  assert.ok(exprs.length > 0, 'no expressions to check');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promql-'));
  try {
    const bad: string[] = [];
    exprs.forEach(({ where, expr }, i) => {
      // one file per expression, so a failure names its panel or rule
      const file = path.join(dir, `expr-${i}.yml`);
      const rules = { groups: [{ name: `expr_${i}`, rules: [{ record: `check:expr_${i}`, expr }] }] };
      fs.writeFileSync(file, JSON.stringify(rules)); // JSON is YAML
      const r = run('promtool', ['check', 'rules', file]);
      const why = /could not parse expression: (.*)/.exec(r.stdout + r.stderr)?.[1] ?? (r.stdout + r.stderr).trim();
      if (r.status !== 0) bad.push(`  ${where}: ${expr}\n    ${why}`);
    });
    if (bad.length) assert.fail(`invalid PromQL:\n${bad.join('\n')}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** The metric names an expression selects (strings, matchers, ranges, label lists and functions removed). */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/(?<![\w:])\d+(\.\d+)?(e[+-]?\d+)?/gi, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = s.slice((m.index ?? 0) + m[0].length);
    if (/^\s*\(/.test(after) || PROMQL_KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

// ---------------------------------------------------------------------------------------------
// files

interface Panel {
  id?: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; refId?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}

function dashboard(): { uid: string; title: string; panels: Panel[] } {
  return JSON.parse(fs.readFileSync(DASHBOARD_JSON, 'utf8'));
}

/** Every non-row panel, including panels inside collapsed rows. */
function dataPanels(): Panel[] {
  const flat = (ps: Panel[]): Panel[] => ps.flatMap((p) => (p.type === 'row' ? flat(p.panels ?? []) : [p]));
  return flat(dashboard().panels);
}

function dashboardExprs(): { where: string; expr: string }[] {
  return dataPanels().flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}" ${t.refId ?? ''}`, expr: t.expr ?? '' })),
  );
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function alertRules(): Rule[] {
  return (yaml({ file: ALERTS_YML }).groups as { rules: Rule[] }[]).flatMap((g) => g.rules);
}

function port(address: string | undefined): number {
  const m = /:(\d+)$/.exec(address ?? '');
  assert.ok(m, `no port in ${address}`);
  return Number(m[1]);
}

// ---------------------------------------------------------------------------------------------

describe('Prometheus', () => {
  it('promtool accepts prometheus.yml and the rule file it loads', () => {
    const r = run('promtool', ['check', 'config', PROMETHEUS_YML]);
    assertOk(r, 'promtool check config observability/prometheus/prometheus.yml');
    assert.match(r.stdout + r.stderr, /1 rule files? found/);
  });

  it('promtool accepts alerts.yml', () => {
    assertOk(
      run('promtool', ['check', 'rules', ALERTS_YML]),
      'promtool check rules observability/prometheus/alerts.yml',
    );
  });

  it('alerts.yml has the six alerts, each with a severity, a summary and a description', () => {
    const rules = alertRules();
    assert.deepEqual(rules.map((r) => r.alert).sort(), [
      'HighCompensationRate',
      'HighHttpErrorRate',
      'RedisFallbackActive',
      'SagaOldInFlight',
      'SagaParked',
      'SagaStuck',
    ]);
    for (const r of rules) {
      assert.ok(['critical', 'warning', 'info'].includes(r.labels?.severity ?? ''), `${r.alert}: severity label`);
      assert.ok(r.annotations?.summary?.trim(), `${r.alert}: summary annotation`);
      assert.ok(r.annotations?.description?.trim(), `${r.alert}: description annotation`);
    }
    const byName = new Map(rules.map((r) => [r.alert, r]));
    assert.equal(byName.get('SagaOldInFlight')?.for, '2m');
    assert.equal(byName.get('SagaStuck')?.for, '2m');
    assert.equal(byName.get('RedisFallbackActive')?.for, '1m');
  });

  it('every alert fires on its condition and stays quiet otherwise (promtool test rules alerts.test.yml)', () => {
    assertOk(
      run('promtool', ['test', 'rules', ALERTS_TEST_YML]),
      'promtool test rules observability/prometheus/alerts.test.yml',
    );
    const tested = new Set(
      [...fs.readFileSync(ALERTS_TEST_YML, 'utf8').matchAll(/alertname:\s*(\S+)/g)].map((m) => m[1]),
    );
    for (const r of alertRules()) assert.ok(tested.has(r.alert), `alerts.test.yml has no test of ${r.alert}`);
  });

  it('alert expressions use only the metrics the processes export', () => {
    for (const r of alertRules()) {
      for (const name of metricNames(r.expr))
        assert.ok(EXPORTED.has(name), `${r.alert} uses ${name}, which no process exports`);
    }
  });

  it('the saga log gauges are aggregated with max(), so gateways sharing a log do not add them up', () => {
    const exprs = [...alertRules().map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })), ...dashboardExprs()];
    let seen = 0;
    for (const { where, expr } of exprs) {
      for (const g of SAGA_LOG_GAUGES) {
        for (const m of expr.matchAll(new RegExp(`\\b${g}\\b`, 'g'))) {
          seen++;
          const before = expr.slice(0, m.index).replace(/\s+/g, ' ').trimEnd();
          assert.match(before, /\bmax(?: by \([^)]*\))? ?\($/, `${where}: ${g} must be inside max(...): ${expr}`);
        }
      }
    }
    assert.ok(seen >= SAGA_LOG_GAUGES.length, 'the gauges are used');
  });

  it('scrapes the collector, the gateway, each service metrics port and itself, where compose runs them', () => {
    const prom = yaml({ file: PROMETHEUS_YML });
    assert.deepEqual(prom.rule_files, ['alerts.yml']);
    const jobs = new Map<string, { targets: string[]; path: string }>(
      prom.scrape_configs.map((c: Doc) => [
        c.job_name,
        { targets: (c.static_configs ?? []).flatMap((s: Doc) => s.targets), path: c.metrics_path ?? '/metrics' },
      ]),
    );
    assert.deepEqual([...jobs.keys()].sort(), [
      'gateway',
      'inventory',
      'order',
      'otel-collector',
      'payment',
      'prometheus',
    ]);
    assert.deepEqual(jobs.get('prometheus')?.targets, ['localhost:9090']);

    const services = compose().services;
    const env = (svc: string) => services[svc].environment as Record<string, string | undefined>;
    // the gateways: found by the network alias they all have (one in the default setup, two in
    // the "multi" profile), on their HTTP port
    const gatewayJob = prom.scrape_configs.find((c: Doc) => c.job_name === 'gateway');
    assert.equal(gatewayJob.metrics_path ?? '/metrics', '/metrics');
    assert.equal(gatewayJob.static_configs, undefined);
    assert.equal(gatewayJob.dns_sd_configs.length, 1);
    const sd = gatewayJob.dns_sd_configs[0];
    assert.deepEqual(sd.names, ['gateways']);
    assert.equal(sd.type, 'A');
    const withAlias = Object.entries<Doc>(services)
      .filter(([, s]) => Object.values<Doc>(s.networks ?? {}).some((n) => (n?.aliases ?? []).includes('gateways')))
      .map(([name]) => name)
      .sort();
    assert.deepEqual(withAlias, GATEWAYS, 'exactly the gateways are "gateways" on the network');
    for (const gw of GATEWAYS) assert.equal(port(env(gw).HTTP_ADDR), sd.port, `${gw} listens where Prometheus scrapes`);
    assert.ok(!(sd.names as string[]).some((n) => services[n]), 'the name is an alias, not one service');
    for (const [svc, metricsPort] of [
      ['order', 9464],
      ['inventory', 9465],
      ['payment', 9466],
    ] as const) {
      assert.equal(port(env(svc).METRICS_ADDR), metricsPort, `${svc} METRICS_ADDR`);
      assert.match(
        env(svc).METRICS_ADDR ?? '',
        /^0\.0\.0\.0:/,
        `${svc} METRICS_ADDR must listen on all interfaces in a container`,
      );
      assert.deepEqual(jobs.get(svc), { targets: [`${svc}:${metricsPort}`], path: '/metrics' });
    }
    const collector = yaml({ file: COLLECTOR_YAML });
    assert.deepEqual(jobs.get('otel-collector')?.targets, [
      `otel-collector:${port(collector.exporters.prometheus.endpoint)}`,
    ]);
    for (const t of [...jobs.values()].flatMap((j) => j.targets)) {
      const host = t.split(':')[0] as string;
      if (host !== 'localhost') assert.ok(services[host], `scrape target ${t}: no compose service "${host}"`);
    }
  });
});

describe('Grafana dashboard', () => {
  it('is the "Sagas" dashboard (uid sagas) and every panel has a PromQL target on the Prometheus datasource', () => {
    const d = dashboard();
    assert.equal(d.uid, 'sagas');
    assert.equal(d.title, 'Sagas');
    const panels = dataPanels();
    assert.ok(panels.length >= 10, `only ${panels.length} panels`);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids must be unique');
    for (const p of panels) {
      assert.ok(p.targets?.length, `panel "${p.title}" has no targets`);
      for (const t of p.targets) {
        assert.ok(t.expr?.trim(), `panel "${p.title}" has a target without an expr`);
        assert.equal(t.datasource?.uid ?? p.datasource?.uid, 'prometheus', `panel "${p.title}" datasource`);
      }
    }
  });

  it('every expression is valid PromQL (parsed by promtool)', () => {
    assertPromqlParses(dashboardExprs().map(({ where, expr }) => ({ where, expr: expandGrafanaMacros(expr) })));
  });

  it('queries only the metrics the processes export, and shows each of them', () => {
    const used = new Set<string>();
    for (const { where, expr } of dashboardExprs()) {
      for (const name of metricNames(expandGrafanaMacros(expr))) {
        assert.ok(EXPORTED.has(name), `${where} uses ${name}, which no process exports`);
        used.add(name);
      }
    }
    const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
    const shown = new Set([...used].flatMap((n) => [n, base(n)]));
    for (const m of [...COUNTERS, ...GAUGES, ...HISTOGRAMS]) assert.ok(shown.has(m), `no panel shows ${m}`);
  });

  it('has the panels the issue asks for', () => {
    const exprs = dashboardExprs().map((e) => e.expr.replace(/\s+/g, ' '));
    const has = (what: string, re: RegExp) =>
      assert.ok(
        exprs.some((e) => re.test(e)),
        `no panel for ${what}`,
      );
    has('throughput by outcome', /sum by \(outcome\) \(rate\(saga_finished_total\[/);
    for (const q of ['0.50', '0.95', '0.99'])
      has(
        `saga duration p${q.slice(2)}`,
        new RegExp(`histogram_quantile\\(${q}, sum by \\(le\\) \\(rate\\(saga_duration_seconds_bucket`),
      );
    has(
      'step latency p95 by step and phase',
      /histogram_quantile\(0\.95, sum by \(le, step, phase\) \(rate\(saga_step_duration_seconds_bucket/,
    );
    has('compensations', /saga_finished_total\{outcome="compensated"\}/);
    has('in flight', /saga_inflight/);
    has('parked', /saga_parked/);
    has('oldest in-flight age', /saga_oldest_inflight_age_seconds/);
    has('Redis fallback', /idempotency_fallback_active/);
    has('HTTP rate by route', /sum by \([^)]*http_route[^)]*\) \(rate\(http_server_request_duration_count/);
    has(
      'HTTP p95 by route',
      /histogram_quantile\(0\.95, sum by \(le, http_route\) \(rate\(http_server_request_duration_bucket/,
    );
    has('gRPC rate by method', /sum by \([^)]*rpc_method[^)]*\) \(rate\(rpc_server_duration_count/);
  });
});

describe('Grafana provisioning', () => {
  it('provides Prometheus (uid prometheus, default) and Tempo (uid tempo) linked to it', () => {
    const ds = yaml({ file: DATASOURCES_YAML }).datasources as Doc[];
    const prom = ds.find((d) => d.uid === 'prometheus');
    const tempo = ds.find((d) => d.uid === 'tempo');
    assert.ok(prom && tempo, 'datasources with uids prometheus and tempo');
    assert.equal(prom.type, 'prometheus');
    assert.equal(prom.isDefault, true);
    assert.equal(prom.url, 'http://prometheus:9090');
    assert.equal(ds.filter((d) => d.isDefault).length, 1, 'exactly one default datasource');
    assert.equal(tempo.type, 'tempo');
    assert.equal(tempo.url, `http://tempo:${yaml({ file: TEMPO_YAML }).server.http_listen_port}`);
    assert.equal(tempo.jsonData.tracesToMetrics.datasourceUid, 'prometheus');
    assert.equal(tempo.jsonData.serviceMap.datasourceUid, 'prometheus');
    assert.equal(tempo.jsonData.nodeGraph.enabled, true);
    for (const e of prom.jsonData.exemplarTraceIdDestinations) assert.equal(e.datasourceUid, 'tempo');
  });

  it('the trace-to-metrics queries are valid PromQL', () => {
    const tempo = (yaml({ file: DATASOURCES_YAML }).datasources as Doc[]).find((d) => d.uid === 'tempo');
    const queries = tempo.jsonData.tracesToMetrics.queries as { name: string; query: string }[];
    assert.ok(queries.length > 0);
    assertPromqlParses(
      queries.map((q) => ({ where: `tracesToMetrics "${q.name}"`, expr: expandGrafanaMacros(q.query) })),
    );
  });

  it('loads dashboards from the folder compose mounts the dashboards into', () => {
    const providers = yaml({ file: DASHBOARD_PROVIDERS_YAML }).providers as Doc[];
    assert.equal(providers.length, 1);
    assert.equal(providers[0].type, 'file');
    assert.equal(providers[0].options.path, '/var/lib/grafana/dashboards');
    const mounts = (compose().services.grafana.volumes as string[]).map((v) => v.split(':'));
    const target = (src: string) => mounts.find(([s]) => path.resolve(s as string) === path.join(OBS, src))?.[1];
    assert.equal(target('grafana/dashboards'), '/var/lib/grafana/dashboards');
    assert.equal(target('grafana/provisioning'), '/etc/grafana/provisioning');
  });
});

describe('OTel Collector and Tempo', () => {
  it('collector: OTLP in; traces to Tempo and through spanmetrics; metrics out on a Prometheus endpoint', () => {
    const c = yaml({ file: COLLECTOR_YAML });
    assert.equal(port(c.receivers.otlp.protocols.grpc.endpoint), 4317);
    assert.equal(port(c.receivers.otlp.protocols.http.endpoint), 4318);
    assert.match(c.receivers.otlp.protocols.grpc.endpoint, /^0\.0\.0\.0:/);
    assert.match(c.receivers.otlp.protocols.http.endpoint, /^0\.0\.0\.0:/);
    assert.ok('batch' in c.processors);
    const tempoExporter = Object.keys(c.exporters).find((k) => k === 'otlp' || k.startsWith('otlp/'));
    assert.ok(tempoExporter, 'an otlp exporter');
    assert.equal(c.exporters[tempoExporter].endpoint, 'tempo:4317');
    assert.equal(c.exporters[tempoExporter].tls.insecure, true);
    assert.equal(c.exporters.prometheus.endpoint, '0.0.0.0:8889');
    assert.equal(c.exporters.prometheus.resource_to_telemetry_conversion.enabled, true);
    assert.ok('spanmetrics' in c.connectors);
    assert.ok(c.service.extensions.includes('health_check') && 'health_check' in c.extensions);

    const { traces, metrics } = c.service.pipelines;
    assert.deepEqual(traces.receivers, ['otlp']);
    assert.ok(traces.processors.includes('batch') && metrics.processors.includes('batch'));
    assert.ok(traces.exporters.includes(tempoExporter) && traces.exporters.includes('spanmetrics'));
    assert.ok(metrics.receivers.includes('otlp') && metrics.receivers.includes('spanmetrics'));
    assert.ok(metrics.exporters.includes('prometheus'));
    // every component a pipeline names is defined
    for (const [name, p] of Object.entries<Doc>(c.service.pipelines)) {
      for (const r of p.receivers)
        assert.ok(r in (c.receivers ?? {}) || r in (c.connectors ?? {}), `${name}: receiver ${r} undefined`);
      for (const x of p.processors ?? []) assert.ok(x in (c.processors ?? {}), `${name}: processor ${x} undefined`);
      for (const e of p.exporters)
        assert.ok(e in (c.exporters ?? {}) || e in (c.connectors ?? {}), `${name}: exporter ${e} undefined`);
    }
  });

  it('the processes send OTLP to the collector, and Prometheus keeps only span metrics from it', () => {
    const services = compose().services;
    for (const svc of [...GATEWAYS, ...PARTICIPANTS]) {
      const env = services[svc].environment;
      assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://otel-collector:4318', `${svc}`);
      assert.equal(env.OTEL_SERVICE_NAME, IDENTITY_OF[svc], `${svc}: named by its role`);
    }
    // the processes' own metrics are scraped directly; taking them from the collector as well
    // would double every sum()
    const job = yaml({ file: PROMETHEUS_YML }).scrape_configs.find((j: Doc) => j.job_name === 'otel-collector');
    const keep = (job.metric_relabel_configs ?? []).find((r: Doc) => r.action === 'keep');
    assert.ok(keep, 'otel-collector job keeps only the span metrics');
    const re = new RegExp(`^(?:${keep.regex})$`);
    assert.ok(re.test('traces_span_metrics_calls_total'));
    for (const m of EXPORTED) assert.ok(!re.test(m), `${m} would be scraped twice`);
  });

  it('Tempo: local storage under /var/tempo, OTLP gRPC in, metrics-generator writes to Prometheus', () => {
    const t = yaml({ file: TEMPO_YAML });
    assert.equal(t.storage.trace.backend, 'local');
    assert.match(t.storage.trace.local.path, /^\/var\/tempo\//);
    assert.match(t.storage.trace.wal.path, /^\/var\/tempo\//);
    assert.equal(port(t.distributor.receivers.otlp.protocols.grpc.endpoint), 4317);
    assert.deepEqual(
      t.metrics_generator.storage.remote_write.map((w: Doc) => w.url),
      ['http://prometheus:9090/api/v1/write'],
    );
    assert.deepEqual([...t.overrides.defaults.metrics_generator.processors].sort(), ['service-graphs', 'span-metrics']);
    const prom = compose().services.prometheus;
    assert.ok(
      (prom.command as string[]).includes('--web.enable-remote-write-receiver'),
      'Prometheus must accept remote write',
    );
    assert.ok((prom.command as string[]).includes('--enable-feature=exemplar-storage'));
    // The receiver shares Prometheus' one port: with no host port, only the compose network writes to it.
    assert.equal(prom.ports, undefined, 'Prometheus (and so its remote-write receiver) publishes no host port');
  });
});

describe('docker-compose.yml', () => {
  it('docker-compose accepts it (docker-compose config -q), with no profile and with each profile', () => {
    assertOk(
      run('docker-compose', ['-f', COMPOSE_YML, 'config', '-q']),
      'docker-compose -f docker-compose.yml config -q',
    );
    for (const profile of ['multi', 'replicas'])
      assertOk(
        run('docker-compose', ['-f', COMPOSE_YML, '--profile', profile, 'config', '-q']),
        `docker-compose -f docker-compose.yml --profile ${profile} config -q`,
      );
  });

  it('profile replicas: two replicas of each participant on its own PostgreSQL database, one gateway listing both', () => {
    const c = composeWith(['replicas']);
    const pgEnv = c.services.postgres.environment;
    const script = (c.services.postgres.volumes as string[]).find((v) => v.includes(':/docker-entrypoint-initdb.d/'));
    assert.ok(script, 'PostgreSQL makes the participants databases when its volume is new');
    const sql = fs.readFileSync(path.resolve(ROOT, 'deploy/postgres/participants.sql'), 'utf8');
    const gw = c.services['gateway-replicas'];
    assert.deepEqual(gw.profiles, ['replicas']);
    assert.equal(gw.depends_on.postgres.condition, 'service_healthy');
    for (const [name, port] of [
      ['order', 9090],
      ['inventory', 9092],
      ['payment', 9091],
    ] as const) {
      const env = `${name.toUpperCase()}_SERVICE_ADDR`;
      assert.match(sql, new RegExp(`CREATE DATABASE sagas_${name};`), `the ${name} database is made`);
      assert.equal(
        gw.environment[env],
        `${name}-1:${port},${name}-2:${port}`,
        `the gateway lists both ${name} replicas`,
      );
      for (const i of [1, 2]) {
        const r = c.services[`${name}-${i}`];
        assert.deepEqual(r.profiles, ['replicas'], `${name}-${i}`);
        assert.deepEqual(r.command, [name]);
        assert.equal(r.environment[env], `0.0.0.0:${port}`);
        assert.equal(
          r.environment[`${name.toUpperCase()}_DB_URL`],
          `postgres://${pgEnv.POSTGRES_USER}:${pgEnv.POSTGRES_PASSWORD}@postgres:5432/sagas_${name}`,
          `${name}-${i} on its participant's database, shared by both replicas`,
        );
        assert.equal(r.depends_on.postgres.condition, 'service_healthy');
        assert.equal(gw.depends_on[`${name}-${i}`].condition, 'service_healthy', `the gateway waits for ${name}-${i}`);
        assert.ok(!r.ports?.length, `${name}-${i} publishes no host port`);
        assert.ok(
          (r.volumes as string[]).some((v) => v.startsWith(`tls-${name}:`) && v.endsWith(':ro')),
          `${name}-${i} mounts its participant's identity read-only`,
        );
      }
    }
  });

  it('without a profile it runs what it always did: one gateway on its SQLite saga log', () => {
    const c = compose();
    const always = Object.entries<Doc>(c.services)
      .filter(([, s]) => !s.profiles?.length)
      .map(([name]) => name)
      .sort();
    assert.deepEqual(always, DEFAULT_SERVICES);
    for (const name of always) {
      for (const dep of Object.keys(c.services[name].depends_on ?? {}))
        assert.ok(always.includes(dep), `${name} depends on ${dep}, which only a profile starts`);
    }
    assert.equal(c.services.gateway.environment.SAGA_LOG_URL, undefined);
  });

  it('PostgreSQL (profile multi): postgres:15, pg_isready healthcheck, a named volume, no host port', () => {
    const c = compose();
    const pgs = c.services.postgres;
    assert.deepEqual(pgs.profiles, ['multi', 'replicas']);
    assert.match(pgs.image, /^postgres:15(\.|-|$)/);
    assert.ok((pgs.healthcheck.test as string[]).includes('pg_isready'), 'healthcheck runs pg_isready');
    const data = (pgs.volumes as string[]).find((v) => v.split(':')[1] === '/var/lib/postgresql/data');
    assert.ok(data, 'a volume at /var/lib/postgresql/data');
    assert.ok((data.split(':')[0] as string) in c.volumes, 'a named volume');
    for (const p of pgs.ports ?? []) {
      const ip =
        typeof p === 'object' ? p.host_ip : String(p).split(':').length === 3 ? String(p).split(':')[0] : undefined;
      assert.equal(ip, '127.0.0.1', 'PostgreSQL is published on loopback only, if at all');
    }
  });

  it('profile multi: gateway-1 and gateway-2 share the PostgreSQL saga log, once PostgreSQL is healthy', () => {
    const c = compose();
    const pgEnv = c.services.postgres.environment;
    const expectedUrl = `postgres://${pgEnv.POSTGRES_USER}:${pgEnv.POSTGRES_PASSWORD}@postgres:5432/${pgEnv.POSTGRES_DB}`;
    assert.equal(pgEnv.POSTGRES_DB, 'sagas');
    assert.equal(
      pgEnv.POSTGRES_PASSWORD,
      COMPOSE_SECRETS.POSTGRES_PASSWORD,
      'the password of POSTGRES_PASSWORD, in the server and in SAGA_LOG_URL',
    );
    const published = new Set<number>([8080]);
    const volumes = new Set<string>((c.services.gateway.volumes as string[]).map((v) => v.split(':')[0] as string));
    ['gateway-1', 'gateway-2'].forEach((name, i) => {
      const s = c.services[name];
      assert.deepEqual(s.profiles, ['multi'], name);
      assert.deepEqual(s.command, ['gateway'], name);
      assert.equal(path.resolve(s.build.context), path.resolve(ROOT), `${name} build context`);
      assert.equal(s.environment.SAGA_LOG_URL, expectedUrl, `${name} SAGA_LOG_URL`);
      assert.equal(s.environment.GATEWAY_INDEX, String(i), `${name} GATEWAY_INDEX`);
      assert.equal(s.depends_on.postgres.condition, 'service_healthy', `${name} waits for PostgreSQL`);
      for (const dep of ['order', 'inventory', 'payment', 'redis'])
        assert.equal(s.depends_on[dep].condition, 'service_healthy', `${name} → ${dep}`);
      for (const v of [
        'ORDER_SERVICE_ADDR',
        'PAYMENT_SERVICE_ADDR',
        'INVENTORY_SERVICE_ADDR',
        'HTTP_ADDR',
        'REDIS_URL',
        'DATA_DIR',
      ]) {
        assert.equal(s.environment[v], c.services.gateway.environment[v], `${name} ${v} as the gateway's`);
      }
      assert.ok(s.healthcheck?.test?.length, `${name} healthcheck`);
      for (const p of s.ports ?? []) {
        const host = Number(typeof p === 'object' ? p.published : String(p).split(':').at(-2));
        assert.ok(!published.has(host), `${name}: host port ${host} is taken`);
        published.add(host);
      }
      const data = (s.volumes as string[]).find((v) => v.split(':')[1] === '/data');
      assert.ok(data, `${name} mounts a volume at /data`);
      const vol = data.split(':')[0] as string;
      assert.ok(vol in c.volumes && !volumes.has(vol), `${name} has its own named data volume`);
      volumes.add(vol);
    });
  });

  it('runs the four processes from one build, each with its own data volume and a healthcheck', () => {
    const c = compose();
    const volumes = new Set<string>();
    for (const svc of ['gateway', 'order', 'inventory', 'payment']) {
      const s = c.services[svc];
      assert.ok(s.build, `${svc} is built from the Dockerfile`);
      assert.equal(path.resolve(s.build.context), path.resolve(ROOT), `${svc} build context`);
      assert.deepEqual(s.command, [svc]);
      assert.equal(s.environment.DATA_DIR, '/data');
      assert.equal(
        s.environment.REDIS_URL,
        `redis://:${COMPOSE_SECRETS.REDIS_PASSWORD}@redis:6379`,
        `${svc} authenticates to Redis`,
      );
      const data = (s.volumes as string[]).find((v) => v.split(':')[1] === '/data');
      assert.ok(data, `${svc} mounts a volume at /data`);
      const name = data.split(':')[0] as string;
      assert.ok(name in c.volumes, `${svc}: /data is a named volume`);
      assert.ok(!volumes.has(name), `${svc} shares its data volume`);
      volumes.add(name);
      assert.deepEqual(
        s.healthcheck?.test,
        ['CMD', 'node', 'bin/sagas.js', 'health'],
        `${svc}: the healthcheck asks its process's /readyz`,
      );
    }
    const gw = c.services.gateway;
    assert.equal(gw.environment.ORDER_SERVICE_ADDR, 'order:9090');
    assert.equal(gw.environment.PAYMENT_SERVICE_ADDR, 'payment:9091');
    assert.equal(gw.environment.INVENTORY_SERVICE_ADDR, 'inventory:9092');
    for (const [svc, v, p] of [
      ['order', 'ORDER_SERVICE_ADDR', 9090],
      ['payment', 'PAYMENT_SERVICE_ADDR', 9091],
      ['inventory', 'INVENTORY_SERVICE_ADDR', 9092],
    ] as const) {
      assert.equal(c.services[svc].environment[v], `0.0.0.0:${p}`);
      assert.equal(c.services[svc].ports, undefined, `${svc} publishes no host port`);
      assert.equal(gw.depends_on[svc].condition, 'service_healthy');
    }
    assert.equal(gw.depends_on.redis.condition, 'service_healthy');
  });

  it("publishes only the gateways (and the default one's admin listener) and Grafana, on 127.0.0.1 only; the participants publish nothing", () => {
    const c = composeWith(['multi']);
    const mappings = Object.entries<Doc>(c.services).flatMap(([name, s]) =>
      (s.ports ?? []).map((p: Doc) => ({ name, ...portMapping(p) })),
    );
    assert.deepEqual(mappings.map((m) => `${m.name}:${m.published}`).sort(), [
      'gateway-1:8081',
      'gateway-2:8082',
      'gateway-replicas:8083',
      'gateway:8080',
      'gateway:8090',
      'grafana:3000',
    ]);
    for (const m of mappings) assert.equal(m.hostIp, '127.0.0.1', `${m.name}:${m.published} is bound to loopback`);
    for (const svc of [...PARTICIPANTS, 'redis', 'postgres', 'prometheus', 'otel-collector', 'tempo']) {
      assert.equal(c.services[svc].ports, undefined, `${svc} publishes no host port`);
    }
    // the source too: a short form without an address would bind every interface
    const raw = yaml({ file: COMPOSE_YML }).services;
    for (const [name, s] of Object.entries<Doc>(raw))
      for (const p of s.ports ?? []) assert.match(String(p), /^127\.0\.0\.1:\d+:\d+$/, `${name}: ${p}`);
  });

  it("Grafana: anonymous visitors are Viewers; the admin's password comes from GRAFANA_ADMIN_PASSWORD", () => {
    const env = compose().services.grafana.environment;
    assert.equal(env.GF_AUTH_ANONYMOUS_ENABLED, 'true');
    assert.equal(env.GF_AUTH_ANONYMOUS_ORG_ROLE, 'Viewer');
    assert.notEqual(env.GF_AUTH_DISABLE_LOGIN_FORM, 'true', 'the admin can sign in');
    assert.equal(env.GF_SECURITY_ADMIN_PASSWORD, COMPOSE_SECRETS.GRAFANA_ADMIN_PASSWORD);
    const set = composeWith([], { GRAFANA_ADMIN_PASSWORD: 'gr4f-secret' }).services.grafana.environment;
    assert.equal(set.GF_SECURITY_ADMIN_PASSWORD, 'gr4f-secret');
    // Required, no default: no Grafana with a password everyone knows (review N12).
    assert.match(
      yaml({ file: COMPOSE_YML }).services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD,
      /^\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}$/,
    );
  });

  it('Redis requires a password (REDIS_PASSWORD), and every process authenticates with it', () => {
    for (const [password, c] of [
      [COMPOSE_SECRETS.REDIS_PASSWORD, composeWith(['multi'])],
      ['r3dis-S3cret', composeWith(['multi'], { REDIS_PASSWORD: 'r3dis-S3cret' })],
    ] as const) {
      const redis = c.services.redis;
      const cmd = redis.command as string[];
      assert.equal(cmd[0], 'redis-server');
      assert.equal(cmd[cmd.indexOf('--requirepass') + 1], password, 'redis-server --requirepass');
      assert.ok(cmd.includes('--requirepass'));
      assert.equal(redis.environment.REDISCLI_AUTH, password, "the healthcheck's redis-cli authenticates");
      assert.equal(redis.ports, undefined);
      const withRedis = Object.entries<Doc>(c.services).filter(([, s]) => s.depends_on?.redis);
      assert.deepEqual(withRedis.map(([n]) => n).sort(), [...GATEWAYS, ...PARTICIPANTS].sort());
      for (const [name, s] of withRedis)
        assert.equal(s.environment.REDIS_URL, `redis://:${password}@redis:6379`, `${name} REDIS_URL`);
    }
  });

  it('the secrets are required: without any one of them (unset or empty) compose refuses to run, naming it and the .env file', () => {
    for (const secret of Object.keys(COMPOSE_SECRETS) as ComposeSecret[]) {
      for (const r of [
        run('docker-compose', ['-f', COMPOSE_YML, 'config', '-q'], undefined, {}, [secret]),
        run('docker-compose', ['-f', COMPOSE_YML, 'config', '-q'], undefined, { [secret]: '' }),
      ]) {
        assert.notEqual(r.status, 0, `${secret} missing, yet accepted`);
        assert.match(
          r.stderr,
          new RegExp(`${secret} is required, set it in \\.env \\(see \\.env\\.example\\)`),
          r.stderr,
        );
      }
    }
    // .env.example names each, empty: copied unchanged, it is refused rather than run with a known password.
    const example = fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8');
    for (const secret of Object.keys(COMPOSE_SECRETS)) assert.match(example, new RegExp(`^${secret}=$`, 'm'), secret);
    const r = run(
      'docker-compose',
      ['-f', COMPOSE_YML, '--env-file', path.join(ROOT, '.env.example'), 'config', '-q'],
      undefined,
      {},
      Object.keys(COMPOSE_SECRETS) as ComposeSecret[],
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /is required, set it in \.env/);
    // Nothing of the old defaults is left.
    assert.doesNotMatch(
      fs.readFileSync(COMPOSE_YML, 'utf8'),
      /sagas-redis|:-admin\}|POSTGRES_PASSWORD: sagas|sagas:sagas@/,
    );
  });

  it('the admin listener leaves the container only with ADMIN_TOKENS: unset, it stays on loopback and the gateway starts', () => {
    const token = 'ops:operator:compose-check-0123456789';
    for (const [env, expected] of [
      [{}, '127.0.0.1:8081'],
      [{ ADMIN_TOKENS: token, ADMIN_ADDR: ':8081' }, ':8081'],
    ] as const) {
      const gw = composeWith([], env).services.gateway;
      assert.equal(gw.environment.ADMIN_ADDR, expected, JSON.stringify(env));
      // What the gateway makes of it: no ConfigError (a non-loopback ADMIN_ADDR needs tokens).
      const admin = gatewayConfig({
        ADMIN_ADDR: gw.environment.ADMIN_ADDR,
        ADMIN_TOKENS: gw.environment.ADMIN_TOKENS ?? '',
      }).admin;
      assert.deepEqual(
        admin.listen,
        expected === ':8081' ? { host: '0.0.0.0', port: 8081 } : { host: '127.0.0.1', port: 8081 },
      );
    }
  });

  it('mutual TLS: a one-shot "certs" issues each identity into its own volume; each process mounts only its own, read-only, and starts once it succeeded; no volume holds a CA key', () => {
    const c = composeWith(['multi']);
    const certs = c.services.certs;
    assert.deepEqual(certs.entrypoint, ['node', 'bin/sagas.js', 'certs']);
    assert.equal(certs.environment.TLS_DIR, '/tls');
    assert.equal(certs.restart, 'no');
    assert.equal(path.resolve(certs.build.context), path.resolve(ROOT), 'the app image');
    const identities = ['gateway', 'order', 'inventory', 'payment'];
    assert.deepEqual(
      [...(certs.volumes as string[])].sort(),
      identities.map((id) => `tls-${id}:/tls/${id}:rw`).sort(),
      'certs writes the four, and mounts nothing else (no CA folder)',
    );
    for (const id of identities) assert.ok(`tls-${id}` in c.volumes, `volume tls-${id}`);
    assert.equal(c.volumes.tls, undefined, 'the old shared volume is gone');
    for (const [name, s] of Object.entries<Doc>(c.services)) {
      if (name === 'certs') continue;
      const tls = ((s.volumes ?? []) as string[]).filter((v) => /^tls/.test(v) || /:\/tls(\/|:|$)/.test(v));
      const id = IDENTITY_OF[name];
      if (id === undefined) {
        assert.deepEqual(tls, [], `${name} mounts no identity`);
        continue;
      }
      assert.deepEqual(tls, [`tls-${id}:/tls/${id}:ro`], `${name} mounts its own identity only, read-only`);
      assert.equal(s.environment.TLS_DIR, '/tls', name);
      assert.equal(s.environment.GRPC_INSECURE, undefined, `${name}: mutual TLS`);
      assert.equal(s.depends_on.certs.condition, 'service_completed_successfully', `${name} starts after certs`);
    }
    const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    // The image makes the mount points, owned by the app's user and private: a new volume takes both.
    assert.match(dockerfile, /mkdir -p \/data \/tls\/gateway \/tls\/order \/tls\/inventory \/tls\/payment/);
    assert.match(dockerfile, /chown -R node:node \/data \/tls/);
    assert.match(dockerfile, /chmod 700 \/data \/tls \/tls\/gateway \/tls\/order \/tls\/inventory \/tls\/payment/);
  });

  it('every container is hardened: read-only root, no capabilities, no-new-privileges; only the one-shot chown runs as root, with its two capabilities', () => {
    const c = composeWith(['multi']);
    for (const [name, s] of Object.entries<Doc>(c.services)) {
      assert.equal(s.read_only, true, `${name}: read_only`);
      assert.deepEqual(s.cap_drop, ['ALL'], `${name}: cap_drop`);
      assert.ok(
        (s.security_opt as string[] | undefined)?.includes('no-new-privileges:true'),
        `${name}: no-new-privileges`,
      );
      if (name === 'tempo-init') {
        assert.equal(s.user, 'root');
        assert.deepEqual(s.cap_add, ['CHOWN', 'DAC_READ_SEARCH']);
      } else {
        assert.equal(s.cap_add, undefined, `${name}: no capability added`);
        assert.ok(s.user === undefined || !/^(root|0)(:|$)/.test(String(s.user)), `${name} is not run as root`);
      }
    }
    // Images whose default user is root are run as their own unprivileged user.
    assert.equal(c.services.redis.user, 'redis');
    assert.equal(c.services.postgres.user, 'postgres');
    // Where a process writes outside its volumes, a tmpfs.
    assert.ok((c.services.postgres.tmpfs as string[]).includes('/var/run/postgresql'));
    assert.ok((c.services.grafana.tmpfs as string[]).includes('/var/lib/grafana'));
    assert.equal(
      c.services.grafana.environment.GF_LOG_MODE,
      'console',
      'Grafana writes no log file on its read-only root',
    );
  });

  it('every bind-mounted file exists', () => {
    const c = compose();
    for (const [name, s] of Object.entries<Doc>(c.services)) {
      for (const v of (s.volumes ?? []) as string[]) {
        const src = v.split(':')[0] as string;
        if (path.isAbsolute(src)) assert.ok(fs.existsSync(src), `${name}: ${src} does not exist`);
      }
    }
  });

  it('the Dockerfile starts a process chosen by the compose command', () => {
    const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^ENTRYPOINT \["node", "bin\/sagas\.js", "start"\]$/m);
    assert.match(dockerfile, /^USER node$/m);
    assert.match(
      dockerfile,
      /^HEALTHCHECK .*CMD \["node", "bin\/sagas\.js", "health"\]$/m,
      'ready, not only alive: sagas health',
    );
    const ignored = fs
      .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    for (const p of ['node_modules', 'data', '.git']) assert.ok(ignored.includes(p), `.dockerignore: ${p}`);
  });
});
