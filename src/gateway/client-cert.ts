/**
 * `x-forwarded-client-cert` as Envoy writes it for SANITIZE_SET and
 * APPEND_FORWARD (`mutateXfccRequestHeader` in Envoy's
 * conn_manager_utility.cc) with the details istiod asks for on gateways
 * (`set_current_client_cert_details`: Subject, Cert, URI, DNS):
 *
 *   By=<our URI SAN>…;Hash=<sha256 of the client cert>;Cert="<url-encoded PEM>";Subject="<RFC 2253>";URI=<client URI SAN>…;DNS=<client DNS SAN>…
 *
 * Computed once per TLS connection (every request on it has the same peer).
 */
import { createHash, type X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

const perConnection = new WeakMap<Socket, string | null>();

/**
 * The XFCC element for the client certificate of `socket`, or undefined when
 * the connection is not TLS or the client presented no certificate (Envoy
 * then removes the header whatever the mode, except ALWAYS_FORWARD_ONLY).
 */
export function clientCertDetails(socket: Socket): string | undefined {
  let value = perConnection.get(socket);
  if (value === undefined) {
    value = (socket as TLSSocket).encrypted ? computeSafely(socket as TLSSocket) : null;
    perConnection.set(socket, value);
  }
  return value ?? undefined;
}

/** A certificate Node cannot render yields no details: the header is then removed, never trusted. */
function computeSafely(socket: TLSSocket): string | null {
  try {
    return compute(socket);
  } catch {
    return null;
  }
}

function compute(socket: TLSSocket): string | null {
  const peer = socket.getPeerX509Certificate?.();
  if (peer === undefined) return null;
  const parts: string[] = [];
  const local = socket.getX509Certificate?.();
  for (const uri of sans(local, 'URI')) parts.push(`By=${uri}`);
  parts.push(`Hash=${createHash('sha256').update(peer.raw).digest('hex')}`);
  parts.push(`Cert="${urlEncode(peer.toString())}"`);
  parts.push(`Subject="${rfc2253(peer.subject)}"`);
  const uris = sans(peer, 'URI');
  // Envoy keeps the key when the certificate has no URI SAN.
  if (uris.length === 0) parts.push('URI=');
  for (const uri of uris) parts.push(`URI=${uri}`);
  for (const dns of sans(peer, 'DNS')) parts.push(`DNS=${dns}`);
  return parts.join(';');
}

/**
 * SANs of one type from Node's `subjectAltName` rendering (`DNS:a, URI:b`;
 * values with separators are JSON-quoted since Node 17).
 */
function sans(cert: X509Certificate | undefined, type: 'URI' | 'DNS'): string[] {
  const text = cert?.subjectAltName;
  if (!text) return [];
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) break;
    let value: string;
    let next: number;
    if (text.charCodeAt(colon + 1) === 34 /* " */) {
      next = closingQuote(text, colon + 2) + 1;
      value = unquote(text.slice(colon + 1, next));
    } else {
      next = text.indexOf(', ', colon);
      if (next === -1) next = text.length;
      value = text.slice(colon + 1, next);
    }
    if (text.slice(i, colon) === type) out.push(value);
    i = next + 2;
  }
  return out;
}

function unquote(quoted: string): string {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return quoted;
  }
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 92 /* \ */) i++;
    else if (c === 34) return i;
  }
  return text.length - 1;
}

/**
 * Node renders a subject one RDN per line, most significant first (undefined
 * when empty, as in Istio workload certificates); Envoy prints RFC 2253:
 * reversed, comma-separated, escaped as Node already escapes.
 */
function rfc2253(subject: string | undefined): string {
  if (!subject) return '';
  return subject.split('\n').reverse().join(',');
}

/** Envoy's `PercentEncoding::urlEncode`: everything but RFC 3986 unreserved characters is %XX. */
function urlEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
