/**
 * State-of-the-World versions as an order-independent content hash: the sum,
 * in two independent 32-bit lanes, of one hash per (name, resource hash)
 * entry a client is sent. The same content always gives the same version (a
 * restarted control plane hands out the same ones, and a client is pushed to
 * only when what it subscribes to really changed), and a push that changed a
 * few of a client's resources moves the sum by those entries alone instead of
 * hashing every name the client subscribes to (at 1,000 clients that hashing
 * was most of a SotW push).
 */

/** The two lanes of a sum, each an unsigned 32-bit integer. */
export type VersionSum = readonly [number, number];

export const EMPTY_SUM: VersionSum = [0, 0];

/** One entry's lanes: FNV-1a and a multiply-xorshift hash over `name`, a separator and `hash`. */
export function entryLanes(name: string, hash: string): VersionSum {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  const mix = (c: number) => {
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  };
  for (let i = 0; i < name.length; i++) mix(name.charCodeAt(i));
  mix(0x10000); // not a UTF-16 unit: `ab`+`c` and `a`+`bc` differ
  for (let i = 0; i < hash.length; i++) mix(hash.charCodeAt(i));
  return [a >>> 0, b >>> 0];
}

export function addLanes(sum: VersionSum, entry: VersionSum): VersionSum {
  return [(sum[0] + entry[0]) >>> 0, (sum[1] + entry[1]) >>> 0];
}

export function subtractLanes(sum: VersionSum, entry: VersionSum): VersionSum {
  return [(sum[0] - entry[0]) >>> 0, (sum[1] - entry[1]) >>> 0];
}

/** The version string of a sum: 16 hex digits. */
export function versionOf(sum: VersionSum): string {
  return sum[0].toString(16).padStart(8, '0') + sum[1].toString(16).padStart(8, '0');
}
