/**
 * The simulated ADS clients of bench/control-plane.ts, run in a worker thread
 * so that their decoding and ACKs do not share the control plane's event loop:
 * the push latency measured is the server's, not 1,000 clients' CPU queued
 * behind it (the machine still shares its cores). gRPC streams over bare
 * HTTP/2 sessions (grpc-js clients with `--grpc-js-clients`) that subscribe
 * by name as gRPC's A27 client does and ACK everything; arrival times are
 * wall-clock (timeOrigin + now) so the main thread can compare them with the
 * moment it wrote the file.
 */
import * as grpc from '@grpc/grpc-js';
import * as http2 from 'node:http2';
import { parentPort, workerData } from 'node:worker_threads';
import { loadGrpcPackage } from '../src/xds/protos.js';
import { buildNode } from '../src/xds/node.js';

/** What the main thread hands the worker. */
export interface ClientsSetup {
  port: number;
  protocol: 'sotw' | 'delta';
  channels: number;
  /** Streams through grpc-js clients instead of bare HTTP/2 sessions. */
  grpcJs: boolean;
  /** Per client: its namespace and its subscription by type URL ([] = wildcard). */
  clients: Array<{ namespace: string; subs: Record<string, string[]> }>;
}

/** Messages between the threads. */
export type ToWorker = { cmd: 'round'; typeUrl: string } | { cmd: 'stop' };
export type FromWorker =
  | { event: 'initial'; ms: number }
  | { event: 'round'; arrivals: number[]; bytes: number; /** the clients' thread busy from the round's start to the last arrival */ busyMs: number }
  | { event: 'stopped' };

const wallNow = () => performance.timeOrigin + performance.now();

/**
 * Reads version_info (1), type_url (4) and nonce (5) of a DiscoveryResponse, skipping the resources;
 * a DeltaDiscoveryResponse has system_version_info, type_url and nonce under the same numbers.
 */
function peek(buf: Buffer): { version: string; typeUrl: string; nonce: string; bytes: number } {
  let pos = 0;
  const out = { version: '', typeUrl: '', nonce: '', bytes: buf.length };
  const varint = (): number => {
    let result = 0, shift = 0, b: number;
    do { b = buf[pos++]!; result += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
    return result;
  };
  while (pos < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8), wire = tag & 7;
    if (wire === 0) { varint(); continue; }
    if (wire !== 2) throw new Error(`unexpected wire type ${wire}`);
    const len = varint();
    const text = field === 1 || field === 4 || field === 5 ? buf.toString('utf8', pos, pos + len) : '';
    if (field === 1) out.version = text;
    else if (field === 4) out.typeUrl = text;
    else if (field === 5) out.nonce = text;
    pos += len;
  }
  return out;
}

/**
 * An ACK, written by hand — DiscoveryRequest: version_info = 1, resource_names = 3, type_url = 4,
 * response_nonce = 5; DeltaDiscoveryRequest: type_url = 2, response_nonce = 6. 1,000 clients ACK every
 * response in one thread, and protobufjs's fromObject + encode per ACK was worker CPU that real clients,
 * each on its own, do not queue behind one another; so is re-encoding the same type URL and names each
 * time (`fixed`: those fields, encoded once per client and type).
 */
function encodeAck(fixed: Buffer, nonce: string, sotwVersion?: string): Buffer {
  const head = sotwVersion === undefined ? Buffer.alloc(0) : field(0x0a, sotwVersion);
  const n = field(sotwVersion === undefined ? 0x32 : 0x2a, nonce);
  return Buffer.concat([head, fixed, n], head.length + fixed.length + n.length);
}

/** The fields of a client's ACKs of one type that never change: its names (SotW) and the type URL. */
function fixedAckFields(protocol: 'sotw' | 'delta', typeUrl: string, names: readonly string[]): Buffer {
  if (protocol === 'delta') return field(0x12, typeUrl);
  return Buffer.concat([...names.map((name) => field(0x1a, name)), field(0x22, typeUrl)]);
}

