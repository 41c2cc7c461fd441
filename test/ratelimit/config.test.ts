import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MeshConfigError } from '../../src/errors.js';
import { findLimit, loadRateLimitConfig } from '../../src/ratelimit/index.js';

const pets = `
domain: pets
descriptors:
  - key: generic_key
    value: gateway
    rate_limit: { unit: minute, requests_per_unit: 5 }
  - key: remote_address
    rate_limit: { unit: Second, requests_per_unit: 10, name: per-ip }
  - key: path
    value: /admin*
    shadow_mode: true
    rate_limit: { unit: hour, requests_per_unit: 1 }
  - key: header_match
    value: api
    descriptors:
      - key: user
        rate_limit: { unit: day, requests_per_unit: 100 }
      - key: user
        value: vip
        rate_limit: { unlimited: true }
`;

function configError(fn: () => unknown): MeshConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MeshConfigError, `expected MeshConfigError, got ${String(err)}`);
    return err as MeshConfigError;
  }
  assert.fail('expected a MeshConfigError');
}

test('compiles the envoyproxy/ratelimit YAML format into a descriptor tree', () => {
  const config = loadRateLimitConfig(pets);
  const root = config.domains.get('pets')!;
  const gw = findLimit(root, [{ key: 'generic_key', value: 'gateway' }])!;
  assert.equal(gw.requestsPerUnit, 5);
  assert.equal(gw.unit, 'MINUTE');
  assert.equal(gw.unitSeconds, 60);
  assert.equal(gw.fullKey, 'pets.generic_key_gateway');
  assert.equal(findLimit(root, [{ key: 'remote_address', value: '10.0.0.1' }])!.name, 'per-ip');
  const admin = findLimit(root, [{ key: 'path', value: '/admin/users' }])!;
  assert.equal(admin.shadowMode, true);
  assert.equal(findLimit(root, [{ key: 'path', value: '/pets' }]), undefined);
  assert.equal(findLimit(root, [{ key: 'header_match', value: 'api' }, { key: 'user', value: 'bob' }])!.requestsPerUnit, 100);
  assert.equal(findLimit(root, [{ key: 'header_match', value: 'api' }, { key: 'user', value: 'vip' }])!.unlimited, true);
  // The request must reach a rule with its last entry: shallower or deeper requests get no limit.
  assert.equal(findLimit(root, [{ key: 'header_match', value: 'api' }]), undefined);
  assert.equal(findLimit(root, [{ key: 'generic_key', value: 'gateway' }, { key: 'x', value: 'y' }]), undefined);
  assert.equal(findLimit(root, [{ key: 'generic_key', value: 'other' }]), undefined);
});

test('several domains: several YAML documents, objects, or files in a directory', () => {
  const multi = loadRateLimitConfig(`${pets}\n---\ndomain: shop\ndescriptors: []\n`);
  assert.deepEqual([...multi.domains.keys()], ['pets', 'shop']);
  const objects = loadRateLimitConfig([{ domain: 'a', descriptors: [{ key: 'k', rate_limit: { unit: 'second', requests_per_unit: 1 } }] }, { domain: 'b' }]);
  assert.deepEqual([...objects.domains.keys()], ['a', 'b']);

  const dir = mkdtempSync(join(tmpdir(), 'meshlet-rl-'));
  try {
    writeFileSync(join(dir, 'pets.yaml'), pets);
    writeFileSync(join(dir, 'shop.yml'), 'domain: shop\n');
    writeFileSync(join(dir, 'README.txt'), 'not config');
    assert.deepEqual([...loadRateLimitConfig(dir).domains.keys()], ['pets', 'shop']);
    assert.equal(loadRateLimitConfig(join(dir, 'shop.yml')).domains.size, 1);
    writeFileSync(join(dir, 'dup.yaml'), 'domain: pets\n');
    const dup = configError(() => loadRateLimitConfig(dir));
    assert.equal(dup.resource, join(dir, 'pets.yaml'));
    assert.match(dup.reason, /duplicate domain "pets" \(already defined in .*dup\.yaml\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(configError(() => loadRateLimitConfig('/nonexistent/ratelimit.yaml')).reason, /no such file/);
});

test('errors name the source document and the JSON path of the bad field', () => {
  const unit = configError(() => loadRateLimitConfig('domain: pets\ndescriptors:\n  - key: k\n    rate_limit: { unit: fortnight, requests_per_unit: 1 }\n'));
  assert.equal(unit.kind, 'RateLimitConfig');
  assert.equal(unit.resource, 'inline#0');
  assert.equal(unit.path, 'descriptors[0].rate_limit.unit');
  assert.match(unit.message, /fortnight/);

  const nested = configError(() => loadRateLimitConfig([{ domain: 'd' }, {
    domain: 'e', descriptors: [{ key: 'a', descriptors: [{ key: 'b', rate_limit: { unit: 'second', requests_per_unit: -1 } }] }],
  } as never]));
  assert.equal(nested.resource, 'inline#1');
  assert.equal(nested.path, 'descriptors[0].descriptors[0].rate_limit.requests_per_unit');

  assert.equal(configError(() => loadRateLimitConfig('domain: d\ndescriptors: [ { key: a, vaule: x } ]\n')).path, 'descriptors[0].vaule');
  assert.equal(configError(() => loadRateLimitConfig('descriptors: []\n')).path, 'domain');
  assert.equal(configError(() => loadRateLimitConfig('domain: d\ndescriptors: [ { value: x } ]\n')).path, 'descriptors[0].key');
  assert.match(configError(() => loadRateLimitConfig('domain: d\ndescriptors: [ { key: a, value: x }, { key: a, value: x } ]\n')).reason,
    /duplicate descriptor composite key "d.a_x"/);
  assert.equal(configError(() => loadRateLimitConfig('domain: d\ndescriptors: [ { key: a, rate_limit: { unlimited: true, unit: second } } ]\n')).path,
    'descriptors[0].rate_limit.unit');
  assert.equal(configError(() => loadRateLimitConfig('domain: d\ndescriptors: [ { key: a, shadow_mode: "yes" } ]\n')).path, 'descriptors[0].shadow_mode');
  assert.match(configError(() => loadRateLimitConfig('domain: [unclosed\n')).reason, /YAML syntax error/);
});
