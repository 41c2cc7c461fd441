// The agent's wire (src/http/agent-*.ts): the reader on its own — heads split anywhere, chunked bodies
// with extensions and trailers, pipelining, malformed input — then real node:http ClientRequests over the
// pipe through the mesh to loopback servers.
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { once } from 'node:events';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { Dispatcher } from 'undici';
import { AgentConnection, type AgentWireServer } from '../../src/http/agent-connection.js';
import { type MalformedStatus, type RequestHead, RequestReader, type RequestSink } from '../../src/http/agent-request-reader.js';
import { pipePair } from '../../src/http/pipe.js';
import { createMesh, type Mesh } from '../../src/index.js';
import { startServer } from '../helpers/http-servers.js';
import { calculateRoutes, calculateService, docs, meshService } from '../helpers/mesh-config.js';

/** Records what a reader delivers. */
class Recorder implements RequestSink {
  heads: RequestHead[] = [];
  bodies: string[] = [];
  ends = 0;
  malformed: Array<[MalformedStatus, string]> = [];
  readonly reader = new RequestReader(this);
  onRequestHead(head: RequestHead): void {
    this.heads.push(head);
    this.bodies.push('');
  }
  onRequestBody(chunk: Buffer): void {
    this.bodies[this.bodies.length - 1] += chunk.toString('latin1');
  }
  onRequestEnd(): void {
    this.ends++;
  }
  onMalformed(status: MalformedStatus, reason: string): void {
    this.malformed.push([status, reason]);
  }
  /** Feeds `input` cut at the given offsets. */
  feed(input: string, cuts: number[] = []): this {
    const bytes = Buffer.from(input, 'latin1');
    let from = 0;
    for (const at of [...cuts, bytes.length]) {
      this.reader.execute(bytes.subarray(from, at));
      from = at;
    }
    return this;
  }
}

const GET = 'GET /add?x=1 HTTP/1.1\r\nHost: calculate:8000\r\nX-Mixed-Case: A\r\nx-mixed-case: b\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n';

