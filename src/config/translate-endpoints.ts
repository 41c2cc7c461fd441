/**
 * Registry endpoints → Envoy LbEndpoints for one translation. A service's
 * default cluster and each of its subset clusters list the same endpoints, and
 * a deployment's endpoints mostly carry the same labels, so the pieces are
 * built once and shared: Envoy resources are read-only once translated (the
 * control plane's TranslateCache already shares them across translations).
 * This is most of a large translation's output, and fewer objects is less GC.
 */
import type { LbEndpoint } from './envoy.js';
import { endpointPort, type ServiceEndpoint, type ServicePort } from './registry.js';
import { toStruct, type ProtoStruct } from './struct.js';
import type { UpstreamTlsTranslator } from './translate-tls.js';

/** Builds (and shares) the LbEndpoints of one translation; create one per translate call. */
export class LbEndpointBuilder {
  private readonly byPort = new Map<ServicePort, Map<ServiceEndpoint, LbEndpoint>>();
  /** `istio` filter metadata by content (see metadataNode). */
  private readonly metadata: MetadataNode = {};

  constructor(private readonly upstreamTls: UpstreamTlsTranslator) {}

  /** The LbEndpoint of `endpoint` for a cluster on service port `port`. */
  of(endpoint: ServiceEndpoint, port: ServicePort): LbEndpoint {
    let byEndpoint = this.byPort.get(port);
    if (!byEndpoint) this.byPort.set(port, (byEndpoint = new Map()));
    let lbe = byEndpoint.get(endpoint);
    if (!lbe) byEndpoint.set(endpoint, (lbe = this.build(endpoint, port)));
    return lbe;
  }

  private build(e: ServiceEndpoint, port: ServicePort): LbEndpoint {
    const portValue = endpointPort(e, port);
    const filterMetadata: Record<string, Record<string, unknown>> = { istio: this.istio(e) as Record<string, unknown> };
    Object.assign(filterMetadata, this.upstreamTls.endpointMetadata(e, portValue));
    return {
      endpoint: { address: { socket_address: { address: e.address, port_value: portValue } } },
      health_status: 'HEALTHY',
      load_balancing_weight: { value: e.weight || 1 },
      metadata: { filter_metadata: filterMetadata },
    };
  }

  /** Istio's endpoint metadata: labels, namespace and service account, as a Struct. */
  private istio(e: ServiceEndpoint): ProtoStruct {
    const node = this.metadataNode(e);
    if (node?.struct) return node.struct;
    const istio: Record<string, unknown> = { labels: e.labels, namespace: e.namespace };
    if (e.serviceAccount) istio.service_account = e.serviceAccount;
    const struct = toStruct(istio);
    if (node) node.struct = struct;
    return struct;
  }

  /**
   * The trie node for an endpoint's (namespace, service account, label names
   * and values) — lookups of strings the endpoint already holds, cheaper than
   * building a key string per endpoint. Undefined when a label value is not a
   * string (1 and "1" must not share a Struct).
   */
  private metadataNode(e: ServiceEndpoint): MetadataNode | undefined {
    let node = child(child(this.metadata, e.namespace), e.serviceAccount || '');
    const labels = e.labels;
    const names = Object.keys(labels);
    for (let i = 0; i < names.length; i++) {
      const value = labels[names[i]!];
      if (typeof value !== 'string') return undefined;
      node = child(child(node, names[i]!), value);
    }
    return node;
  }
}

interface MetadataNode {
  next?: Map<string, MetadataNode>;
  struct?: ProtoStruct;
}

function child(node: MetadataNode, key: string): MetadataNode {
  const next = (node.next ??= new Map());
  let c = next.get(key);
  if (!c) next.set(key, (c = {}));
  return c;
}
