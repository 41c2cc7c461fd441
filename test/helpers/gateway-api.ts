/**
 * Loopback stand-ins for the Kubernetes objects Gateway API tests assume:
 * echo "pods" (HTTP servers on 127.0.0.1 that answer with their name, the
 * request path, method and headers, as the conformance suite's echo server
 * does) and "Services" (ServiceEntries selecting WorkloadEntries by label,
 * the way a Service selects pods — how a versioned backend such as
 * `reviews-v1` is expressed without a DestinationRule subset).
 */
import { startServer, type TestServer } from './http-servers.js';

/** What an echo pod answers (JSON). */
export interface EchoReply {
  pod: string;
  namespace: string;
  path: string;
  method: string;
  headers: Record<string, string | undefined>;
}

/** An echo pod: a loopback server and the labels its WorkloadEntry carries. */
export interface EchoPod {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly server: TestServer;
  /** the request paths (with query) it has seen, oldest first: how a test sees a mirrored request arrive */
  readonly seen: string[];
}

/** A Go duration as the suite's `?delay=` writes it ("1s", "500ms"), in ms. */
const goDurationMs = (d: string) => {
  const m = /^(\d+)(ms|s)$/.exec(d);
  return m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : 0;
};

/** Starts an echo pod. */
export async function startEchoPod(name: string, namespace: string, labels: Record<string, string>): Promise<EchoPod> {
  const seen: string[] = [];
  const attempts = new Map<string, number>();
  const server = await startServer(name, (req, res) => {
    seen.push(req.url ?? '');
    // The suite's retry simulation: `?responseCode=500&succeedAfter=2&uuid=…` fails the first 2 requests of that uuid.
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const uuid = query.get('uuid');
    if (uuid && query.has('responseCode')) {
      const n = (attempts.get(uuid) ?? 0) + 1;
      attempts.set(uuid, n);
      if (n <= Number(query.get('succeedAfter') ?? 0)) {
        res.statusCode = Number(query.get('responseCode'));
        res.end();
        return;
      }
    }
    // Repeated headers joined with "," as the conformance suite compares them (Go's header values, joined).
    const headers = Object.fromEntries(Object.entries(req.headersDistinct).map(([k, v]) => [k, v?.join(',')]));
    const reply: EchoReply = { pod: name, namespace, path: req.url ?? '', method: req.method ?? '', headers };
    // The suite's echo server sets the response headers named in X-Echo-Set-Header ("Name:value,Name:value").
    for (const pair of String(req.headers['x-echo-set-header'] ?? '').split(',').filter(Boolean)) {
      const at = pair.indexOf(':');
      if (at > 0) res.setHeader(pair.slice(0, at), pair.slice(at + 1));
    }
    res.setHeader('content-type', 'application/json');
    // `?delay=1s` answers late, as the suite's echo server does (the timeout cases).
    const delay = goDurationMs(query.get('delay') ?? '');
    if (delay > 0) setTimeout(() => res.end(JSON.stringify(reply)), delay);
    else res.end(JSON.stringify(reply));
  });
  return { name, namespace, labels, server, seen };
}

/** A Service: name, namespace, ports (name, port, targetPort-less: pods listen on one port) and its selector. */
export interface ServiceSpec {
  readonly name: string;
  readonly namespace: string;
  readonly ports: ReadonlyArray<{ name: string; port: number }>;
  readonly selector: Record<string, string>;
}

const yamlMap = (m: Record<string, string | number>) => `{ ${Object.entries(m).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')} }`;

/** ServiceEntries for the Services and WorkloadEntries for the pods, as one YAML stream. */
export function registryYaml(services: readonly ServiceSpec[], pods: readonly EchoPod[]): string {
  const docs: string[] = [];
  for (const s of services) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${s.name}, namespace: ${s.namespace} }
spec:
  hosts: [${s.name}.${s.namespace}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [${s.ports.map((p) => `{ number: ${p.port}, name: ${p.name}, protocol: HTTP }`).join(', ')}]
  workloadSelector: { labels: ${yamlMap(s.selector)} }
`);
  }
  for (const p of pods) {
    const ports = Object.fromEntries(services.flatMap((s) => s.ports.map((port) => [port.name, p.server.port])));
    docs.push(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${p.name}, namespace: ${p.namespace} }
spec:
  address: 127.0.0.1
  labels: ${yamlMap(p.labels)}
  ports: ${yamlMap(ports)}
`);
  }
  return docs.join('---\n');
}

/**
 * The Kubernetes Services of a manifest (e.g. Istio's bookinfo-versions.yaml)
 * as {@link ServiceSpec}s, so a test builds its ServiceEntries from the
 * real file.
 */
export function servicesOf(yamlDocs: readonly object[], namespace = 'default'): ServiceSpec[] {
  const out: ServiceSpec[] = [];
  for (const doc of yamlDocs as Array<{ apiVersion?: string; kind?: string; metadata?: { name: string; namespace?: string }; spec?: { ports?: Array<{ name?: string; port: number }>; selector?: Record<string, string> } }>) {
    if (doc.apiVersion !== 'v1' || doc.kind !== 'Service' || !doc.metadata) continue;
    out.push({
      name: doc.metadata.name,
      namespace: doc.metadata.namespace ?? namespace,
      ports: (doc.spec?.ports ?? []).map((p) => ({ name: p.name ?? `port-${p.port}`, port: p.port })),
      selector: doc.spec?.selector ?? {},
    });
  }
  return out;
}
