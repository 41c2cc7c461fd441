/**
 * Access logs end to end, with real loopback servers and real files: the
 * meshConfig `accessLogFile` (TEXT and JSON), Telemetry `accessLogging` with
 * a filter and match mode, the config errors for what cannot be evaluated,
 * the same logs served over xDS by the control plane, and a sink nobody
 * reads (a FIFO) that drops and counts instead of blocking or growing; gRPC
 * calls on both sides.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { CalculateClient } from '../../examples/grpc/proto.js';
import { createControlPlane } from '../../src/control-plane/index.js';
import { createMesh, MeshConfigError, type Mesh } from '../../src/index.js';
import { AccessLogSink } from '../../src/telemetry/access-log-sink.js';
import { configDir } from '../control-plane/helpers.js';
import { grpcCalculateService, startGrpcServer } from '../helpers/grpc-servers.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateService, docs } from '../helpers/mesh-config.js';
import { closeServer, listen } from '../security/helpers.js';

const CLUSTER = 'outbound|8000||calculate.default.svc.cluster.local';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-access-log-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The file's lines once it has at least `count` (polls; bounded at ~10 s). */
async function linesOf(path: string, count: number): Promise<string[]> {
  let lines: string[] = [];
  for (let i = 0; i < 200; i++) {
    lines = (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    if (lines.length >= count) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${path}: expected ${count} lines, got ${lines.length}: ${lines.join('\n')}`);
}

/** A meshed calculate server (mesh.createServer) answering 500 on /fail. */
async function meshedServer(t: { after(fn: () => Promise<void>): void }, options: Parameters<typeof createMesh>[0]): Promise<{ mesh: Mesh; port: number }> {
  const mesh = await createMesh({ workload: { name: 'calculate', labels: { app: 'calculate', version: 'v1' } }, ...options });
  const server = mesh.createServer(((req: IncomingMessage, res: ServerResponse) => {
    res.statusCode = req.url?.startsWith('/fail') === true ? 500 : 200;
    res.setHeader('x-envoy-upstream-service-time', '3');
    res.end('ok');
  }) as never);
  const port = await listen(server);
  t.after(async () => {
    await closeServer(server);
    await mesh.close();
  });
  return { mesh, port };
}

test('meshConfig accessLogFile: Istio\'s text line for the outbound (CLIENT) and the inbound (SERVER) side of one call', async (t) => {
  const dir = await tempDir(t);
  const serverLog = join(dir, 'server.log');
  const clientLog = join(dir, 'client.log');
  const { port } = await meshedServer(t, { meshConfig: { accessLogFile: serverLog } });
  const client = await createMesh({ workload: { name: 'client' }, config: calculateService([{ port, version: 'v1' }]), meshConfig: { accessLogFile: clientLog } });
  t.after(() => client.close());

  const res = await client.fetch('http://calculate:8000/add?x=1', { headers: { 'user-agent': 'access-log-test', 'x-request-id': 'req-1' } });
  assert.equal(await res.text(), 'ok');

  const [out] = await linesOf(clientLog, 1);
  const ts = '\\[\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\]';
  assert.match(out!, new RegExp(`^${ts} "GET /add\\?x=1 HTTP/1\\.1" 200 - via_upstream - "-" 0 2 \\d+ 3 "-" "access-log-test" "req-1" "calculate:8000" "127\\.0\\.0\\.1:${port}" ${CLUSTER.replace(/\|/g, '\\|')} - calculate:8000 - - default$`));
  const [inbound] = await linesOf(serverLog, 1);
  assert.match(inbound!, new RegExp(`^${ts} "GET /add\\?x=1 HTTP/1\\.1" 200 - via_upstream - "-" 0 2 \\d+ 3 "-" "access-log-test" "req-1" "calculate:8000" "127\\.0\\.0\\.1:${port}" inbound\\|${port}\\|\\| - 127\\.0\\.0\\.1:${port} 127\\.0\\.0\\.1:\\d+ - default$`));
  // The logs are on the HCMs, as an xDS server would send them.
  const dump = client.configDump();
  const hcm = dump.listeners.find((l) => l.api_listener !== undefined)!.api_listener!.api_listener as { access_log?: Array<{ name: string; typed_config: { path: string } }> };
  assert.equal(hcm.access_log?.[0]?.name, 'envoy.access_loggers.file');
  assert.equal(hcm.access_log?.[0]?.typed_config.path, clientLog);
});

test('accessLogEncoding JSON: Istio\'s labels, typed values; a local reply logs its flag and details', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'client.json');
  const client = await createMesh({
    workload: { name: 'client' },
    // No endpoints: the call gets the mesh's 503 UH local reply.
    config: calculateService([]),
    meshConfig: { accessLogFile: log, accessLogEncoding: 'JSON' },
  });
  t.after(() => client.close());
  const res = await client.fetch('http://calculate:8000/none');
  assert.equal(res.status, 503);
  await res.text();
  const [line] = await linesOf(log, 1);
  const entry = JSON.parse(line!) as Record<string, unknown>;
  assert.equal(entry.response_code, 503);
  assert.equal(entry.response_flags, 'UH');
  assert.equal(entry.response_code_details, 'no_healthy_upstream');
  assert.equal(entry.method, 'GET');
  assert.equal(entry.path, '/none');
  assert.equal(entry.upstream_cluster, CLUSTER);
  assert.equal(entry.upstream_host, null, 'no endpoint was picked');
  assert.equal(typeof entry.duration, 'number');
  assert.equal(entry.protocol, 'HTTP/1.1');
});

test('Telemetry accessLogging: a provider with a filter, CLIENT mode only, a namespace that disables another provider', async (t) => {
  const dir = await tempDir(t);
  const errors = join(dir, 'errors.log');
  const all = join(dir, 'all.log');
  const meshConfig = {
    extensionProviders: [
      { name: 'errors', envoyFileAccessLog: { path: errors, logFormat: { labels: { code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%' } } } },
      { name: 'all', envoyFileAccessLog: { path: all, logFormat: { text: '%RESPONSE_CODE% %REQ(:PATH)%' } } },
    ],
  };
  const { port } = await meshedServer(t, {});
  // As istiod's mergeLogs: the most specific level that names providers decides which are in scope.
  const telemetry = `
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  accessLogging:
    - providers: [{ name: all }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: quiet, namespace: default }
spec:
  accessLogging:
    - providers: [{ name: errors }]
      match: { mode: CLIENT }
      filter: { expression: "response.code >= 400" }
    - providers: [{ name: all }]
      disabled: true
`;
  const client = await createMesh({ workload: { name: 'client' }, config: docs(calculateService([{ port, version: 'v1' }]), telemetry), meshConfig });
  t.after(() => client.close());
  for (const path of ['/ok', '/fail', '/ok', '/fail/again']) await (await client.fetch(`http://calculate:8000${path}`)).text();
  const lines = await linesOf(errors, 2);
  assert.deepEqual(lines.map((l) => JSON.parse(l) as unknown), [{ code: 500, path: '/fail' }, { code: 500, path: '/fail/again' }]);
  const dump = client.configDump();
  const outbound = dump.listeners.find((l) => l.api_listener !== undefined)!.api_listener!.api_listener as { access_log?: Array<{ typed_config: { path: string } }> };
  assert.deepEqual(outbound.access_log?.map((l) => l.typed_config.path), [errors], 'the namespace disabled `all`; `errors` is CLIENT only');
  const inbound = JSON.stringify(dump.listeners.find((l) => l.name === 'virtual_inbound'));
  assert.doesNotMatch(inbound, /access_log/, 'SERVER mode gets neither');
});

test('a filter or format meshlet cannot evaluate is refused with the field named; the old config keeps serving', async (t) => {
  const upstream = await startServer('v1');
  t.after(() => upstream.close());
  const mesh = await createMesh({ workload: { name: 'client' }, config: calculateService([{ port: upstream.port, version: 'v1' }]) });
  t.after(() => mesh.close());
  const bad = `
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  accessLogging:
    - providers: [{ name: envoy }]
      filter: { expression: "size(request.headers) > 3" }
`;
  await assert.rejects(mesh.apply(docs(calculateService([{ port: upstream.port, version: 'v1' }]), bad)), (err: unknown) => {
    assert.ok(err instanceof MeshConfigError);
    assert.equal(err.kind, 'Telemetry');
    assert.equal(err.resource, 'istio-system/mesh-default');
    assert.equal(err.path, 'spec.accessLogging[0].filter.expression');
    return true;
  });
  await assert.rejects(createMesh({ workload: { name: 'c2' }, meshConfig: { accessLogFile: '/dev/null', accessLogFormat: '%DYNAMIC_METADATA(x)%' } }), /accessLogFormat: command operator %DYNAMIC_METADATA\(x\)% is not supported/);
  await assert.rejects(createMesh({ workload: { name: 'c3' }, meshConfig: { accessLogEncoding: 'XML' as never } }), /meshConfig\.accessLogEncoding: must be TEXT or JSON/);
  assert.equal(await (await mesh.fetch('http://calculate:8000/')).text(), 'v1');
});

test('over xDS: the control plane puts the access log on the listeners it serves, and the SDK mesh writes it', { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'xds.log');
  const jsonLog = join(dir, 'xds.json');
  const upstream = await startServer('v1');
  const files = await configDir({
    'calculate.yaml': calculateService([{ port: upstream.port, version: 'v1' }]),
    'telemetry.yaml': `
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  accessLogging: [{ providers: [{ name: file }, { name: json }], filter: { expression: "request.headers['x-log'] == 'yes'" } }]
`,
  });
  const cp = await createControlPlane({
    config: files.dir, port: 0, host: '127.0.0.1', debounceMs: 20,
    meshConfig: { extensionProviders: [
      { name: 'file', envoyFileAccessLog: { path: log, logFormat: { text: '%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %UPSTREAM_CLUSTER%' } } },
      // JSON labels travel as a google.protobuf.Struct in the FileAccessLog.
      { name: 'json', envoyFileAccessLog: { path: jsonLog, logFormat: { labels: { code: '%RESPONSE_CODE%', path: '%REQ(:PATH)%' } } } },
    ] },
  });
  const mesh = await createMesh({ workload: { name: 'client', namespace: 'default', labels: { app: 'client' } }, xds: { server: `127.0.0.1:${cp.port}` } });
  t.after(async () => {
    await mesh.close();
    await cp.close();
    await files.remove();
    await upstream.close();
  });
  await (await mesh.fetch('http://calculate:8000/quiet')).text();
  await (await mesh.fetch('http://calculate:8000/logged', { headers: { 'x-log': 'yes' } })).text();
  const lines = await linesOf(log, 1);
  assert.deepEqual(lines, [`GET /logged 200 ${CLUSTER}`]);
  assert.deepEqual((await linesOf(jsonLog, 1)).map((l) => JSON.parse(l) as unknown), [{ code: 200, path: '/logged' }]);
});

