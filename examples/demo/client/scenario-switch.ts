/**
 * Applies a scenario: the scenario's Istio YAML (plus the generated
 * ServiceEntries) goes to the mesh config, and the app change the talk made
 * for it (calculate v1 sleeping 20 s) goes to the calculate instances.
 *
 * The config goes through a {@link MeshConfigTarget}: today the client's own
 * embedded mesh (`mesh.apply`); when the demo moves to the control plane, a
 * target that writes the YAML into the control plane's config directory
 * replaces it and nothing else changes.
 */
import { findScenario, scenarioYaml, scenarios, type Scenario, type ScenarioApi } from '../scenarios.js';
import { platformConfig, type CalculateVersion, type Topology } from '../topology.js';

/** Where scenario config goes: a mesh's `apply`, or the control plane's config directory (../console/control-target.ts). */
export interface MeshConfigTarget {
  /** Replaces the whole mesh config with this multi-document YAML; throws MeshConfigError and keeps the old one. */
  apply(yaml: string): Promise<void>;
}

/** Raised for a scenario name that does not exist. */
export class UnknownScenarioError extends Error {
  constructor(name: string) {
    super(`unknown scenario "${name}"; known: ${scenarios.map((s) => s.name).join(', ')}`);
    this.name = 'UnknownScenarioError';
  }
}

/** Options of {@link ScenarioSwitch}. */
export interface ScenarioSwitchOptions {
  target: MeshConfigTarget;
  topology: Topology;
  /** Replaces every scenario's sleep (tests shorten the 20 s cat). */
  sleepMsOverride?: number;
  /**
   * Hands the scenario's YAML to every workload's inbound security
   * (PeerAuthentication, AuthorizationPolicy), which does not travel over xDS yet.
   */
  installSecurity?: (yaml: string) => Promise<void>;
  /** The dialect of the scenario files (default `istio`; `gateway`: HTTPRoutes where the scenario has them). */
  api?: ScenarioApi;
  /** Called once a scenario is in force everywhere (the demo starts a new rate-limit window, tags traces). */
  onApplied?: (scenario: Scenario) => void;
}

/** Holds the active scenario and switches between them one at a time. */
export class ScenarioSwitch {
  private current: Scenario | undefined;
  private currentYaml = '';
  private readonly sleeps = new Map<CalculateVersion, number>();
  private queue: Promise<unknown> = Promise.resolve();
  private topology: Topology;
  /** The generated ServiceEntries and ingress Gateway routes every scenario is applied with. */
  serviceEntries: string;

  constructor(private readonly options: ScenarioSwitchOptions) {
    this.topology = options.topology;
    this.serviceEntries = platformConfig(options.topology);
  }

  /** New service ports (a service started later): re-applies the active scenario with them. */
  updateTopology(topology: Topology): Promise<Scenario | undefined> {
    const run = this.queue.then(async () => {
      this.topology = topology;
      this.serviceEntries = platformConfig(topology);
      return this.current ? this.applyNow(this.current.name) : undefined;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The running services' ports. */
  get services(): Topology {
    return this.topology;
  }

  /** The active scenario (undefined before the first apply). */
  get active(): Scenario | undefined {
    return this.current;
  }

  /** The active scenario's YAML as shipped. */
  get activeYaml(): string {
    return this.currentYaml;
  }

  /** Applies a scenario by name; calls are serialized so two clicks never interleave. */
  apply(name: string): Promise<Scenario> {
    const run = this.queue.then(() => this.applyNow(name));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(name: string): Promise<Scenario> {
    const scenario = findScenario(name);
    if (!scenario) throw new UnknownScenarioError(name);
    const yaml = await scenarioYaml(scenario, this.options.api);
    const wanted = this.wantedSleeps(scenario);
    // Speed up before the routes change and slow down after, so no request
    // meets a slow cat without the scenario's timeout in force.
    await this.setSleeps(wanted, (from, to) => to < from);
    const config = `${this.serviceEntries}---\n${yaml}`;
    await this.options.target.apply(config);
    await this.options.installSecurity?.(config);
    await this.setSleeps(wanted, (from, to) => to > from);
    this.current = scenario;
    this.currentYaml = yaml;
    this.options.onApplied?.(scenario);
    return scenario;
  }

  private wantedSleeps(scenario: Scenario): Map<CalculateVersion, number> {
    const wanted = new Map<CalculateVersion, number>();
    for (const { version } of this.topology.calculate) {
      const ms = scenario.calculateSleepMs?.[version] ?? 0;
      wanted.set(version, ms > 0 && this.options.sleepMsOverride !== undefined ? this.options.sleepMsOverride : ms);
    }
    return wanted;
  }

  private async setSleeps(wanted: Map<CalculateVersion, number>, when: (from: number, to: number) => boolean): Promise<void> {
    await Promise.all(this.topology.calculate.map(async ({ version, port, adminPort }) => {
      const from = this.sleeps.get(version) ?? 0;
      const to = wanted.get(version) ?? 0;
      if (!when(from, to)) return;
      // The operator's knob, not app traffic: on the instance's admin port, not through the mesh
      // (the app port may be mTLS STRICT).
      const knob = adminPort !== undefined ? `http://127.0.0.1:${adminPort}/sleep?ms=${to}` : `http://127.0.0.1:${port}/admin/sleep?ms=${to}`;
      const res = await fetch(knob, { method: 'POST', signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`calculate ${version}: /admin/sleep answered ${res.status}`);
      this.sleeps.set(version, to);
    }));
  }
}