describe('agent wire: the request reader', () => {
  it('reads a head split at every offset the same way, keeping header case and order and removing connection headers', () => {
    for (let cut = 0; cut <= GET.length; cut++) {
      for (const cuts of [[cut], [cut, Math.min(GET.length, cut + 1), Math.min(GET.length, cut + 3)]]) {
        const r = new Recorder().feed(GET, cuts.filter((c, i, a) => i === 0 || c > a[i - 1]!));
        assert.equal(r.heads.length, 1, `cuts ${cuts}`);
        const head = r.heads[0]!;
        assert.deepEqual([head.method, head.target, head.host, head.keepAlive, head.contentLength], ['GET', '/add?x=1', 'calculate:8000', true, 0]);
        assert.deepEqual(head.headers, ['X-Mixed-Case', 'A', 'x-mixed-case', 'b', 'Accept', '*/*']);
        assert.equal(r.ends, 1);
      }
    }
  });

  it('decodes a chunked body with extensions and trailers, split anywhere', () => {
    const input = 'POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6 ; ext\r\n world\r\nA\r\n0123456789\r\n0\r\nChecksum: abc\r\nX-Other: 1\r\n\r\n';
    for (let cut = 1; cut < input.length; cut++) {
      const r = new Recorder().feed(input, [cut]);
      assert.deepEqual(r.malformed, [], `cut ${cut}`);
      assert.equal(r.heads[0]!.contentLength, -1);
      assert.equal(r.bodies[0], 'hello world0123456789', `cut ${cut}`);
      assert.equal(r.ends, 1, `cut ${cut}`);
    }
  });

  it('holds a pipelined request until the response before it is done', () => {
    const post = 'POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc';
    const r = new Recorder().feed(`${post}${GET}\r\n${GET}`);
    assert.deepEqual([r.heads.length, r.ends, r.bodies[0], r.reader.holding], [1, 1, 'abc', true]);
    r.reader.resume();
    assert.deepEqual([r.heads.length, r.ends, r.heads[1]!.target], [2, 2, '/add?x=1']);
    r.reader.resume(); // the empty line between requests is skipped (RFC 9112 §2.2)
    assert.deepEqual([r.heads.length, r.ends, r.reader.holding, r.reader.idle], [3, 3, false, true]);
  });

  it('reads expect: 100-continue, absolute-form targets and HTTP/1.0 keep-alive', () => {
    const r = new Recorder().feed('PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok');
    assert.deepEqual([r.heads[0]!.expectContinue, r.heads[0]!.headers, r.bodies[0]], [true, ['Content-Length', '2'], 'ok']);
    const abs = new Recorder().feed('GET http://calculate:8000/x?y HTTP/1.1\r\nHost: other\r\n\r\n');
    assert.deepEqual([abs.heads[0]!.host, abs.heads[0]!.target], ['calculate:8000', '/x?y']);
    const old = new Recorder().feed('GET / HTTP/1.0\r\n\r\n');
    assert.equal(old.heads[0]!.keepAlive, false);
    const kept = new Recorder().feed('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n');
    assert.equal(kept.heads[0]!.keepAlive, true);
  });

  const refused: Array<[string, string, MalformedStatus]> = [
    ['bare LF', 'GET / HTTP/1.1\nHost: h\n\n\r\n\r\n', 400],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  folded\r\n\r\n', 400],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : h\r\n\r\n', 400],
    ['content-length and transfer-encoding', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['two different content-lengths', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n', 400],
    ['a signed content-length', 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n', 400],
    ['a coding other than chunked', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    ['no host', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', 400],
    ['two hosts', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['a host with a path', 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 400],
    ['a control character in a value', 'GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n', 400],
    ['a bad method', 'G(T / HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['a space in the target', 'GET /a b HTTP/1.1\r\nHost: h\r\n\r\n', 400],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: h\r\n\r\n', 501],
    ['not HTTP', 'GET / SPDY/3\r\nHost: h\r\n\r\n', 400],
    ['a chunk size that is not hex', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
    ['chunk data longer than its size', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', 400],
    ['a chunk size past 2^52', 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000\r\n', 400],
    ['a head past 60 KiB', `GET / HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(61 * 1024)}\r\n\r\n`, 431],
  ];
  for (const [name, input, status] of refused) {
    it(`refuses ${name} with ${status}, whole or split, and reads nothing more`, () => {
      for (const cuts of [[], [Math.floor(input.length / 2)]]) {
        const r = new Recorder().feed(input + GET, cuts);
        assert.equal(r.malformed.length, 1, `${name}: ${JSON.stringify(r.malformed)}`);
        assert.equal(r.malformed[0]![0], status, r.malformed[0]![1]);
        assert.ok(r.reader.dead);
        assert.ok(r.heads.every((h) => h.target !== '/add?x=1'), 'the request after the refused bytes is not read');
      }
    });
  }
});

/** Reads a pipe end until the server ends it, then closes it. */
async function readAll(socket: Duplex): Promise<string> {
  let text = '';
  socket.on('data', (c: Buffer) => { text += c.toString('latin1'); });
  await once(socket, 'end');
  socket.end();
  return text;
}

/** A request through the mesh's agent, with the response body read as text. */
function call(url: string, options: RequestOptions, body?: (req: import('node:http').ClientRequest) => void): Promise<{ res: IncomingMessage; text: string; continued: boolean }> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, options, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ res, text, continued }));
      res.on('error', reject);
    });
    req.on('continue', () => { continued = true; });
    req.on('error', reject);
    if (body) body(req);
    else req.end();
  });
}

