/**
 * What the two reporters (outbound `reporter="source"`, inbound
 * `reporter="destination"`) share: which istio_* metrics they record, as
 * Telemetry `metrics[].overrides` set them, and their access logs.
 */
import type { Span } from '@opentelemetry/api';
import type { AccessLogger } from './access-log.js';
import { ALL_METRICS } from './telemetry-policy.js';

export abstract class Reporter {
  /** The istio_* metrics recorded, as telemetry-policy.ts bits; 0 records nothing. */
  protected metricMask: number;
  /** The access logs of this side (the HCM `access_log` of its listeners). */
  protected accessLogs: readonly AccessLogger[] = [];

  /** @param metricsEnabled createMesh's `telemetry.metrics`: false wins over any Telemetry resource */
  constructor(private readonly metricsEnabled: boolean) {
    this.metricMask = metricsEnabled ? ALL_METRICS : 0;
  }

  /** Which istio_* metrics are recorded from now on (Telemetry `metrics[].overrides` for this side's mode). */
  setMetricMask(mask: number): void {
    this.metricMask = this.metricsEnabled ? mask : 0;
  }

  /** Installs this side's access logs (empty: none). */
  setAccessLogs(loggers: readonly AccessLogger[]): void {
    this.accessLogs = loggers;
  }

  /** Whether istio_* metrics are recorded: only they read wire sizes (headers included), so requests skip counting otherwise. */
  get recordsMetrics(): boolean {
    return this.metricMask !== 0;
  }

  /** True when some access log is configured (adapters then gather what it reads). */
  get logsAccess(): boolean {
    return this.accessLogs.length > 0;
  }

  /**
   * Whether anything reads a request's outcome: a recording span, istio_*
   * metrics or an access log. When nothing does, the adapter ends the span
   * itself and skips gathering flags, sizes and peers.
   */
  observes(span: Span): boolean {
    return this.metricMask !== 0 || this.accessLogs.length > 0 || span.isRecording();
  }
}
