// Endpoint channels follow the snapshot: a channel whose endpoint left is retired (no new call gets
// it), so pods coming and going do not grow the mesh (the grpc-js-xds leak users reported).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { createMesh } from '../../src/index.js';
import { calculate, CalculateClient } from '../../examples/grpc/proto.js';
import { grpcCalculateService, startGrpcServer, type GrpcTestServer } from '../helpers/grpc-servers.js';

test('30 pushes, each to a new endpoint: one endpoint channel stays open, every call answered by the current one', async (t) => {
  const mesh = await createMesh({ config: grpcCalculateService([]) });
  const client = new CalculateClient('calculate.default.svc.cluster.local:9000', credentials.createInsecure(), mesh.grpc.clientOptions());
  const servers: GrpcTestServer[] = [];
  t.after(async () => {
    client.close();
    await mesh.close();
    for (const s of servers) await s.close();
  });
  for (let i = 0; i < 30; i++) {
    const server = await startGrpcServer(`v${i}`);
    servers.push(server);
    await mesh.apply(grpcCalculateService([{ port: server.port, version: `v${i}` }]));
    const answer = await calculate(client, { x: 1, y: 2 });
    assert.equal(server.calls, 1, `call ${i} reached the endpoint of push ${i}`);
    assert.ok(answer !== undefined);
    assert.equal(mesh.grpc.endpointChannels, 1, `after push ${i}`);
  }
});
