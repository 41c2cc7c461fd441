/** The workload as the translator sees it, from createMesh's `workload` option. */
import type { ProxyInfo } from './config/translate.js';
import { workloadLocality } from './config/translate-locality.js';
import type { MeshOptions } from './mesh-options.js';

/** Name, namespace, labels, service account and locality (option, else topology labels), with Istio's defaults. */
export function workloadProxy(w: MeshOptions['workload']): ProxyInfo {
  const proxy: ProxyInfo = {
    name: w?.name ?? 'unknown',
    namespace: w?.namespace ?? 'default',
    labels: w?.labels ?? {},
    ...(w?.serviceAccount !== undefined && { serviceAccount: w.serviceAccount }),
  };
  const locality = workloadLocality(w?.locality, w?.labels);
  if (locality) proxy.locality = locality;
  return proxy;
}