describe('agent wire: node:http through the mesh', () => {
  const base = 'http://calculate.default.svc.cluster.local:8000';
  async function meshWithEcho(t: import('node:test').TestContext, routes = ''): Promise<{ mesh: Mesh; seen: Array<{ method: string; headers: IncomingMessage['headers']; body: string }> }> {
    const seen: Array<{ method: string; headers: IncomingMessage['headers']; body: string }> = [];
    let failures = 0;
    const server = await startServer('echo', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('latin1');
        seen.push({ method: req.method!, headers: req.headers, body });
        if (req.url === '/fail-once' && failures++ === 0) return void res.writeHead(503).end();
        if (req.url === '/empty') return void res.writeHead(204).end();
        if (req.url === '/not-modified') return void res.writeHead(304, { etag: '"1"' }).end();
        if (req.url === '/cut') {
          res.writeHead(200, { 'content-length': 100_000 });
          res.write('only this much');
          setImmediate(() => res.destroy());
          return;
        }
        if (req.url === '/unsized') {
          res.write('part one, ');
          return void setImmediate(() => res.end('part two'));
        }
        const text = `${req.method} ${body.length} ${body.slice(0, 20)}`;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': text.length, 'X-Upstream-Case': 'kept' }).end(text);
      });
    });
    t.after(() => server.close());
    const endpoints = [{ port: server.port, version: 'v1' }];
    const secure = meshService('secure', endpoints, 443, 'HTTP'); // for mesh.httpsAgent: https:// without a port is 443
    const mesh = await createMesh({ config: docs(calculateService(endpoints), secure, ...(routes ? [routes] : [])) });
    t.after(() => mesh.close());
    return { mesh, seen };
  }

  it('carries small and large, sized and chunked bodies, and retries replay a small one', async (t) => {
    const { mesh, seen } = await meshWithEcho(t, calculateRoutes(`
    - route: [{ destination: { host: calculate } }]
      retries: { attempts: 2, retryOn: 5xx }`));
    const agent = mesh.httpAgent;
    const small = await call(`${base}/fail-once`, { agent, method: 'POST', headers: { 'content-length': 5 } }, (req) => req.end('hello'));
    assert.deepEqual([small.res.statusCode, small.text], [200, 'POST 5 hello']);
    assert.deepEqual(seen.slice(-2).map((s) => s.body), ['hello', 'hello'], 'the retry replayed the body');
    const big = 'x'.repeat(1024 * 1024);
    const sized = await call(`${base}/`, { agent, method: 'PUT', headers: { 'content-length': big.length } }, (req) => req.end(big));
    assert.equal(sized.text, `PUT ${big.length} ${'x'.repeat(20)}`);
    const chunked = await call(`${base}/`, { agent, method: 'POST' }, (req) => {
      req.write('one,');
      req.write(big);
      req.end(',three');
    });
    assert.equal(chunked.text, `POST ${big.length + 10} one,${'x'.repeat(16)}`);
    assert.equal(seen.at(-1)!.body, `one,${big},three`);
    assert.equal(seen.at(-1)!.headers['x-meshlet-agent-context'], undefined, 'the context id header is not forwarded');
  });

  it('answers expect: 100-continue itself and does not forward it', async (t) => {
    const { mesh, seen } = await meshWithEcho(t);
    const r = await call(`${base}/`, { agent: mesh.httpAgent, method: 'POST', headers: { expect: '100-continue', 'content-length': 4 } }, (req) => {
      req.once('continue', () => req.end('body'));
      req.flushHeaders();
    });
    assert.deepEqual([r.continued, r.text], [true, 'POST 4 body']);
    assert.equal(seen.at(-1)!.headers.expect, undefined);
  });

  it('HEAD, 204 and 304 have no body, and the connection is reused after each', async (t) => {
    const { mesh } = await meshWithEcho(t);
    const agent = mesh.httpAgent; // one request at a time: the agent reuses its free pipe
    const head = await call(`${base}/`, { agent, method: 'HEAD' });
    assert.deepEqual([head.res.statusCode, head.text, head.res.headers['content-length']], [200, '', String('HEAD 0 '.length)]);
    const empty = await call(`${base}/empty`, { agent });
    assert.deepEqual([empty.res.statusCode, empty.text, empty.res.headers['content-length']], [204, '', undefined]);
    const notModified = await call(`${base}/not-modified`, { agent });
    assert.deepEqual([notModified.res.statusCode, notModified.text, notModified.res.headers.etag], [304, '', '"1"']);
    const after = await call(`${base}/`, { agent });
    assert.deepEqual([after.text, after.res.headers['x-upstream-case'], after.res.headers['transfer-encoding']], ['GET 0 ', 'kept', undefined]);
    assert.ok((after.res as IncomingMessage & { req: { reusedSocket: boolean } }).req.reusedSocket, 'one pipe for all four requests');
    const unsized = await call(`${base}/unsized`, { agent });
    assert.deepEqual([unsized.text, unsized.res.headers['transfer-encoding']], ['part one, part two', 'chunked']);
  });

  it('a request with connection: close gets connection: close and the pipe closes after it', async (t) => {
    const { mesh } = await meshWithEcho(t);
    const r = await call(`${base}/`, { agent: mesh.httpAgent, headers: { connection: 'close' } });
    assert.deepEqual([r.text, r.res.headers.connection], ['GET 0 ', 'close']);
    if (!r.res.socket.destroyed) await once(r.res.socket, 'close');
  });

  it('an upstream that fails mid-response resets the client, which sees an error and not a short body', async (t) => {
    const { mesh } = await meshWithEcho(t);
    await assert.rejects(call(`${base}/cut`, { agent: mesh.httpAgent }), (err: Error & { code?: string }) => ['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE'].includes(err.code ?? '') || /aborted|hang up/.test(err.message));
  });

  it('mesh.httpsAgent dispatches to the https origin (port 443 without one in the URL)', async (t) => {
    const { mesh, seen } = await meshWithEcho(t);
    const r = await call('https://secure.default.svc.cluster.local/', { agent: mesh.httpsAgent });
    assert.deepEqual([r.res.statusCode, r.text], [200, 'GET 0 ']);
    assert.equal(seen.at(-1)!.headers.host, 'secure.default.svc.cluster.local');
  });

  it('malformed bytes on the pipe get 400 with DPE and a close; pipelined requests are answered in order', async (t) => {
    const { mesh } = await meshWithEcho(t);
    const bad = (mesh.httpAgent as unknown as { createConnection(): Duplex }).createConnection();
    const badReply = readAll(bad);
    bad.write('GET / HTTP/1.1\r\nHost: calculate.default.svc.cluster.local:8000\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
    const text = await badReply;
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(text, /\r\nx-meshlet-flags: DPE\r\n/);
    assert.match(text, /\r\nconnection: close\r\n/);

    const pipe = (mesh.httpAgent as unknown as { createConnection(): Duplex }).createConnection();
    const replies = readAll(pipe);
    const host = 'Host: calculate.default.svc.cluster.local:8000\r\n';
    pipe.write(`POST /first HTTP/1.1\r\n${host}Content-Length: 3\r\n\r\nabcGET /second HTTP/1.1\r\n${host}\r\nGET /third HTTP/1.1\r\n${host}Connection: close\r\n\r\n`);
    const all = await replies;
    const responses = all.split(/(?=HTTP\/1\.1 )/);
    assert.deepEqual(responses.map((r) => r.slice(0, 15)), ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    assert.deepEqual(responses.map((r) => r.slice(r.indexOf('\r\n\r\n') + 4)), ['POST 3 abc', 'GET 0 ', 'GET 0 ']);
    assert.match(responses[2]!, /\r\nconnection: close\r\n/);
  });
});

