/**
 * The `meshlet` command's help texts: one table of commands and, per
 * command, its options. Columns are laid out by {@link table} so they line
 * up however long a name is.
 */

/** One option of a command: the flag with its value, and what it does. */
export interface OptionHelp {
  flag: string;
  text: string;
}

/** One subcommand's help. */
export interface CommandHelp {
  name: string;
  /** One line for the command table. */
  summary: string;
  /** The synopsis after `meshlet <name>`. */
  synopsis: string;
  options: OptionHelp[];
  /** Lines printed after the options. */
  notes?: string[];
}

/** Two columns, the first padded to its longest cell plus two spaces; continuation lines indented to match. */
export function table(rows: ReadonlyArray<readonly [string, string]>, indent = '  '): string {
  const width = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => {
    const [first, ...more] = b.split('\n');
    return [`${indent}${a.padEnd(width)}  ${first}`, ...more.map((line) => `${indent}${' '.repeat(width)}  ${line}`)].join('\n');
  }).join('\n');
}

const help = (flag: string, text: string): OptionHelp => ({ flag, text });

/** Every command, in the order `meshlet --help` lists them. */
export const COMMANDS: readonly CommandHelp[] = [
  {
    name: 'control-plane',
    summary: 'serve Envoy v3 ADS (xDS) from a directory of Istio YAML, like istiod',
    synopsis: '--config <dir> [options]',
    options: [
      help('--config <dir>', 'directory of Istio YAML to watch (required)'),
      help('--port <port>', 'ADS port (default 15010; 0 picks a free one)'),
      help('--host <address>', 'address to bind (default 127.0.0.1)'),
      help('--debug-port <port>', 'debug HTTP port (syncz, config dump), always on 127.0.0.1'),
      help('--ca-dir <dir>', 'host a development CA kept in dir; ADS then requires TLS'),
      help('--plaintext', 'with --ca-dir: allow plaintext ADS streams too'),
      help('--ratelimit-config <file|dir>', 'host the global rate-limit service (envoyproxy/ratelimit rules)'),
      help('--redis <url>', 'with --ratelimit-config: counters in Redis (redis://127.0.0.1:6379)'),
    ],
    notes: ['A config that fails validation at start is an error (exit 1); later, a bad change is rejected and the last good config keeps serving.'],
  },
  {
    name: 'gateway',
    summary: 'run an ingress gateway (Istio Gateway + VirtualService)',
    synopsis: '(--config <dir|file> | --xds <host:port>) [options]',
    options: [
      help('-c, --config <dir|file>', 'Istio YAML (embedded mode)'),
      help('--xds <host:port>', 'follow a control plane instead'),
      help('-p, --port <port>', 'listening port (default: the Gateway server port, else 8080)'),
      help('--host <address>', 'address to bind (default 127.0.0.1)'),
      help('--server-port <port>', 'the Gateway server port this listener serves'),
      help('--name <name>', 'workload name (default istio-ingressgateway)'),
      help('--namespace <ns>', 'workload namespace (default default)'),
      help('--label <key=value>', 'workload label, repeatable (default istio=ingressgateway)'),
      help('--drain-timeout <ms>', 'grace for in-flight requests on SIGTERM (default 5000)'),
      help('--num-trusted-proxies <n>', 'x-forwarded-for hops to trust (default 0)'),
      help('--forward-client-cert-details <mode>', 'XFCC handling (default SANITIZE_SET)'),
      help('--internal-address <cidr>', 'addresses treated as internal, repeatable'),
      help('--preserve-external-request-id', 'keep x-request-id from outside callers'),
    ],
  },
  {
    name: 'ratelimit',
    summary: 'run the global rate-limit service (envoy.service.ratelimit.v3)',
    synopsis: '--config <file|dir> [options]',
    options: [
      help('--config <file|dir>', 'rules in envoyproxy/ratelimit format (required)'),
      help('--port <port>', 'gRPC port (default 8081)'),
      help('--host <address>', 'address to bind (default 127.0.0.1)'),
      help('--redis <url>', 'counters in Redis (default: in memory)'),
    ],
  },
  {
    name: 'token',
    summary: 'mint a bootstrap token for a workload from a CA directory',
    synopsis: '--ca-dir <dir> --service-account <sa> [options]',
    options: [
      help('--ca-dir <dir>', 'the CA directory (required)'),
      help('--service-account <sa>', 'the workload\'s service account (required)'),
      help('--namespace <ns>', 'its namespace (default default)'),
      help('--ttl <duration>', 'lifetime, Istio duration (default 1h)'),
    ],
  },
  {
    name: 'demo',
    summary: 'run the pet-shop demo on 127.0.0.1 (source checkout only)',
    synopsis: '[--scenario <name>] [--port <port>]',
    options: [
      help('-s, --scenario <name>', 'scenario applied at start (default baseline; --help in the demo lists them)'),
      help('-p, --port <port>', 'the page\'s port (default 8080; a free one if taken)'),
    ],
  },
  {
    name: 'analyze',
    summary: 'check Istio YAML like istioctl analyze: per resource applied / partial / rejected, IST codes',
    synopsis: '<files|dirs…> [-o json|yaml]',
    options: [
      help('-o, --output <format>', 'json or yaml instead of the text report'),
    ],
    notes: ['Exit 1 when a resource has an error, 2 on a usage error.'],
  },
];

/** `meshlet --help`. */
export function mainUsage(): string {
  return `usage: meshlet <command> [options]

commands:
${table(COMMANDS.map((c) => [c.name, c.summary]))}

Run \`meshlet <command> --help\` for a command's options. Servers bind 127.0.0.1 unless --host says otherwise.`;
}

/** `meshlet <command> --help`; undefined for an unknown command. */
export function commandUsage(name: string): string | undefined {
  const c = COMMANDS.find((x) => x.name === name);
  if (!c) return undefined;
  const options = table([...c.options.map((o) => [o.flag, o.text] as const), ['-h, --help', 'this help']]);
  return `usage: meshlet ${c.name} ${c.synopsis}

${c.summary}

options:
${options}${c.notes ? `\n\n${c.notes.join('\n')}` : ''}`;
}
