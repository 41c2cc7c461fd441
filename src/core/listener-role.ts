/**
 * What a Listener is for, read the same way whatever its source (our
 * translator, our control plane, istiod's grpc generator):
 *
 * - outbound: an `api_listener` named `host:port` — istiod's grpcgen also
 *   sets `address` (the service VIP) on these (pilot/pkg/networking/grpcgen/lds.go
 *   buildOutboundListeners), which does not make them bound;
 * - gateway: an `api_listener` bound to an address under any other name
 *   (`0.0.0.0_8080`, as Istio names gateway listeners);
 * - inbound: `virtual_inbound` (our translator) or istiod's
 *   `xds.istio.io/grpc/lds/inbound/<ip>:<port>` (asked for by name).
 */
import type { Listener } from '../config/envoy.js';
import { VIRTUAL_INBOUND } from '../config/translate-inbound.js';
import { GRPC_INBOUND_LISTENER_PREFIX, isInboundListener } from './inbound-listener.js';

/** istiod's prefix for a proxyless server's inbound listener (pkg/istio-agent/grpcxds ServerListenerNamePrefix). */
export const INBOUND_LISTENER_PREFIX = GRPC_INBOUND_LISTENER_PREFIX;
export { isInboundListener };

/** Whether `name` is `host:port` (port 1–65535), as grpcgen and our translator name outbound listeners. */
export function isHostPortName(name: string): boolean {
  const i = name.lastIndexOf(':');
  if (i <= 0 || i === name.length - 1) return false;
  const port = name.slice(i + 1);
  for (let j = 0; j < port.length; j++) {
    const c = port.charCodeAt(j);
    if (c < 48 || c > 57) return false;
  }
  const n = Number(port);
  return n >= 1 && n <= 65535 && !name.includes('/');
}

/**
 * The inbound listener of a set: `virtual_inbound`, else the first istiod
 * inbound listener (istiod sends one per server port, all built from the same
 * workload policies).
 */
export function inboundListener(listeners: readonly Listener[]): Listener | undefined {
  return listeners.find((l) => l.name === VIRTUAL_INBOUND) ?? listeners.find(isInboundListener);
}

/** Whether a listener serves a gateway port (its routes are not outbound routes). */
export function isGatewayListener(listener: Listener): boolean {
  return listener.address !== undefined && listener.api_listener !== undefined && !isHostPortName(listener.name) && !isInboundListener(listener);
}