/** A dispatcher that streams `total` bytes as fast as the handler takes them, recording every pause. */
class Firehose extends Dispatcher {
  pushed = 0;
  pauses = 0;
  constructor(private readonly total: number) {
    super();
  }
  override dispatch(_opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const h = handler as unknown as { onConnect(a: () => void): void; onHeaders(s: number, r: Buffer[], resume: () => void, t: string): boolean; onData(c: Buffer): boolean; onComplete(t: null): void };
    const chunk = Buffer.alloc(16 * 1024, 'z');
    const pump = (): void => {
      while (this.pushed < this.total) {
        this.pushed += chunk.length;
        if (!h.onData(chunk)) {
          this.pauses++;
          return;
        }
      }
      h.onComplete(null);
    };
    h.onConnect(() => undefined);
    h.onHeaders(200, [Buffer.from('content-length'), Buffer.from(String(this.total))], pump, 'OK');
    pump();
    return true;
  }
}

describe('agent wire: back-pressure', () => {
  it('a client that does not read pauses the dispatcher; reading again resumes it', async () => {
    const total = 8 * 1024 * 1024;
    const firehose = new Firehose(total);
    const wire: AgentWireServer = { dispatcher: firehose, context: new AsyncLocalStorage(), closing: false, takeContext: () => undefined, forget: () => undefined };
    const agent = new HttpAgent({ keepAlive: true });
    (agent as unknown as { createConnection: () => Duplex }).createConnection = () => {
      const [client, server] = pipePair();
      new AgentConnection(wire, server, 'http');
      return client;
    };
    const res = await new Promise<IncomingMessage>((resolve, reject) => httpRequest('http://wire.test/', { agent }, resolve).on('error', reject).end());
    res.pause();
    // Wait (bounded) for the first pause: the pipe filled while nobody read.
    for (let i = 0; i < 1000 && firehose.pauses === 0; i++) await new Promise((r) => setImmediate(r));
    assert.ok(firehose.pauses >= 1);
    assert.ok(firehose.pushed < total / 4, `paused after ${firehose.pushed} of ${total} bytes`);
    let received = 0;
    res.on('data', (c: Buffer) => { received += c.length; });
    res.resume();
    await once(res, 'end');
    assert.equal(received, total);
    assert.equal(firehose.pushed, total, 'resumed to the end');
    agent.destroy();
  });
});
