/**
 * The path-normalization attack table every inbound adapter is tested
 * against (issue #21, Istio's CVE-2021-31920 class): for each
 * `meshConfig.pathNormalization.normalization` option and each policy, what
 * an Istio sidecar answers and which path it forwards to the app. The
 * expected paths are Istio's documented results (istio.io
 * reference/config/security/normalization, and normalization_test.go —
 * see test/fixtures/istio/path-normalization.ts), written out by hand, not
 * computed by meshlet's normalizer. Plus raw HTTP/1.1 and HTTP/2 clients that
 * send a path exactly as given (node's http.request and undici would not).
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { connect as http2Connect } from 'node:http2';

export type Option = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';
export const OPTIONS: readonly Option[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

/** A status and, when the app answered, the URL it saw; `seen` undefined means the app must not run. */
export interface Outcome { status: number; seen?: string }
type PerOption = Record<Option, Outcome>;

const ok = (seen: string): Outcome => ({ status: 200, seen });
const denied: Outcome = { status: 403 };
const bad: Outcome = { status: 400 };
const all = (o: Outcome): PerOption => ({ NONE: o, BASE: o, MERGE_SLASHES: o, DECODE_AND_MERGE_SLASHES: o });
/** NONE forwards the raw path (and the policy misses it); the normalizing options deny it. */
const rawUnderNone = (raw: string): PerOption => ({ NONE: ok(raw), BASE: denied, MERGE_SLASHES: denied, DECODE_AND_MERGE_SLASHES: denied });

/** One policy scenario: the AuthorizationPolicy and the table of paths under it. */
export interface Scenario {
  name: string;
  /** the `rules` / `action` part of the policy spec (YAML flow) */
  spec: string;
  cases: ReadonlyArray<{ path: string; expect: PerOption }>;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'DENY paths [/admin, /admin/*]',
    spec: '{ action: DENY, rules: [{ to: [{ operation: { paths: ["/admin", "/admin/*"] } }] }] }',
    cases: [
      { path: '/admin', expect: all(denied) },
      { path: '/admin/users?id=1', expect: all(denied) },
      { path: '/./admin', expect: rawUnderNone('/./admin') },
      { path: '/public/../admin', expect: rawUnderNone('/public/../admin') },
      { path: '/%2e/admin', expect: rawUnderNone('/%2e/admin') },
      { path: '/%2E%2E/admin', expect: rawUnderNone('/%2E%2E/admin') },
      { path: '/%61dmin', expect: rawUnderNone('/%61dmin') },
      // `\` → `/` under BASE, but only MERGE_SLASHES folds the `//` it leaves (Istio: BASE is open to CVE-2021-31920).
      { path: '/\\admin', expect: { NONE: ok('/\\admin'), BASE: ok('//admin'), MERGE_SLASHES: denied, DECODE_AND_MERGE_SLASHES: denied } },
      { path: '//admin', expect: { NONE: ok('//admin'), BASE: ok('//admin'), MERGE_SLASHES: denied, DECODE_AND_MERGE_SLASHES: denied } },
      { path: '/admin%2fusers', expect: { NONE: ok('/admin%2fusers'), BASE: ok('/admin%2fusers'), MERGE_SLASHES: ok('/admin%2fusers'), DECODE_AND_MERGE_SLASHES: denied } },
      { path: '/%5cadmin', expect: { NONE: ok('/%5cadmin'), BASE: ok('/%5cadmin'), MERGE_SLASHES: ok('/%5cadmin'), DECODE_AND_MERGE_SLASHES: denied } },
      // %00: refused whenever normalize_path is on; NONE is Envoy with normalize_path false.
      { path: '/admin%00', expect: { NONE: ok('/admin%00'), BASE: bad, MERGE_SLASHES: bad, DECODE_AND_MERGE_SLASHES: bad } },
      { path: '/x%00', expect: { NONE: ok('/x%00'), BASE: bad, MERGE_SLASHES: bad, DECODE_AND_MERGE_SLASHES: bad } },
      { path: '/admin#frag', expect: all(denied) },
      { path: 'http://evil.example/admin', expect: all(denied) },
      { path: '/ADMIN', expect: all(ok('/ADMIN')) },
      { path: '/..;/admin', expect: all(ok('/..;/admin')) },
      { path: '/public/./x?q=/../admin', expect: { NONE: ok('/public/./x?q=/../admin'), BASE: ok('/public/x?q=/../admin'), MERGE_SLASHES: ok('/public/x?q=/../admin'), DECODE_AND_MERGE_SLASHES: ok('/public/x?q=/../admin') } },
      { path: '/app//../admin', expect: { NONE: ok('/app//../admin'), BASE: ok('/app/admin'), MERGE_SLASHES: ok('/app/admin'), DECODE_AND_MERGE_SLASHES: ok('/app/admin') } },
    ],
  },
  {
    name: 'ALLOW paths [/public*]',
    spec: '{ action: ALLOW, rules: [{ to: [{ operation: { paths: ["/public*"] } }] }] }',
    cases: [
      { path: '/public/x', expect: all(ok('/public/x')) },
      // NONE lets the raw path through the ALLOW rule — and the app may resolve it to /admin.
      { path: '/public/../admin', expect: rawUnderNone('/public/../admin') },
      { path: '/public/%2e%2e/admin', expect: rawUnderNone('/public/%2e%2e/admin') },
      { path: '/%70ublic/x', expect: { NONE: denied, BASE: ok('/public/x'), MERGE_SLASHES: ok('/public/x'), DECODE_AND_MERGE_SLASHES: ok('/public/x') } },
      { path: '/public%2f..%2fadmin', expect: { NONE: ok('/public%2f..%2fadmin'), BASE: ok('/public%2f..%2fadmin'), MERGE_SLASHES: ok('/public%2f..%2fadmin'), DECODE_AND_MERGE_SLASHES: denied } },
      { path: '/admin', expect: all(denied) },
    ],
  },
  {
    name: 'DENY notPaths [/public*]',
    spec: '{ action: DENY, rules: [{ to: [{ operation: { notPaths: ["/public*"] } }] }] }',
    cases: [
      { path: '/public/x?y=1', expect: all(ok('/public/x?y=1')) },
      { path: '/public/../admin', expect: rawUnderNone('/public/../admin') },
      { path: '/%70ublic/x', expect: { NONE: denied, BASE: ok('/public/x'), MERGE_SLASHES: ok('/public/x'), DECODE_AND_MERGE_SLASHES: ok('/public/x') } },
      { path: '/admin', expect: all(denied) },
    ],
  },
];

