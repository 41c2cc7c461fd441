/**
 * The two ADS wire protocols as the client builds and reads them (ads-wire.ts),
 * and how a bootstrap selects Delta.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshConfigError } from '../../src/errors.js';
import { buildRequest, readResponse, replacesAll, type WireState } from '../../src/xds/ads-wire.js';
import { parseBootstrap } from '../../src/xds/bootstrap.js';
import { AdsClient } from '../../src/xds/ads-client.js';
import { XDS_TYPES } from '../../src/xds/resources.js';

const [LDS, RDS] = XDS_TYPES as [typeof XDS_TYPES[0], typeof XDS_TYPES[0]];

function state(over: Partial<WireState> = {}): WireState {
  return { type: RDS, wildcard: false, names: new Set(['b', 'a']), version: 'v1', nonce: '', ackPending: false, versions: new Map(), sentNames: undefined, ...over };
}

test('delta requests: the first subscribes everything and announces held versions; later ones send only the difference', () => {
  const s = state({ versions: new Map([['a', 'h1']]) });
  const node = { id: 'n' };
  assert.deepEqual(buildRequest('DELTA_GRPC', s, node, undefined), {
    type_url: RDS.typeUrl, node, resource_names_subscribe: ['a', 'b'], resource_names_unsubscribe: [], initial_resource_versions: { a: 'h1' },
  });
  // a response arrived: the ACK carries its nonce and no subscription change
  s.nonce = '7';
  s.ackPending = true;
  assert.deepEqual(buildRequest('DELTA_GRPC', s, undefined, undefined), { type_url: RDS.typeUrl, response_nonce: '7', resource_names_subscribe: [], resource_names_unsubscribe: [] });
  // a later subscription change is spontaneous: no nonce
  s.names = new Set(['b', 'c']);
  assert.deepEqual(buildRequest('DELTA_GRPC', s, undefined, undefined), { type_url: RDS.typeUrl, resource_names_subscribe: ['c'], resource_names_unsubscribe: ['a'] });
  // a NACK names the nonce and carries the error
  s.nonce = '8';
  s.ackPending = true;
  const nack = buildRequest('DELTA_GRPC', s, undefined, 'RouteConfiguration b: bad');
  assert.equal(nack.response_nonce, '8');
  assert.deepEqual(nack.error_detail, { code: 3, message: 'RouteConfiguration b: bad' });
});

test('delta requests: wildcard is an explicit "*", and leaving it for names unsubscribes "*"', () => {
  const s = state({ type: LDS, wildcard: true, names: new Set() });
  assert.deepEqual(buildRequest('DELTA_GRPC', s, undefined, undefined).resource_names_subscribe, ['*']);
  s.wildcard = false;
  s.names = new Set(['x:80', 'xds.istio.io/grpc/lds/inbound/0.0.0.0:9000']);
  const r = buildRequest('DELTA_GRPC', s, undefined, undefined);
  assert.deepEqual(r.resource_names_subscribe, ['x:80', 'xds.istio.io/grpc/lds/inbound/0.0.0.0:9000']);
  assert.deepEqual(r.resource_names_unsubscribe, ['*']);
});

test('SotW requests are unchanged: the whole subscription, the accepted version and the last nonce', () => {
  const s = state({ nonce: '3' });
  assert.deepEqual(buildRequest('GRPC', s, undefined, undefined), { type_url: RDS.typeUrl, version_info: 'v1', resource_names: ['a', 'b'], response_nonce: '3' });
  assert.equal(replacesAll('GRPC', LDS), true);
  assert.equal(replacesAll('DELTA_GRPC', LDS), false, 'a delta response never replaces the whole set');
});

test('delta responses: per-resource versions, removed names, and the nonce standing in for an empty system version', () => {
  const any = { type_url: RDS.typeUrl, value: new Uint8Array([1]) };
  const u = readResponse('DELTA_GRPC', { type_url: RDS.typeUrl, nonce: '4', resources: [{ name: 'a', version: 'h2', resource: any }], removed_resources: ['b'] });
  assert.deepEqual(u, { typeUrl: RDS.typeUrl, version: '4', nonce: '4', resources: [{ any, version: 'h2' }], removed: ['b'] });
  assert.equal(readResponse('DELTA_GRPC', { type_url: RDS.typeUrl, nonce: '4', system_version_info: 'sv' }).version, 'sv');
});

test('a bootstrap selects Delta with server_features ["delta_grpc"]; a malformed list is a MeshConfigError naming the field', () => {
  const text = (features: unknown) => JSON.stringify({ xds_servers: [{ server_uri: '127.0.0.1:1', channel_creds: [{ type: 'insecure' }], server_features: features }] });
  assert.deepEqual(parseBootstrap(text(['xds_v3', 'delta_grpc']), 'b.json').serverFeatures, ['xds_v3', 'delta_grpc']);
  assert.throws(() => parseBootstrap(text('delta_grpc'), 'b.json'), (err: unknown) => err instanceof MeshConfigError && /server_features/.test(err.message));
  const env = { GRPC_XDS_BOOTSTRAP_CONFIG: text(['delta_grpc']) };
  const workload = { name: 'w', namespace: 'default' };
  const onResources = () => {};
  assert.equal(new AdsClient({ workload, onResources, env }).apiType, 'DELTA_GRPC');
  assert.equal(new AdsClient({ workload, onResources, env, apiType: 'GRPC' }).apiType, 'GRPC', 'the option wins');
  assert.equal(new AdsClient({ workload, onResources, server: '127.0.0.1:1' }).apiType, 'GRPC', 'SotW by default');
});
