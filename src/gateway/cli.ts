/**
 * `meshlet gateway --config <dir|file> --port 8080` (or `--xds <host:port>`):
 * runs an ingress gateway until SIGTERM/SIGINT, then drains in-flight
 * requests and exits. src/cli/main.ts dispatches the `gateway` subcommand here.
 */
import { parseArgs } from 'node:util';
import { createGateway, type Gateway, type GatewayOptions } from './gateway.js';
import type { ForwardClientCertDetails } from './sanitize.js';

const USAGE = `usage: meshlet gateway (--config <dir|file> | --xds <host:port>) [--port 8080] [--host 127.0.0.1]
                      [--server-port <Gateway server port>] [--name istio-ingressgateway] [--namespace default]
                      [--label key=value …] [--drain-timeout 5000]
                      [--num-trusted-proxies 0] [--forward-client-cert-details SANITIZE_SET]
                      [--internal-address <cidr> …] [--preserve-external-request-id]`;

/** What {@link runGatewayCli} needs from its process; tests pass their own. */
export interface GatewayCliIo {
  log(line: string): void;
  /** Registers a shutdown signal handler; returns its removal. */
  onSignal(signal: 'SIGTERM' | 'SIGINT', handler: () => void): () => void;
}

const processIo: GatewayCliIo = {
  log: (line) => process.stdout.write(`${line}\n`),
  onSignal: (signal, handler) => {
    process.once(signal, handler);
    return () => process.off(signal, handler);
  },
};

/**
 * Parses `argv` (the arguments after `gateway`), starts the gateway and drains
 * it on SIGTERM/SIGINT. Resolves to the running gateway; its `close()` is the
 * same drain the signals trigger. Throws with the usage text on bad arguments.
 */
export async function runGatewayCli(argv: readonly string[], io: GatewayCliIo = processIo): Promise<Gateway> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', short: 'c' },
        xds: { type: 'string' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        'server-port': { type: 'string' },
        name: { type: 'string' },
        namespace: { type: 'string' },
        label: { type: 'string', multiple: true },
        'drain-timeout': { type: 'string' },
        'num-trusted-proxies': { type: 'string' },
        'forward-client-cert-details': { type: 'string' },
        'internal-address': { type: 'string', multiple: true },
        'preserve-external-request-id': { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
  if (!values.config && !values.xds) throw new Error(`one of --config or --xds is required\n${USAGE}`);
  const options: GatewayOptions = {
    ...(values.config !== undefined && { config: values.config }),
    ...(values.xds !== undefined && { xds: { server: values.xds } as GatewayOptions['xds'] }),
    ...(values.port !== undefined && { port: portNumber(values.port, '--port') }),
    ...(values.host !== undefined && { host: values.host }),
    ...(values['server-port'] !== undefined && { serverPort: portNumber(values['server-port'], '--server-port') }),
    ...(values['drain-timeout'] !== undefined && { drainTimeout: portNumber(values['drain-timeout'], '--drain-timeout', Infinity) }),
    // Istio's gatewayTopology and Envoy's internal_address_config; createGateway validates the values.
    ...((values['num-trusted-proxies'] !== undefined || values['forward-client-cert-details'] !== undefined) && {
      gatewayTopology: {
        ...(values['num-trusted-proxies'] !== undefined && { numTrustedProxies: portNumber(values['num-trusted-proxies'], '--num-trusted-proxies', 0xffffffff) }),
        ...(values['forward-client-cert-details'] !== undefined && { forwardClientCertDetails: values['forward-client-cert-details'] as ForwardClientCertDetails }),
      },
    }),
    ...(values['internal-address'] !== undefined && { internalAddresses: values['internal-address'] }),
    ...(values['preserve-external-request-id'] && { preserveExternalRequestId: true }),
  };
  if (values.name || values.namespace || values.label) {
    options.workload = {
      name: values.name ?? 'istio-ingressgateway',
      namespace: values.namespace ?? 'default',
      ...(values.label && { labels: Object.fromEntries(values.label.map((kv) => splitLabel(kv))) }),
    };
  }
  const gateway = await createGateway(options);
  const stop = (): void => {
    io.log('meshlet gateway: draining');
    void gateway.close().then(() => io.log('meshlet gateway: stopped'));
  };
  const removers = [io.onSignal('SIGTERM', stop), io.onSignal('SIGINT', stop)];
  io.log(`meshlet gateway listening on ${gateway.protocol}://${options.host ?? '127.0.0.1'}:${gateway.port}`);
  return {
    port: gateway.port,
    mesh: gateway.mesh,
    protocol: gateway.protocol,
    get inFlight() {
      return gateway.inFlight;
    },
    close: async () => {
      for (const remove of removers) remove();
      await gateway.close();
    },
  };
}

function portNumber(text: string, flag: string, max = 65535): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`${flag}: expected a number, got "${text}"\n${USAGE}`);
  return n;
}

function splitLabel(kv: string): [string, string] {
  const i = kv.indexOf('=');
  if (i <= 0) throw new Error(`--label: expected key=value, got "${kv}"\n${USAGE}`);
  return [kv.slice(0, i), kv.slice(i + 1)];
}
