/**
 * @peculiar/x509 resolves its algorithms through tsyringe, which refuses to load
 * unless a Reflect metadata API exists (its README asks apps to import
 * `reflect-metadata`). meshlet does not ship that dependency, so this installs
 * the three functions tsyringe calls — and only when no polyfill is present,
 * so an app that already loaded `reflect-metadata` keeps its own.
 */

type MetadataMap = Map<unknown, unknown>;
const store = new WeakMap<object, Map<PropertyKey | undefined, MetadataMap>>();

function own(target: object, property: PropertyKey | undefined, create: boolean): MetadataMap | undefined {
  let byProperty = store.get(target);
  if (!byProperty) {
    if (!create) return undefined;
    byProperty = new Map();
    store.set(target, byProperty);
  }
  let map = byProperty.get(property);
  if (!map && create) {
    map = new Map();
    byProperty.set(property, map);
  }
  return map;
}

interface ReflectMetadataApi {
  getMetadata?: (key: unknown, target: object, property?: PropertyKey) => unknown;
  getOwnMetadata?: (key: unknown, target: object, property?: PropertyKey) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: object, property?: PropertyKey) => void;
}

const api = Reflect as unknown as ReflectMetadataApi;
if (typeof api.getMetadata !== 'function') {
  api.getOwnMetadata = (key, target, property) => own(target, property, false)?.get(key);
  api.getMetadata = (key, target, property) => {
    // Walks the prototype chain like reflect-metadata's getMetadata.
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t)) {
      const map = own(t, property, false);
      if (map?.has(key)) return map.get(key);
    }
    return undefined;
  };
  api.defineMetadata = (key, value, target, property) => {
    own(target, property, true)!.set(key, value);
  };
}

export {};