test('a sink nobody reads (a FIFO): writes never block, memory stays bounded, drops are counted; requests keep flowing', { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  const fifo = join(dir, 'stuck.fifo');
  execFileSync('mkfifo', [fifo]);
  const sink = new AccessLogSink(fifo, 4096);
  const line = `${'x'.repeat(99)}\n`;
  for (let i = 0; i < 1000; i++) sink.write(line);
  assert.ok(sink.dropped >= 1000 - 4096 / line.length - 1, `dropped ${sink.dropped} of 1000 past the 4 KiB bound`);

  // The same through a mesh: its log file is the FIFO; every request still completes.
  const upstream = await startServer('v1');
  const mesh = await createMesh({
    workload: { name: 'client' }, config: calculateService([{ port: upstream.port, version: 'v1' }]),
    meshConfig: { accessLogFile: fifo }, telemetry: { accessLogBufferBytes: 2048 },
  });
  t.after(() => upstream.close());
  for (let i = 0; i < 50; i++) assert.equal(await (await mesh.fetch('http://calculate:8000/')).text(), 'v1');
  assert.ok(mesh.telemetry.accessLogSinks.dropped > 0, 'past 2 KiB of ~200-byte lines, the mesh drops and counts');
  // A reader frees the pending opens (libuv thread-pool threads) so the test process can exit.
  const reader = createReadStream(fifo);
  const got = new Promise<number>((resolve) => {
    let n = 0;
    reader.on('data', (c) => { n += c.length; });
    reader.on('close', () => resolve(n));
  });
  await sink.close();
  await mesh.close();
  assert.ok(await got > 0, 'what was buffered reaches the reader once there is one');
});

