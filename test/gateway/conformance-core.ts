/**
 * Shared by the core (Gateway-profile) conformance replays in this folder:
 * the suite's fixtures (kubernetes-sigs/gateway-api 4564255ac2c35d582249b3cdf261bdf51c8bca32,
 * conformance/tests/*.yaml and conformance/base/manifests.yaml, copied under
 * test/fixtures/gateway-api/conformance/core/), loopback echo pods for
 * infra-backend-v1/v2/v3 and web-backend, and one case's request → expected
 * backend/request/response check through a meshlet gateway.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';
import type { Gateway } from '../../src/gateway/index.js';
import { seededRandom } from '../../src/index.js';
import { registryYaml, startEchoPod, type EchoPod, type EchoReply } from '../helpers/gateway-api.js';
import { call, startGateway } from './helpers.js';

export const NS = 'gateway-conformance-infra';
export const WEB_NS = 'gateway-conformance-web-backend';
export const APP_NS = 'gateway-conformance-app-backend';
/** The Gateways a fixture declares, with the class placeholder filled in. */
export const withClass = (yaml: string) => yaml.replaceAll('{GATEWAY_CLASS_NAME}', 'istio');
export const fixture = (f: string) => readFileSync(new URL(`../fixtures/gateway-api/conformance/core/${f}`, import.meta.url), 'utf8');
export const v = (n: number) => `infra-backend-v${n}`;

/** One object of the suite's base/manifests.yaml (e.g. the Gateway `same-namespace`), as YAML, of class istio. */
export function baseObject(kind: string, name: string): string {
  const docs = parseAllDocuments(fixture('base-manifests.yaml')).map((d) => d.toJS() as { kind?: string; metadata?: { name?: string } }).filter(Boolean);
  return withClass(stringify(docs.find((d) => d.kind === kind && d.metadata?.name === name)!));
}
export const sameNamespaceGateway = () => baseObject('Gateway', 'same-namespace');

export interface Case {
  go: string; path: string; host?: string; method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD'; headers?: Record<string, string>; backend?: string; status?: number;
  /** headers the echo pod is asked to answer with (the suite's BackendSetResponseHeaders) */
  backendSet?: Record<string, string>;
  /** expected: what the backend saw (ExpectedRequest) */
  upstreamPath?: string; upstreamHost?: string; upstreamHeaders?: Record<string, string>; upstreamAbsent?: readonly string[];
  responseHeaders?: Record<string, string>; responseAbsent?: readonly string[];
  /** expected redirect: the Location's parts (omitted parts are not checked) */
  redirect?: { scheme?: string; host?: string; port?: string; path?: string };
}

/** A response header as the suite compares it: repeated values joined with ",". */
const joined = (val: string | string[] | undefined) => (Array.isArray(val) ? val.join(',') : val);

/** The suite's infra pods (and web-backend, app-backend-v1/v2 in their own namespaces) and the ServiceEntries/WorkloadEntries that name them. */
export async function startInfra(): Promise<{ pods: EchoPod[]; registry: string }> {
  const pods: EchoPod[] = [];
  for (const n of [1, 2, 3]) pods.push(await startEchoPod(`${v(n)}-0`, NS, { app: v(n) }));
  pods.push(await startEchoPod('web-backend-0', WEB_NS, { app: 'web-backend' }));
  for (const n of [1, 2]) pods.push(await startEchoPod(`app-backend-v${n}-0`, APP_NS, { app: `app-backend-v${n}` }));
  const service = (name: string, namespace: string) => ({ name, namespace, ports: [{ name: 'http', port: 8080 }], selector: { app: name } });
  const registry = registryYaml([...[1, 2, 3].map((n) => service(v(n), NS)), service('web-backend', WEB_NS), ...[1, 2].map((n) => service(`app-backend-v${n}`, APP_NS))], pods);
  return { pods, registry };
}

/** A gateway for the fixture, deployed as the named Gateway (its Gateway from base/manifests.yaml unless the fixture declares it). */
export async function startFor(registry: string, file: string, gateway = 'same-namespace', manifest = withClass(fixture(file)), serverPort = 80): Promise<Gateway> {
  // The gateway's random source is seeded so the weight case sees the same split every run.
  const base = ['same-namespace', 'backend-namespaces', 'all-namespaces'].includes(gateway) ? `${baseObject('Gateway', gateway)}---\n` : '';
  return startGateway(`${registry}---\n${base}${manifest}`, {
    workload: { name: `${gateway}-istio`, namespace: NS, labels: { 'gateway.networking.k8s.io/gateway-name': gateway } }, random: seededRandom(18), serverPort,
  });
}

