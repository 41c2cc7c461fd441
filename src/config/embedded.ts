/**
 * Embedded mode's config pipeline, before anything is installed: admission
 * (atomic: one bad document refuses the apply), the MeshConfig and Sidecar
 * settings the documents carry, and the translation to Envoy resources for
 * this workload. The mesh installs the result (mesh.ts apply).
 */
import { admitResourcesSliced, type Admission } from './admission.js';
import { meshConfigFromDocuments, type MeshConfigOptions } from './mesh-config.js';
import { sidecarFor } from './sidecar.js';
import { translateSliced, type ProxyInfo } from './translate.js';
import type { EnvoyResources } from './envoy.js';
import { nextTurn, runSliced } from '../core/slices.js';

/** What an embedded apply installs. */
export interface EmbeddedConfig {
  readonly admitted: Admission;
  readonly envoy: EnvoyResources;
  /** A Sidecar selecting this workload overrides the mesh's outboundTrafficPolicy, as in Istio. */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
}

/** Admits and translates `docs` for `proxy`, yielding between the stages of a large apply. @throws MeshConfigError */
export async function translateEmbedded(docs: readonly object[], proxy: ProxyInfo, defaults: { meshConfig: MeshConfigOptions; outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY' }): Promise<EmbeddedConfig> {
  const admitted = await runSliced(admitResourcesSliced(docs, 'embedded'));
  if (admitted.errors.length > 0) throw admitted.errors[0]; // atomic: an explicit apply never half-applies (DESIGN.md §3)
  await nextTurn();
  const meshConfig = meshConfigFromDocuments(docs) ?? defaults.meshConfig;
  const normalization = meshConfig.pathNormalization?.normalization;
  const outboundTrafficPolicy = sidecarFor(admitted.resources, proxy)?.outboundTrafficPolicy ?? defaults.outboundTrafficPolicy;
  const envoy = await runSliced(translateSliced(admitted.resources, { ...proxy, ...(normalization !== undefined && { pathNormalization: normalization }), accessLog: meshConfig, exportTo: meshConfig }));
  return { admitted, envoy, outboundTrafficPolicy };
}
