/**
 * The plain subset of CEL that Istio's Telemetry `accessLogging[].filter.expression`
 * examples use, compiled once into a predicate over an access-log entry
 * (Envoy's `envoy.access_loggers.extension_filters.cel` ExpressionFilter).
 *
 * Grammar: `||`, `&&`, `!`, parentheses, comparisons (`== != < <= > >=`)
 * between attributes and int / string / bool literals, `has(attr)`, and the
 * attributes below (Envoy's attribute names). Anything else is refused when
 * the config is applied — a filter meshlet cannot evaluate is never guessed at.
 */
import type { AccessLogEntry } from './access-log-entry.js';

/** A compiled filter: true when the entry is logged. */
export type AccessLogPredicate = (entry: AccessLogEntry) => boolean;

/** Why an expression is refused (the caller wraps it in a MeshConfigError naming the field). */
export class AccessLogFilterError extends Error {}

type Value = string | number | boolean | undefined;
type Getter = (e: AccessLogEntry) => Value;

/** Envoy attributes meshlet knows for every request (https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes). */
const ATTRIBUTES: Readonly<Record<string, Getter>> = {
  'response.code': (e) => e.responseCode,
  'response.flags': (e) => e.responseFlags,
  'response.code_details': (e) => e.responseCodeDetails,
  'response.grpc_status': (e) => e.grpcStatus,
  'response.size': (e) => e.bytesSent,
  'request.method': (e) => e.method,
  'request.path': (e) => e.path,
  'request.url_path': (e) => { const q = e.path.indexOf('?'); return q === -1 ? e.path : e.path.slice(0, q); },
  'request.host': (e) => e.authority,
  'request.protocol': (e) => e.protocol,
  'request.size': (e) => e.bytesReceived,
  'request.duration': (e) => e.durationMs,
  'request.id': (e) => e.requestHeader('x-request-id'),
  'request.useragent': (e) => e.requestHeader('user-agent'),
  'source.address': (e) => e.downstreamRemoteAddress,
  'destination.address': (e) => e.downstreamLocalAddress,
  'upstream.address': (e) => e.upstreamHost,
  'connection.requested_server_name': (e) => e.requestedServerName,
  'connection.mtls': (e) => e.mtls,
  'xds.cluster_name': (e) => e.upstreamCluster,
  'xds.route_name': (e) => e.routeName,
};

const TOKEN = /\s*(?:(\d+)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(&&|\|\||==|!=|<=|>=|[<>!()[\].])|([A-Za-z_][A-Za-z0-9_]*))/y;

interface Token { kind: 'int' | 'string' | 'op' | 'ident'; text: string }

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    if (/^\s*$/.test(src.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(src);
    if (m === null) throw new AccessLogFilterError(`unsupported syntax at offset ${at}: ${JSON.stringify(src.slice(at, at + 12))}`);
    if (m[1] !== undefined) out.push({ kind: 'int', text: m[1] });
    else if (m[2] !== undefined || m[3] !== undefined) out.push({ kind: 'string', text: (m[2] ?? m[3]!).replace(/\\(.)/g, '$1') });
    else if (m[4] !== undefined) out.push({ kind: 'op', text: m[4] });
    else out.push({ kind: 'ident', text: m[5]! });
  }
  return out;
}

