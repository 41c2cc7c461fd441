/**
 * Request mirroring (RouteAction.request_mirror_policies): which cluster gets
 * a fire-and-forget copy, for what share of requests, and the `-shadow`
 * authority Envoy gives the copy. Sending the copy is the adapter's job; the
 * copy's outcome never touches the caller's response or latency.
 */
import type { RequestMirrorPolicy } from '../config/envoy.js';
import { fractionToProbability, sample } from './fractional-percent.js';
import type { RandomSource } from './random.js';

/** RequestMirrorPolicy with the Envoy fields envoy.ts does not list yet. */
export interface RequestMirrorPolicyV3 extends RequestMirrorPolicy {
  trace_sampled?: { value: boolean };
  disable_shadow_host_suffix_append?: boolean;
}

/** A compiled mirror policy. */
export interface MirrorPolicy {
  readonly cluster: string;
  /** Probability in [0, 1]; an absent runtime_fraction mirrors everything (Envoy). */
  readonly probability: number;
  /** Whether the copy's authority gets the `-shadow` suffix (unless disable_shadow_host_suffix_append). */
  readonly shadowSuffix: boolean;
  /** trace_sampled: undefined keeps the parent's sampling decision. */
  readonly traceSampled: boolean | undefined;
}

const NONE: readonly MirrorPolicy[] = Object.freeze([]);

/**
 * Compiles a route's request_mirror_policies. Policies with `cluster_header`
 * (no fixed cluster) are skipped; a 0% policy is dropped.
 */
export function compileMirrorPolicies(policies: readonly RequestMirrorPolicy[] | undefined): readonly MirrorPolicy[] {
  if (!policies || policies.length === 0) return NONE;
  const out: MirrorPolicy[] = [];
  for (const raw of policies as readonly RequestMirrorPolicyV3[]) {
    if (!raw.cluster) continue;
    const probability = fractionToProbability(raw.runtime_fraction?.default_value, 1);
    if (probability === 0) continue;
    out.push(Object.freeze({
      cluster: raw.cluster,
      probability,
      shadowSuffix: raw.disable_shadow_host_suffix_append !== true,
      traceSampled: raw.trace_sampled ? raw.trace_sampled.value === true : undefined,
    }));
  }
  return out.length === 0 ? NONE : Object.freeze(out);
}

/** One draw: whether this request is mirrored under `policy`. */
export function shouldMirror(policy: MirrorPolicy, random: RandomSource): boolean {
  return sample(policy.probability, random);
}

/**
 * Envoy's shadowAppendedHost: `host:port` → `host-shadow:port`, `host` →
 * `host-shadow`, `[::1]:80` → `[::1]-shadow:80`. The port is found as Envoy
 * does: the last `:` not inside an IPv6 bracket.
 */
export function shadowAuthority(authority: string): string {
  const colon = authority.lastIndexOf(':');
  if (colon === -1) return `${authority}-shadow`;
  const bracket = authority.lastIndexOf(']');
  if (bracket !== -1 && bracket > colon) return `${authority}-shadow`;
  return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
}