test('gRPC: one line per call on each side, HTTP/2 POST to the method path, the gRPC status in the filter', async (t) => {
  const dir = await tempDir(t);
  const serverLog = join(dir, 'grpc-server.log');
  const clientLog = join(dir, 'grpc-client.log');
  const format = '%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %GRPC_STATUS_NUMBER% %REQ(X-REQUEST-ID)% %UPSTREAM_CLUSTER%';
  const serverMesh = await createMesh({ workload: { name: 'calculate-v1', labels: { app: 'calculate', version: 'v1' } }, config: [], meshConfig: { accessLogFile: serverLog, accessLogFormat: format } });
  const upstream = await startGrpcServer('v1', { interceptors: [serverMesh.grpc.serverInterceptor] });
  const telemetry = `
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  accessLogging: [{ providers: [{ name: file }], filter: { expression: "response.grpc_status == 0" } }]
`;
  const clientMesh = await createMesh({
    workload: { name: 'client' },
    config: docs(grpcCalculateService([{ port: upstream.port, version: 'v1' }]), telemetry),
    meshConfig: { extensionProviders: [{ name: 'file', envoyFileAccessLog: { path: clientLog, logFormat: { text: format } } }] },
  });
  const client = new CalculateClient('calculate.default.svc.cluster.local:9000', credentials.createInsecure(), clientMesh.grpc.clientOptions());
  t.after(async () => {
    client.close();
    await clientMesh.close();
    await upstream.close();
    await serverMesh.close();
  });
  const md = new Metadata();
  md.set('x-request-id', 'grpc-1');
  await new Promise<void>((resolve, reject) => client.Calculate({ x: 1, y: 2 }, md, (err) => (err ? reject(err) : resolve())));
  assert.deepEqual(await linesOf(clientLog, 1), ['POST /calculate.Calculate/Calculate HTTP/2 200 0 grpc-1 outbound|9000||calculate.default.svc.cluster.local']);
  // grpc-js servers expose no local address: the inbound cluster is unknown ("-").
  assert.deepEqual(await linesOf(serverLog, 1), ['POST /calculate.Calculate/Calculate HTTP/2 200 0 grpc-1 -']);
});