/** The AuthorizationPolicy document of a scenario for workload `app` (labels `{ app }`), in `default`. */
export function policyDoc(scenario: Scenario, labels: string): string {
  return `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: paths, namespace: default }
spec: ${scenario.spec.replace(/^\{/, `{ selector: { matchLabels: ${labels} },`)}
`;
}

/** Istio's way of setting the option: the `istio` ConfigMap in `istio-system`. */
export function meshConfigMap(option: Option): string {
  return `
apiVersion: v1
kind: ConfigMap
metadata: { name: istio, namespace: istio-system }
data:
  mesh: |
    pathNormalization:
      normalization: ${option}
`;
}

/** A raw HTTP/1.1 response: status line code, headers (lower-case), body. */
export interface RawResponse { status: number; headers: Record<string, string>; body: string }

/** Sends `method target HTTP/1.1` byte for byte (latin1) and reads the response until the server closes. */
export function rawHttp1(port: number, target: string, options: { method?: string; host?: string; headers?: ReadonlyArray<[string, string]> } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const extra = (options.headers ?? []).map(([n, v]) => `${n}: ${v}\r\n`).join('');
    const socket = netConnect(port, '127.0.0.1', () => {
      socket.write(`${options.method ?? 'GET'} ${target} HTTP/1.1\r\nHost: ${options.host ?? 'localhost'}\r\n${extra}Connection: close\r\n\r\n`, 'latin1');
    });
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = text.slice(0, split).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      let body = text.slice(split + 4);
      if (headers['transfer-encoding'] === 'chunked') body = unchunk(body);
      resolve({ status: Number(head[0]!.split(' ')[1]), headers, body });
    });
  });
}

function unchunk(text: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const eol = text.indexOf('\r\n', i);
    const size = parseInt(text.slice(i, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
}

/** One h2c request with `:path` exactly as given (node's http2 client sends it unchanged). */
export async function rawHttp2(port: number, path: string, method = 'GET'): Promise<RawResponse> {
  const session = http2Connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      session.once('error', reject);
      const req = session.request({ ':path': path, ':method': method });
      let status = 0;
      const headers: Record<string, string> = {};
      req.on('response', (h) => {
        status = Number(h[':status']);
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(':')) headers[k] = String(v);
      });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => { body += d; });
      req.on('end', () => resolve({ status, headers, body }));
      req.on('error', reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

/** An adapter under test: how to give it config, send it a raw path, and count the app's calls. */
export interface AdapterUnderTest {
  apply(config: string): Promise<void>;
  send(path: string): Promise<RawResponse>;
  /** How many requests reached the app (the handler, or the gateway's upstream). */
  appCalls(): number;
}

/**
 * Runs every scenario of {@link SCENARIOS} under `option`: for each path,
 * the status the sidecar would answer and, when the app answers (its body
 * is the URL it saw), that URL; when the sidecar would refuse, that the app
 * never ran. `extra` is config applied with each policy (e.g. the ConfigMap);
 * `sendable` skips paths the protocol cannot carry.
 */
export async function checkTable(option: Option, adapter: AdapterUnderTest, labels: string, extra = '', sendable: (path: string) => boolean = () => true): Promise<number> {
  let checked = 0;
  for (const scenario of SCENARIOS) {
    await adapter.apply([extra, policyDoc(scenario, labels)].filter((d) => d.trim() !== '').join('\n---\n'));
    for (const c of scenario.cases) {
      if (!sendable(c.path)) continue;
      const want = c.expect[option];
      const before = adapter.appCalls();
      const res = await adapter.send(c.path);
      const where = `${option} / ${scenario.name} / ${c.path}`;
      assert.equal(res.status, want.status, `${where}: status (body ${JSON.stringify(res.body)})`);
      if (want.seen !== undefined) assert.equal(res.body, want.seen, `${where}: the URL the app saw`);
      else assert.equal(adapter.appCalls(), before, `${where}: the app must not run`);
      if (want.status === 400) assert.equal(res.headers['x-meshlet-flags'], 'DPE', `${where}: flag`);
      checked++;
    }
  }
  return checked;
}

/** What an HTTP/2 `:path` can carry: nghttp2 refuses a fragment and anything that is not origin-form. */
export const h2Sendable = (path: string): boolean => path.startsWith('/') && !path.includes('#');
