/**
 * Each Envoy resource encoded once (an Any and its content hash), shared by
 * every namespace, snapshot and client that serves the very same object.
 */
import { createHash } from 'node:crypto';
import { encodeAny } from '../xds/protos.js';

/** One encoded resource: its Any, serialized once and shared by every client and namespace. */
export interface EncodedResource {
  any: { type_url: string; value: Buffer };
  /** Content hash: the resource's version in Delta xDS. */
  hash: string;
}

/**
 * Encoded resources shared across namespaces and generations, keyed by the
 * resource object itself: the translator (with its TranslateCache) returns the
 * very same object for an unchanged resource, in every namespace and push, so
 * an unchanged resource is never serialized again. Entries go with their objects.
 */
export class EncodingCache {
  private readonly byObject = new WeakMap<object, EncodedResource>();

  /** The encoding of `resource` as `typeUrl`. */
  encode(typeUrl: string, resource: object): EncodedResource {
    let e = this.byObject.get(resource);
    if (e && e.any.type_url === typeUrl) return e;
    const any = encodeAny(typeUrl, resource);
    e = { any, hash: createHash('sha1').update(any.value).digest('base64url').slice(0, 16) };
    this.byObject.set(resource, e);
    return e;
  }
}