/** A length-delimited field: one-byte tag, varint length, the UTF-8 bytes. */
function field(tag: number, text: string): Buffer {
  const length = Buffer.byteLength(text, 'utf8');
  const head: number[] = [tag];
  for (let n = length; ; n = Math.floor(n / 128)) {
    if (n < 0x80) { head.push(n); break; }
    head.push((n & 0x7f) | 0x80);
  }
  const out = Buffer.allocUnsafe(head.length + length);
  out.set(head, 0);
  out.write(text, head.length, 'utf8');
  return out;
}

/** One client's ADS stream: whole messages in, whole messages out. */
interface SimStream {
  write(message: Buffer): void;
  onMessage(listener: (message: Buffer) => void): void;
  cancel(): void;
}

/** A stream through a grpc-js client (`--grpc-js-clients`): what a Node client pays per message. */
function grpcJsStream(channel: grpc.Client, path: string): SimStream {
  const identity = (b: Buffer) => b;
  const stream = channel.makeBidiStreamRequest(path, identity, identity);
  stream.on('error', () => {});
  return { write: (m) => stream.write(m), onMessage: (l) => stream.on('data', l), cancel: () => stream.cancel() };
}

/**
 * A gRPC stream over a bare HTTP/2 session: 5-byte length-prefixed messages
 * and nothing else — the same bytes on the wire as a grpc-js client, without
 * its per-message call layers, which 1,000 clients in one thread pay one after
 * another while real clients pay them each on their own CPU.
 */
function http2Stream(session: http2.ClientHttp2Session, path: string): SimStream {
  const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
  let listener: (message: Buffer) => void = () => {};
  let chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    size += chunk.length;
    while (size >= 5) {
      if (chunks[0]!.length < 5) chunks = [Buffer.concat(chunks)];
      const length = chunks[0]!.readUInt32BE(1);
      if (size < 5 + length) break;
      const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      listener(all.subarray(5, 5 + length));
      const rest = all.subarray(5 + length);
      chunks = rest.length > 0 ? [rest] : [];
      size = rest.length;
    }
  });
  req.on('error', () => {});
  return {
    write: (m) => {
      const frame = Buffer.allocUnsafe(5 + m.length);
      frame[0] = 0;
      frame.writeUInt32BE(m.length, 1);
      m.copy(frame, 5);
      req.write(frame);
    },
    onMessage: (l) => { listener = l; },
    cancel: () => req.close(http2.constants.NGHTTP2_CANCEL),
  };
}

/**
 * One HTTP/2 connection for 100 simulated clients, with the flow-control
 * windows of 100 connections: real clients each have their own connection
 * window (Envoy's defaults are 256 MiB), so 100 of them sharing HTTP/2's
 * 64 KiB default would throttle a push on WINDOW_UPDATE round trips that no
 * real client waits for.
 */
function connectSession(url: string): http2.ClientHttp2Session {
  const session = http2.connect(url, { settings: { initialWindowSize: WINDOW } });
  session.on('connect', () => session.setLocalWindowSize(WINDOW));
  return session;
}
const WINDOW = 16 * 1024 * 1024;

/**
 * ACKs are written once a burst of messages is over (no message for 1 ms): a
 * real client's ACK costs its own CPU, not the next client's arrival time,
 * which it would in one thread if each ACK were written before the next
 * message is read. The control plane gets them a few ms later; it does not
 * wait for them to push (nothing here measures their arrival).
 */
const acks: Array<[SimStream, Buffer]> = [];
let lastMessageAt = 0;
let flushTimer: NodeJS.Timeout | undefined;
function ack(stream: SimStream, message: Buffer): void {
  acks.push([stream, message]);
  lastMessageAt = performance.now();
  flushTimer ??= setTimeout(flushAcks, 1);
}
function flushAcks(): void {
  if (performance.now() - lastMessageAt < 1) {
    flushTimer = setTimeout(flushAcks, 1);
    return;
  }
  flushTimer = undefined;
  for (const [stream, message] of acks.splice(0)) stream.write(message);
}

