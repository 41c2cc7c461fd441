/**
 * Clients of global rate-limit services, one per service address, created
 * on first use and closed with the mesh. The address comes from the rate-limit
 * service's cluster in the current snapshot.
 */
import type { GlobalLimitPolicy } from '../core/global-rate-limit.js';
import type { GlobalLimitDecision } from '../core/router-session.js';
import type { Snapshot } from '../core/snapshot.js';
import { createRateLimitClient } from './client.js';

type Client = ReturnType<typeof createRateLimitClient>;

export class GlobalRateLimits {
  private readonly clients = new Map<string, Client>();

  /** Over limit? Errors and timeouts follow the policy's failure_mode_deny, inside the client. */
  async check(snapshot: Snapshot, policy: GlobalLimitPolicy, descriptors: Array<{ entries: Array<{ key: string; value: string }> }>): Promise<GlobalLimitDecision> {
    const host = snapshot.clusters.get(policy.cluster)?.pick();
    // No endpoint for the service is a failed call: failure_mode_deny answers status_on_error with RLSE.
    if (!host) return policy.failureModeDeny ? { overLimit: true, flag: 'RLSE', status: policy.statusOnError } : { overLimit: false };
    const key = `${host.id}|${policy.timeoutMs}|${policy.failureModeDeny}`;
    let client = this.clients.get(key);
    if (!client) {
      client = createRateLimitClient({ target: host.id, timeoutMs: policy.timeoutMs, failureModeDeny: policy.failureModeDeny });
      this.clients.set(key, client);
    }
    const decision = await client.shouldRateLimit(policy.domain, descriptors);
    if (decision.flag === 'RLSE') return { overLimit: true, flag: 'RLSE', status: policy.statusOnError };
    return { overLimit: decision.overLimit, flag: decision.flag, headers: decision.headers as Record<string, string> | undefined };
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.close()));
  }
}
