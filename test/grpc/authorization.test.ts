import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { credentials, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { createMesh } from '../../src/index.js';
import { calculate, CalculateClient, CalculateService, type Operands, type Result } from '../../examples/grpc/proto.js';

const denyCalculate = (action: 'DENY' | 'ALLOW', paths: string) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: calculate-policy, namespace: default }
spec:
  selector: { matchLabels: { app: calculate } }
  action: ${action}
  rules: [{ to: [{ operation: { paths: ${paths} } }] }]
`;

describe('AuthorizationPolicy on gRPC servers (mesh.grpc.serverInterceptor)', () => {
  it('answers PERMISSION_DENIED "RBAC: access denied" before the handler runs, and lets allowed calls through', async () => {
    const mesh = await createMesh({ workload: { name: 'calculate', namespace: 'default', labels: { app: 'calculate' } }, config: denyCalculate('DENY', '["/calculate.Calculate/Calculate"]') });
    let handled = 0;
    const server = new Server({ interceptors: [mesh.grpc.serverInterceptor] });
    server.addService(CalculateService, {
      Calculate: (call: ServerUnaryCall<Operands, Result>, cb: sendUnaryData<Result>) => {
        handled++;
        cb(null, { value: call.request.x + call.request.y, version: 'v1' } as Result);
      },
      Series: () => undefined, Fold: () => undefined, Pipe: () => undefined,
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const client = new CalculateClient(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      await assert.rejects(calculate(client, { x: 1, y: 2 } as Operands), (err: { code?: number; details?: string }) => {
        assert.equal(err.code, status.PERMISSION_DENIED);
        assert.equal(err.details, 'RBAC: access denied');
        return true;
      });
      assert.equal(handled, 0);
      await mesh.apply(denyCalculate('ALLOW', '["/calculate.Calculate/*"]'));
      const result = await calculate(client, { x: 1, y: 2 } as Operands);
      assert.equal(result.value, 3);
      assert.equal(handled, 1);
    } finally {
      client.close();
      server.forceShutdown();
      await mesh.close();
    }
  });
});
