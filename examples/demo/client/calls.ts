/**
 * The client's outbound calls, all through its meshlet mesh: calculate for
 * the room and the result, then db (pet info) and image (the photo) for the
 * pet calculate answered with. Each call is recorded with its status, the
 * mesh's response flag and how long it took, so the page shows real numbers.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { STATUS_CODES } from 'node:http';
import { grpcToHttp } from '../../../src/grpc/index.js';
import type { Mesh } from '../../../src/index.js';
import { calculate as grpcCalculate, CalculateClient } from '../../grpc/proto.js';
import type { CalculateAnswer } from '../services/calculate.js';
import type { PetInfo } from '../services/db.js';
import { GRPC_PORT, meshHost, meshUrl } from '../topology.js';

/** One call through the mesh, as the page shows it. */
export interface CallRecord {
  service: 'calculate' | 'db' | 'image';
  path: string;
  /** HTTP status; 0 when the call failed without a response. */
  status: number;
  /** `x-meshlet-flags` of a local reply (UT, FI, UH …), when the mesh answered itself. */
  flags: string | undefined;
  /** Wall-clock time of the call including the body, ms. */
  ms: number;
  /** The calculate version that answered (cat-plus / dog-multi). */
  version?: string;
  /** The local reply's or the upstream's error text. */
  error?: string;
  /** `grpc` when the call was the gRPC `calculate.Calculate/Calculate` (status mapped to HTTP, `grpcStatus` kept). */
  protocol?: 'http' | 'grpc';
  grpcStatus?: number;
}

/** How the client calls calculate: HTTP (`GET /calculate`) or gRPC (`calculate.Calculate/Calculate`). */
export type CalculateProtocol = 'http' | 'grpc';

/** The result of calculate: the answer, or the error title the talk's page shows. */
export interface CalculateOutcome {
  call: CallRecord;
  answer?: CalculateAnswer;
  /** "Timeout Error" for 504/UT, "503 Service Unavailable" … otherwise. */
  errorTitle?: string;
}

/** Everything one page render needs. */
export interface PageView {
  x: number;
  y: number;
  /** Whether the request carried `version: dog` (dark release). */
  versionHeader: string | undefined;
  /** How calculate was called. */
  protocol: CalculateProtocol;
  calculate: CalculateOutcome;
  pet?: PetInfo;
  /** The photo as a data: URI (keeps the page one request and the SVG inert). */
  image?: string;
  calls: CallRecord[];
}

const grpcClients = new WeakMap<Mesh, CalculateClient>();

/** One gRPC client per mesh: its channel goes through `mesh.grpc.clientOptions()` (routing, policy, telemetry). */
function grpcClient(mesh: Mesh): CalculateClient {
  let client = grpcClients.get(mesh);
  if (!client) {
    client = new CalculateClient(`${meshHost('calculate')}:${GRPC_PORT}`, credentials.createInsecure(), mesh.grpc.clientOptions());
    grpcClients.set(mesh, client);
  }
  return client;
}

/** calculate over gRPC; the same VirtualService routes it (the `version` header travels as metadata). */
async function callCalculateGrpc(mesh: Mesh, x: number, y: number, versionHeader: string | undefined): Promise<CalculateOutcome> {
  const metadata = new Metadata();
  if (versionHeader) metadata.set('version', versionHeader);
  const path = '/calculate.Calculate/Calculate';
  const started = performance.now();
  try {
    const result = await grpcCalculate(grpcClient(mesh), { x, y }, metadata, { deadline: Date.now() + 60_000 });
    const cat = result.version === 'cat-plus';
    const answer: CalculateAnswer = {
      version: result.version, pet: cat ? 'cat' : 'dog', op: cat ? 'add' : 'multiply', symbol: cat ? '+' : '×',
      room: cat ? 'Cat and addition room' : 'Dog and multiplication room', x, y, result: result.value,
    };
    return { call: { service: 'calculate', path, status: 200, flags: undefined, ms: performance.now() - started, version: result.version, protocol: 'grpc', grpcStatus: 0 }, answer };
  } catch (err) {
    const e = err as ServiceError;
    const flags = e.metadata?.get('x-meshlet-flags')[0]?.toString();
    const call: CallRecord = { service: 'calculate', path, status: grpcToHttp(e.code ?? 2), flags, ms: performance.now() - started, error: e.details || e.message, protocol: 'grpc', grpcStatus: e.code };
    return { call, errorTitle: errorTitle(call) };
  }
}

/** Calls calculate through the mesh, forwarding the caller's `version` header (dark release). */
export async function callCalculate(mesh: Mesh, x: number, y: number, versionHeader: string | undefined, protocol: CalculateProtocol = 'http'): Promise<CalculateOutcome> {
  if (protocol === 'grpc') return callCalculateGrpc(mesh, x, y, versionHeader);
  const path = `/calculate?x=${encodeURIComponent(x)}&y=${encodeURIComponent(y)}`;
  const { call, body } = await timedCall(mesh, 'calculate', path, versionHeader ? { version: versionHeader } : undefined, 'text');
  if (call.status === 200) {
    const answer = JSON.parse(body as string) as CalculateAnswer;
    call.version = answer.version;
    return { call, answer };
  }
  return { call, errorTitle: errorTitle(call) };
}

/** Builds the whole page view: calculate first, then db and image in parallel for its pet. */
export async function buildView(mesh: Mesh, x: number, y: number, versionHeader: string | undefined, protocol: CalculateProtocol = 'http'): Promise<PageView> {
  const calculate = await callCalculate(mesh, x, y, versionHeader, protocol);
  const view: PageView = { x, y, versionHeader, protocol, calculate, calls: [calculate.call] };
  const pet = calculate.answer?.pet;
  if (!pet) return view;
  const [info, photo] = await Promise.all([
    timedCall(mesh, 'db', `/pets/${pet}`, undefined, 'text'),
    timedCall(mesh, 'image', `/pets/${pet}.svg`, undefined, 'bytes'),
  ]);
  view.calls.push(info.call, photo.call);
  if (info.call.status === 200) view.pet = JSON.parse(info.body as string) as PetInfo;
  if (photo.call.status === 200) view.image = `data:image/svg+xml;base64,${(photo.body as Buffer).toString('base64')}`;
  return view;
}

/** What the talk's page printed for a failed calculation. */
export function errorTitle(call: CallRecord): string {
  if (call.status === 504) return 'Timeout Error';
  if (call.status === 0) return 'Connection Error';
  return `${call.status} ${STATUS_CODES[call.status] ?? 'Error'}`;
}

async function timedCall(mesh: Mesh, service: CallRecord['service'], path: string, headers: Record<string, string> | undefined, as: 'text' | 'bytes'): Promise<{ call: CallRecord; body: string | Buffer | undefined }> {
  const started = performance.now();
  try {
    const res = await mesh.fetch(meshUrl(service) + path, headers ? { headers } : undefined);
    const body = as === 'text' ? await res.text() : Buffer.from(await res.arrayBuffer());
    const call: CallRecord = { service, path, status: res.status, flags: res.headers.get('x-meshlet-flags') ?? undefined, ms: performance.now() - started };
    if (res.status !== 200) call.error = String(body).slice(0, 200);
    return { call, body };
  } catch (err) {
    const call: CallRecord = { service, path, status: 0, flags: undefined, ms: performance.now() - started, error: (err as Error).message };
    return { call, body: undefined };
  }
}
