/**
 * Matchers for AuthorizationPolicy fields, compiled once: Istio's string
 * forms (exact, `prefix*`, `*suffix`, `*` = present), ports, and IP blocks
 * (node's BlockList). Each returns undefined-or-reason from its compile step
 * so the policy compiler can point at the bad field.
 */
import { BlockList, isIP } from 'node:net';

/** A compiled string matcher; `undefined` input means the attribute is absent. */
export type StringMatcher = (value: string | undefined) => boolean;

/** Compiles one Istio string pattern. @returns the matcher, or a reason string. */
export function compileStringPattern(pattern: unknown, options: { ignoreCase?: boolean } = {}): StringMatcher | string {
  if (typeof pattern !== 'string') return 'must be a string';
  if (pattern.length === 0) return 'must not be empty';
  const fold = options.ignoreCase === true;
  const p = fold ? pattern.toLowerCase() : pattern;
  const norm = fold ? (v: string) => v.toLowerCase() : (v: string) => v;
  if (p === '*') return (v) => v !== undefined && v.length > 0;
  const starts = p.startsWith('*');
  const ends = p.endsWith('*');
  const inner = p.slice(starts ? 1 : 0, ends ? -1 : undefined);
  if (inner.includes('*') || (starts && ends)) return `"${pattern}": a wildcard may only be a prefix ("*x") or a suffix ("x*")`;
  if (ends) return (v) => v !== undefined && norm(v).startsWith(inner);
  if (starts) return (v) => v !== undefined && norm(v).endsWith(inner);
  return (v) => v !== undefined && norm(v) === p;
}

/** Compiles a list of patterns into one matcher (OR). @returns matcher, or `[index, reason]`. */
export function compileStringList(patterns: readonly unknown[], options: { ignoreCase?: boolean } = {}): StringMatcher | [number, string] {
  const matchers: StringMatcher[] = [];
  for (let i = 0; i < patterns.length; i++) {
    const m = compileStringPattern(patterns[i], options);
    if (typeof m === 'string') return [i, m];
    matchers.push(m);
  }
  if (matchers.length === 1) return matchers[0]!;
  return (v) => {
    for (const m of matchers) if (m(v)) return true;
    return false;
  };
}

/** Compiles Istio port strings ("8080") into a matcher. */
export function compilePortList(ports: readonly unknown[]): ((port: number | undefined) => boolean) | [number, string] {
  const set = new Set<number>();
  for (let i = 0; i < ports.length; i++) {
    const p = ports[i];
    const n = typeof p === 'number' ? p : typeof p === 'string' && /^\d+$/.test(p) ? Number(p) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 65535) return [i, `"${String(p)}" is not a port number (1-65535)`];
    set.add(n);
  }
  return (port) => port !== undefined && set.has(port);
}

/** Compiles IPs and CIDRs ("10.0.0.0/8", "::1") into a matcher. */
export function compileIpBlocks(blocks: readonly unknown[]): ((ip: string | undefined) => boolean) | [number, string] {
  const list = new BlockList();
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i];
    if (typeof b !== 'string') return [i, 'must be a string'];
    const slash = b.indexOf('/');
    const addr = slash < 0 ? b : b.slice(0, slash);
    const family = isIP(addr);
    if (family === 0) return [i, `"${b}" is not an IP address or CIDR`];
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash < 0) {
      list.addAddress(addr, type);
    } else {
      const prefix = b.slice(slash + 1);
      const bits = /^\d+$/.test(prefix) ? Number(prefix) : NaN;
      if (!(bits >= 0 && bits <= (family === 4 ? 32 : 128))) return [i, `"${b}" has an invalid prefix length`];
      list.addSubnet(addr, bits, type);
    }
  }
  return (ip) => {
    if (ip === undefined) return false;
    // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d.
    const v = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
    const family = isIP(v);
    return family !== 0 && list.check(v, family === 4 ? 'ipv4' : 'ipv6');
  };
}