/** A recursive-descent parser that builds closures as it goes (no AST kept). */
class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): AccessLogPredicate {
    const expr = this.or();
    if (this.i < this.tokens.length) throw new AccessLogFilterError(`unexpected ${JSON.stringify(this.tokens[this.i]!.text)}`);
    return expr;
  }

  private peek(text: string): boolean {
    const t = this.tokens[this.i];
    return t !== undefined && t.kind === 'op' && t.text === text;
  }

  private expect(text: string): void {
    if (!this.peek(text)) throw new AccessLogFilterError(`expected ${JSON.stringify(text)}`);
    this.i++;
  }

  private or(): AccessLogPredicate {
    let left = this.and();
    while (this.peek('||')) {
      this.i++;
      const l = left;
      const r = this.and();
      left = (e) => l(e) || r(e);
    }
    return left;
  }

  private and(): AccessLogPredicate {
    let left = this.unary();
    while (this.peek('&&')) {
      this.i++;
      const l = left;
      const r = this.unary();
      left = (e) => l(e) && r(e);
    }
    return left;
  }

  private unary(): AccessLogPredicate {
    if (this.peek('!')) {
      this.i++;
      const inner = this.unary();
      return (e) => !inner(e);
    }
    if (this.peek('(')) {
      this.i++;
      const inner = this.or();
      this.expect(')');
      return inner;
    }
    const t = this.tokens[this.i];
    if (t?.kind === 'ident' && t.text === 'has') {
      this.i++;
      this.expect('(');
      const get = this.attribute();
      this.expect(')');
      return (e) => get(e) !== undefined;
    }
    return this.comparison();
  }

  private comparison(): AccessLogPredicate {
    const left = this.operand();
    const t = this.tokens[this.i];
    if (t?.kind !== 'op' || !['==', '!=', '<', '<=', '>', '>='].includes(t.text)) {
      // A bare boolean attribute (`connection.mtls`).
      if (left.literal !== undefined) throw new AccessLogFilterError('a literal is not a condition');
      return (e) => left.get(e) === true;
    }
    this.i++;
    const right = this.operand();
    const l = left.get;
    const r = right.get;
    switch (t.text) {
      case '==': return (e) => l(e) === r(e);
      case '!=': return (e) => l(e) !== r(e);
      case '<': return (e) => ordered(l(e), r(e), (a, b) => a < b);
      case '<=': return (e) => ordered(l(e), r(e), (a, b) => a <= b);
      case '>': return (e) => ordered(l(e), r(e), (a, b) => a > b);
      default: return (e) => ordered(l(e), r(e), (a, b) => a >= b);
    }
  }

  private operand(): { get: Getter; literal?: Value } {
    const t = this.tokens[this.i];
    if (t === undefined) throw new AccessLogFilterError('unexpected end of expression');
    if (t.kind === 'int') {
      this.i++;
      const n = Number(t.text);
      return { get: () => n, literal: n };
    }
    if (t.kind === 'string') {
      this.i++;
      const s = t.text;
      return { get: () => s, literal: s };
    }
    if (t.kind === 'ident' && (t.text === 'true' || t.text === 'false')) {
      this.i++;
      const b = t.text === 'true';
      return { get: () => b, literal: b };
    }
    return { get: this.attribute() };
  }

  /** `a.b.c` or `request.headers['name']` / `response.headers['name']`. */
  private attribute(): Getter {
    const parts: string[] = [];
    for (;;) {
      const t = this.tokens[this.i];
      if (t?.kind !== 'ident') throw new AccessLogFilterError(`expected an attribute, got ${JSON.stringify(t?.text ?? 'end')}`);
      parts.push(t.text);
      this.i++;
      if (!this.peek('.')) break;
      this.i++;
    }
    const name = parts.join('.');
    if (this.peek('[')) {
      this.i++;
      const key = this.tokens[this.i];
      if (key?.kind !== 'string') throw new AccessLogFilterError(`${name}[…] takes a string key`);
      this.i++;
      this.expect(']');
      const header = key.text.toLowerCase();
      if (name === 'request.headers') return (e) => e.requestHeader(header);
      if (name === 'response.headers') return (e) => e.responseHeader(header);
      throw new AccessLogFilterError(`attribute ${name}[…] is not supported (request.headers, response.headers are)`);
    }
    const get = ATTRIBUTES[name];
    if (get === undefined) throw new AccessLogFilterError(`attribute ${name} is not supported (supported: ${Object.keys(ATTRIBUTES).join(', ')}, request.headers['…'], response.headers['…'])`);
    return get;
  }
}

/** CEL compares only values of one type; a missing attribute makes the comparison false, as Envoy's filter does on an error. */
function ordered(a: Value, b: Value, op: (a: number | string, b: number | string) => boolean): boolean {
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) return false;
  return op(a, b as number | string);
}

/**
 * Compiles a filter expression.
 * @throws AccessLogFilterError when the expression is outside the supported subset.
 */
export function compileAccessLogFilter(expression: string): AccessLogPredicate {
  if (expression.trim() === '') throw new AccessLogFilterError('empty expression');
  return new Parser(tokenize(expression)).parse();
}
