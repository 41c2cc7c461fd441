/**
 * The demo's scenarios: one Istio YAML file each in ./scenarios/ (exactly what
 * a user would `kubectl apply`), plus what the talk changed in the app for it
 * (calculate v1 sleeping) and the words the scenario panel shows.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { CalculateVersion } from './topology.js';

/** One entry of the scenario panel. */
export interface Scenario {
  /** What `--scenario` and the API take (`canary`, `blue-green`, …). */
  name: string;
  /** The YAML file in ./scenarios/. */
  file: string;
  /** The talk's section number (02 timeout, 05 canary …). */
  section: string;
  title: string;
  /** One line: what to look at on the page. */
  expect: string;
  /**
   * How long each calculate version sleeps before answering while the
   * scenario is active (the talk redeploys calculate v1 with a 20 s sleep).
   * Versions not listed answer at once.
   */
  calculateSleepMs?: Partial<Record<CalculateVersion, number>>;
  /**
   * What the scenario counts (a rate limit's quota). The page does not refresh its
   * result card when such a scenario is applied, so the user's own accesses are
   * the ones counted, and the panel says what counts.
   */
  counts?: string;
  /** The same scenario as Gateway API HTTPRoutes, in ./scenarios/gateway-api/ (`npm run demo -- --api gateway`). */
  gatewayFile?: string;
  /** What to look at when the HTTPRoute version behaves differently (default: `expect`). */
  gatewayExpect?: string;
}

/** Which dialect the scenarios are applied in: Istio's VirtualService/DestinationRule, or the Gateway API's HTTPRoute. */
export type ScenarioApi = 'istio' | 'gateway';

/** The talk's 20-second sleep. */
export const SLOW_CAT_MS = 20_000;
/** The circuit-breaker step's slow cat (longer than its 1 s timeout). */
export const CIRCUIT_BREAKER_CAT_MS = 5_000;

/** Every scenario, in the order the talk shows them (02 … 08), then the security ones the demo adds (09, 10). */
export const scenarios: readonly Scenario[] = [
  { name: 'baseline', file: '00-baseline.yaml', gatewayFile: '00-baseline.yaml', section: '00', title: 'Baseline', expect: 'Round robin over both versions: cat, dog, cat, dog…' },
  { name: 'timeout', file: '02-timeout.yaml', gatewayFile: '02-timeout.yaml', section: '02', title: 'Timeout', expect: 'The cat sleeps 20 s; "Timeout Error" after 2 s.', calculateSleepMs: { 'cat-plus': SLOW_CAT_MS } },
  { name: 'retry', file: '03-retry.yaml', gatewayFile: '03-retry.yaml', gatewayExpect: 'Retries on 5xx answers and connection failures; a per-try timeout is not retried (as Istio translates GEP-1731): "Timeout Error" after 2 s.', section: '03', title: 'Retry', expect: 'First try + 3 retries x 2 s: "Timeout Error" after about 8 s.', calculateSleepMs: { 'cat-plus': SLOW_CAT_MS } },
  { name: 'fault-injection', file: '04-fault-injection.yaml', section: '04', title: 'Fault injection', expect: 'The mesh aborts every call to calculate: "503 Service Unavailable" (FI).' },
  { name: 'canary', file: '05-canary.yaml', gatewayFile: '05-canary.yaml', section: '05', title: 'Canary 90/10', expect: 'Mostly cats, sometimes a dog (try x20).' },
  { name: 'blue-green', file: '05-blue-green.yaml', gatewayFile: '05-blue-green.yaml', section: '05', title: 'Blue/green 0/100', expect: 'Only dogs.' },
  { name: 'dark-release', file: '06-dark-release.yaml', gatewayFile: '06-dark-release.yaml', section: '06', title: 'Dark release', expect: 'Cats; a dog only with the "version: dog" header toggle on.' },
  { name: 'global-rate-limit', file: '07-global-rate-limit.yaml', section: '07', title: 'Global rate limit', expect: 'At the gateway, 5 requests a minute: the 6th gets 429 (RL).', counts: 'Every request through the gateway counts: a page load, a Calculate, each of Run ×20. Applying started a new minute and sent nothing, so your 6th access gets 429. The console (its own port) is never limited.' },
  { name: 'local-rate-limit', file: '07-local-rate-limit.yaml', section: '07', title: 'Local rate limit', expect: 'Token bucket 5 per 60 s on calculate: the 6th quick calculation gets 429 (RL).', counts: 'Every calculation spends a token: a Calculate, a page load (it calculates too), each of Run ×20. Applying spent none, so your 6th calculation gets 429.' },
  { name: 'circuit-breaker', file: '08-circuit-breaker.yaml', section: '08', title: 'Circuit breaker', expect: 'The cat sleeps 5 s, timeout 1 s: a few "Timeout Error"s, then the cat is ejected and only dogs answer.', calculateSleepMs: { 'cat-plus': CIRCUIT_BREAKER_CAT_MS } },
  { name: 'mtls-strict', file: '09-mtls-strict.yaml', section: '09', title: 'mTLS STRICT', expect: 'The page still works (mTLS between services); a plaintext probe to calculate is refused.' },
  { name: 'authorization-deny', file: '10-authorization-deny.yaml', section: '10', title: 'Authorization deny', expect: 'calculate refuses every call: 403 "RBAC: access denied".' },
];

const scenarioDir = fileURLToPath(new URL('./scenarios/', import.meta.url));

/** Finds a scenario by name (`canary`) or file stem (`05-canary`); undefined when unknown. */
export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name || s.file === name || s.file.replace(/\.ya?ml$/, '') === name);
}

/**
 * The scenario's YAML as shipped: ./scenarios/<file> (Istio), or with `api`
 * `gateway` ./scenarios/gateway-api/<gatewayFile> (HTTPRoutes). A scenario
 * the Gateway API cannot express (fault injection, rate limits, security)
 * stays Istio YAML in both dialects.
 */
export function scenarioYaml(scenario: Scenario, api: ScenarioApi = 'istio'): Promise<string> {
  if (api === 'gateway' && scenario.gatewayFile) return readFile(`${scenarioDir}gateway-api/${scenario.gatewayFile}`, 'utf8');
  return readFile(scenarioDir + scenario.file, 'utf8');
}
