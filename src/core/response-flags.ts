/**
 * Envoy's response flags as access logs and Istio's `response_flags` label
 * show them: every flag the request collected, comma-joined in the order of
 * Envoy's ResponseFlagUtils table (a refused connection whose retries ran
 * out is `UF,URX`; a delayed request that timed out `UT,DI`). meshlet's own
 * flags (`RBAC`, `NC`) go last, in the order they were set.
 */

/** Envoy's short flags in ResponseFlagUtils order (source/common/stream_info/utility.cc). */
const ENVOY_ORDER: readonly string[] = [
  'LH', 'UH', 'UT', 'LR', 'UR', 'UF', 'UC', 'UO', 'NR', 'DI', 'FI', 'RL', 'UAEX', 'RLSE', 'DC', 'URX', 'SI', 'IH', 'DPE',
  'UMSDR', 'RFCF', 'NFCF', 'DT', 'UPE', 'NC', 'OM', 'DF', 'DO', 'DR',
];

function rank(flag: string): number {
  const i = ENVOY_ORDER.indexOf(flag);
  return i === -1 ? ENVOY_ORDER.length : i;
}

/**
 * A request's `response_flags`: its local reply's (or forwarded response's) flag, the flags Envoy also sets that
 * it does not show (`UF` behind `URX` …), and `DI` when a fault delayed it. No array is built for the usual one flag.
 */
export function reportedResponseFlags(flag: string | undefined, more: readonly string[] | undefined, delayed: boolean): string {
  if (more === undefined && (!delayed || flag === 'DI')) return flag ?? '-';
  return joinResponseFlags([...(more ?? []), flag, delayed ? 'DI' : undefined]);
}

/** The `response_flags` value of a set of flags (`-` for none); duplicates and undefined are dropped. */
export function joinResponseFlags(flags: ReadonlyArray<string | undefined>): string {
  const set: string[] = [];
  for (const f of flags) if (f !== undefined && f !== '' && f !== '-' && !set.includes(f)) set.push(f);
  if (set.length === 0) return '-';
  if (set.length === 1) return set[0]!;
  // A stable sort keeps unknown flags in the order they were set.
  return set.sort((a, b) => rank(a) - rank(b)).join(',');
}
