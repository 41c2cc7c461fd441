/**
 * Request and response sizes as Envoy's bytes meter counts them for
 * istio_request_bytes / istio_response_bytes: headers and body as they go
 * on the wire (an HTTP/1.1 GET is its request line and headers, not 0).
 * Header blocks are counted in their HTTP/1.1 form (`name: value\r\n`);
 * for HTTP/2 that is the uncompressed size (Envoy counts HPACK frames).
 */

/** `name: value\r\n` per header of a Node/undici header record or flat [name, value, …] list, plus the blank line. */
export function headerBlockBytes(headers: Record<string, string | string[] | number | undefined> | ReadonlyArray<string | Buffer> | null | undefined): number {
  let n = 2;
  if (headers == null) return n;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) n += byteLength(headers[i]!) + byteLength(headers[i + 1]!) + 4;
    return n;
  }
  const record = headers as Record<string, string | string[] | number | undefined>;
  for (const name in record) {
    const v = record[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) n += name.length + byteLength(one) + 4;
    else n += name.length + byteLength(String(v)) + 4;
  }
  return n;
}

/** `METHOD target HTTP/1.1\r\n`. */
export function requestLineBytes(method: string, target: string): number {
  return method.length + byteLength(target) + 12;
}

/** `HTTP/1.1 200 OK\r\n`. */
export function statusLineBytes(statusText: string | undefined): number {
  return 15 + (statusText === undefined ? 0 : byteLength(statusText));
}

/** The size of a fixed body (string or bytes); undefined for a stream. */
export function fixedBodyBytes(body: unknown): number | undefined {
  if (body == null) return 0;
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return undefined;
}

/**
 * A header string's bytes on the wire: its length. Node's HTTP/1 parser reads
 * header bytes as latin1 strings (one character per byte) and Node and undici
 * write header strings as latin1, so the length is exact — and a UTF-8 count
 * would be both slower and wrong for a byte ≥ 0x80.
 */
function byteLength(v: string | Buffer): number {
  return v.length;
}
