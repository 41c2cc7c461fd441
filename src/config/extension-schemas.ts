/**
 * Kinds meshlet accepts so Istio's YAML loads, but cannot carry out in a
 * Node.js process: Wasm and Lua extensions (WasmPlugin, TrafficExtension),
 * Envoy's process settings (ProxyConfig) and the Gateway API's L4 routes
 * (TCPRoute, TLSRoute, UDPRoute). Each is reported field by field
 * (support-extensions.ts); an extension meshlet cannot run fails closed, as
 * istio-agent does with a module it cannot load (translate-extensions.ts).
 */
import { any, int, list, map, obj, str, type Schema } from './schema.js';

const selector = obj({ matchLabels: map(str()) });
const failStrategy = str(['FAIL_CLOSE', 'FAIL_OPEN', 'FAIL_RELOAD']);
const phase = str(['UNSPECIFIED_PHASE', 'AUTHN', 'AUTHZ', 'STATS']);
const match = list(obj({ mode: str(['UNDEFINED', 'CLIENT', 'SERVER', 'CLIENT_AND_SERVER']), ports: list(obj({ number: int(1, 65535) })) }));

/** The Wasm module fields, shared by WasmPlugin and TrafficExtension's `wasm`. */
const wasmModule = {
  url: str(), sha256: str(), imagePullPolicy: str(['UNSPECIFIED_POLICY', 'IfNotPresent', 'Always']), imagePullSecret: str(),
  verificationKey: str(), pluginConfig: any, pluginName: str(), failStrategy, vmConfig: any, type: str(['UNSPECIFIED_PLUGIN_TYPE', 'HTTP', 'NETWORK']),
};

/** WasmPlugin (extensions.istio.io/v1alpha1). */
export const wasmPluginSpec: Schema = obj({ selector, targetRef: any, targetRefs: any, phase, priority: int(-2147483648), match, ...wasmModule }, { required: ['url'] });

/** TrafficExtension (extensions.istio.io/v1alpha1): a Wasm module or inline Lua. */
export const trafficExtensionSpec: Schema = obj({
  selector, targetRef: any, targetRefs: any, phase, priority: int(-2147483648), match,
  wasm: obj(wasmModule), lua: obj({ inlineCode: str() }),
}, { oneOf: ['wasm', 'lua'] });

/** ProxyConfig (networking.istio.io/v1beta1): settings of the Envoy process. */
export const proxyConfigSpec: Schema = obj({ selector, concurrency: int(0), environmentVariables: map(str()), image: obj({ imageType: str() }) });

/** TCPRoute, TLSRoute, UDPRoute (gateway.networking.k8s.io/v1alpha2): read for their names only. */
export const l4RouteSpec: Schema = obj({ parentRefs: any, hostnames: list(str()), rules: any });
