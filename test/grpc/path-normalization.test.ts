/**
 * gRPC servers and path tricks (issue #21): grpc-js dispatches a call on the
 * exact `:path` it registered (server.js `_retrieveHandler`, a Map lookup)
 * before any interceptor runs, and the interceptor authorizes on that same
 * registered path. A path that is not byte-for-byte a method never reaches a
 * handler — it ends UNIMPLEMENTED — so there is nothing to normalize.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { describe, it } from 'node:test';
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { createMesh } from '../../src/index.js';
import { CalculateService, type Operands, type Result } from '../../examples/grpc/proto.js';

/** Sends one gRPC request with a raw `:path` (empty message) and returns its grpc-status. */
function rawGrpc(port: number, path: string): Promise<number> {
  const session = connect(`http://127.0.0.1:${port}`);
  return new Promise<number>((resolve, reject) => {
    session.once('error', reject);
    const req = session.request({ ':path': path, ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' });
    let code: number | undefined;
    const read = (h: Record<string, unknown>) => { if (h['grpc-status'] !== undefined) code = Number(h['grpc-status']); };
    req.on('response', read);
    req.on('trailers', read);
    req.on('data', () => undefined);
    req.on('end', () => resolve(code ?? -1));
    req.on('error', reject);
    req.end(Buffer.from([0, 0, 0, 0, 0]));
  }).finally(() => session.close());
}

describe('gRPC server and path normalization', () => {
  it('only the exact method path reaches the handler: dot segments, escapes and backslashes end UNIMPLEMENTED; the exact one is denied', async () => {
    const mesh = await createMesh({ workload: { name: 'calculate', namespace: 'default', labels: { app: 'calculate' } }, config: `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-calculate, namespace: default }
spec: { selector: { matchLabels: { app: calculate } }, action: DENY, rules: [{ to: [{ operation: { paths: ["/calculate.Calculate/Calculate"] } }] }] }
` });
    let handled = 0;
    const server = new Server({ interceptors: [mesh.grpc.serverInterceptor] });
    server.addService(CalculateService, {
      Calculate: (_call: ServerUnaryCall<Operands, Result>, cb: sendUnaryData<Result>) => { handled++; cb(null, { value: 0, version: 'v1' } as Result); },
      Series: () => undefined, Fold: () => undefined, Pipe: () => undefined,
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    try {
      for (const path of ['/./calculate.Calculate/Calculate', '/x/../calculate.Calculate/Calculate', '/%63alculate.Calculate/Calculate', '//calculate.Calculate/Calculate', '/calculate.Calculate%2FCalculate', '/calculate.Calculate\\Calculate']) {
        assert.equal(await rawGrpc(port, path), status.UNIMPLEMENTED, path);
      }
      assert.equal(await rawGrpc(port, '/calculate.Calculate/Calculate'), status.PERMISSION_DENIED);
      assert.equal(handled, 0);
    } finally {
      server.forceShutdown();
      await mesh.close();
    }
  });
});