interface SimClient {
  versions: Map<string, string>;
  stream: SimStream;
}

/** The push being measured: when each client got its response of `typeUrl`. */
interface Round {
  typeUrl: string;
  arrivals: Array<number | undefined>;
  remaining: number;
  elu: ReturnType<typeof performance.eventLoopUtilization>;
}

function run(setup: ClientsSetup): void {
  const port = parentPort!;
  const { protocol } = setup;
  const pkg = loadGrpcPackage(['envoy/service/discovery/v3/ads.proto']) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const service = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service;
  const def = protocol === 'delta' ? service.DeltaAggregatedResources! : service.StreamAggregatedResources!;
  const target = `127.0.0.1:${setup.port}`;
  const channels = Array.from({ length: setup.channels }, (_, i) => setup.grpcJs
    ? new grpc.Client(target, grpc.credentials.createInsecure(), { 'bench.channel': i } as grpc.ChannelOptions)
    : connectSession(`http://${target}`));
  const open = (c: number): SimStream => {
    const channel = channels[c % channels.length]!;
    return channel instanceof grpc.Client ? grpcJsStream(channel, def.path) : http2Stream(channel, def.path);
  };
  const clients: SimClient[] = [];
  let round: Round | undefined;
  let initialDone = 0;
  let bytes = 0;
  const tStart = performance.now();
  setup.clients.forEach(({ namespace, subs }, c) => {
    const stream = open(c);
    const sim: SimClient = { versions: new Map(), stream };
    clients.push(sim);
    const fixed = new Map(Object.entries(subs).map(([typeUrl, names]) => [typeUrl, fixedAckFields(protocol, typeUrl, names)]));
    stream.onMessage((message) => {
      const res = peek(message);
      const first = !sim.versions.has(res.typeUrl);
      sim.versions.set(res.typeUrl, res.version);
      if (round?.typeUrl === res.typeUrl && round.arrivals[c] === undefined) {
        round.arrivals[c] = wallNow();
        if (--round.remaining === 0) finish(round);
      }
      if (initialDone === clients.length) bytes += res.bytes;
      ack(stream, encodeAck(fixed.get(res.typeUrl)!, res.nonce, protocol === 'sotw' ? res.version : undefined));
      if (first && sim.versions.size === 4 && ++initialDone === setup.clients.length) {
        port.postMessage({ event: 'initial', ms: performance.now() - tStart } satisfies FromWorker);
      }
    });
    const node = buildNode({ name: `client-${c}`, namespace, labels: { app: `client-${c}` }, address: '127.0.0.1', instanceName: `client-${c}` });
    let firstReq = true;
    for (const [typeUrl, resource_names] of Object.entries(subs)) {
      const wildcardType = resource_names.length === 0;
      stream.write(def.requestSerialize(protocol === 'delta'
        ? { ...(firstReq && { node }), type_url: typeUrl, resource_names_subscribe: wildcardType ? ['*'] : resource_names }
        : { ...(firstReq && { node }), type_url: typeUrl, resource_names }));
      firstReq = false;
    }
  });

  port.on('message', (msg: ToWorker) => {
    if (msg.cmd === 'stop') {
      for (const c of clients) c.stream.cancel();
      for (const ch of channels) ch.close();
      port.postMessage({ event: 'stopped' } satisfies FromWorker);
      return;
    }
    bytes = 0;
    round = { typeUrl: msg.typeUrl, arrivals: new Array(clients.length), remaining: clients.length, elu: performance.eventLoopUtilization() };
  });

  /** Every client has the round's response: report, after a moment for the rest of the push (the other type of an EDS round) to arrive before counting bytes. */
  function finish(done: Round): void {
    round = undefined;
    const busy = performance.eventLoopUtilization(done.elu);
    setTimeout(() => port.postMessage({ event: 'round', arrivals: done.arrivals as number[], bytes, busyMs: busy.active } satisfies FromWorker), 50);
  }
}

run(workerData as ClientsSetup);