/** One request through the gateway and the suite's checks of its answer. */
export async function check(gw: Gateway, c: Case): Promise<void> {
  const headers = { ...c.headers, ...(c.backendSet && { 'X-Echo-Set-Header': Object.entries(c.backendSet).map(([k, val]) => `${k}:${val}`).join(',') }) };
  const res = await call(gw, c.host ?? 'example.com', c.path, { method: (c.method ?? 'GET') as 'GET', headers });
  const what = `${c.go}: ${c.method ?? 'GET'} ${c.host ?? ''}${c.path}`;
  assert.equal(res.status, c.status ?? (c.redirect ? 302 : 200), `${what}: ${res.body}`);
  if (c.redirect) {
    const location = new URL(String(res.headers.location));
    if (c.redirect.scheme) assert.equal(location.protocol, `${c.redirect.scheme}:`, `${what}: scheme`);
    if (c.redirect.host) assert.equal(location.hostname, c.redirect.host, `${what}: host`);
    if (c.redirect.port !== undefined) assert.equal(location.port, c.redirect.port, `${what}: port`);
    if (c.redirect.path) assert.equal(location.pathname, c.redirect.path, `${what}: path`);
  }
  for (const [k, val] of Object.entries(c.responseHeaders ?? {})) assert.equal(joined(res.headers[k.toLowerCase()]), val, `${what}: response header ${k}`);
  for (const k of c.responseAbsent ?? []) assert.equal(res.headers[k.toLowerCase()], undefined, `${what}: response header ${k} absent`);
  if (!c.backend) return;
  const reply = JSON.parse(res.body) as EchoReply;
  assert.ok(reply.pod.startsWith(c.backend), `${what}: backend ${reply.pod}, expected ${c.backend}`);
  if (c.upstreamPath) assert.equal(reply.path, c.upstreamPath, `${what}: upstream path`);
  if (c.upstreamHost) assert.equal(reply.headers.host, c.upstreamHost, `${what}: upstream host`);
  for (const [k, val] of Object.entries(c.upstreamHeaders ?? {})) assert.equal(reply.headers[k.toLowerCase()], val, `${what}: upstream header ${k}`);
  for (const k of c.upstreamAbsent ?? []) assert.equal(reply.headers[k.toLowerCase()], undefined, `${what}: upstream header ${k} absent`);
}

/** Route conditions expected of a route, by its name: [type, status, reason]. */
export type Conditions = Record<string, ReadonlyArray<readonly [string, string, string]>>;

/** Which Gateway the gateway is deployed as, the manifest if not the fixture as it is, the Gateway port it serves, the conditions expected. */
export interface ReplayOptions { gateway?: string; manifest?: string; serverPort?: number; conditions?: Conditions }

/**
 * Loads the fixture, checks every HTTPRoute is Accepted except those given
 * `conditions` (which must carry each listed condition), and replays the cases.
 */
export async function replay(registry: string, file: string, cases: readonly Case[], opts: ReplayOptions = {}): Promise<void> {
  const gw = await startFor(registry, file, opts.gateway, opts.manifest, opts.serverPort);
  try {
    const all = gw.mesh.configStatus().filter((s) => s.kind === 'HTTPRoute');
    const routes = all.filter((s) => !opts.conditions?.[s.name]);
    assert.ok(routes.every((s) => s.conditions?.some((c) => c.type === 'Accepted' && c.status === 'True')), JSON.stringify(routes));
    for (const [name, expected] of Object.entries(opts.conditions ?? {})) {
      const got = all.find((s) => s.name === name)?.conditions?.map((c) => [c.type, c.status, c.reason]) ?? [];
      for (const e of expected) assert.ok(got.some((g) => g.join() === e.join()), `${file}: ${name} has ${e.join()}: ${JSON.stringify(got)}`);
    }
    for (const c of cases) await check(gw, c);
  } finally {
    await gw.close();
  }
}
