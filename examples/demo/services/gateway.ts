/**
 * The ingress gateway: the one port the browser talks to, run by meshlet's
 * own `createGateway` (meshlet/gateway). Its routes are the seed's Gateway +
 * VirtualService bound to it (topology.ts GATEWAY_CONFIG: port 80 →
 * client:8080; `/console/…`, `/metrics` and `/api/scenarios` → the demo
 * console). Scenario 07's global rate limit is a RateLimit with `host: "*"`,
 * which attaches to the gateway's `*:80` virtual host.
 *
 * Why embedded mode: the control plane translates per namespace for a
 * sidecar without labels, so it does not serve Gateway listeners to a proxy
 * whose labels the Gateway selects yet. The demo writes the same YAML to
 * the control plane and to this gateway (`POST /security` on the admin port
 * applies the whole config here: `mesh.apply`), so the two never disagree.
 *
 * Env: PORT (PORT_FALLBACK=1: a free port when taken), DEMO_CONFIG (the
 * first config), DEMO_CA.
 */
import { createGateway, type Gateway } from '../../../src/gateway/index.js';
import { exitOnSignal, portFromEnv, reportReady } from './runtime.js';
import { attachAdmin, workloadMeshOptions } from './workload.js';

const { xds: _xds, ...options } = {
  xds: undefined,
  ...workloadMeshOptions({ name: 'istio-ingressgateway', labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' }, serviceAccount: 'istio-ingressgateway' }),
  config: process.env.DEMO_CONFIG ?? '',
};

/** Starts the gateway serving the Gateway's port 80 on `port`; a taken fixed port falls back to a free one. */
async function start(port: number, fallback: boolean): Promise<Gateway> {
  try {
    return await createGateway({ ...options, port, serverPort: 80, drainTimeout: 500 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && fallback && port !== 0) return start(0, false);
    throw err;
  }
}

const gateway = await start(portFromEnv(), process.env.PORT_FALLBACK === '1');
// The demo's config switch: the whole config (routes, rate limits, security) into the gateway's mesh.
const admin = await attachAdmin(gateway.mesh, { '/security': (_query, yaml) => gateway.mesh.apply(yaml) });
reportReady('istio-ingressgateway', gateway.port, admin.adminPort);
exitOnSignal(async () => {
  await Promise.all([admin.close(), gateway.close()]);
  await options.tracerProvider.shutdown();
});
