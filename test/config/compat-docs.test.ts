/** docs/istio-compatibility.md is generated from the support table and must match it (`npm run docs:compat`). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderCompatibility } from '../../scripts/istio-compatibility.js';

test('docs/istio-compatibility.md is what `npm run docs:compat` generates from src/config/support.ts', () => {
  const committed = readFileSync(new URL('../../docs/istio-compatibility.md', import.meta.url), 'utf8');
  assert.equal(committed, renderCompatibility(), 'the committed page is stale: run `npm run docs:compat`');
  assert.match(committed, /\| `spec\.http\[\]\.corsPolicy` \| applied \|/);
});

test('docs/gateway-api.md carries the Gateway API kinds\' support table as `npm run docs:compat` generates it', async () => {
  const { withGatewayApiSupport } = await import('../../scripts/istio-compatibility.js');
  const committed = readFileSync(new URL('../../docs/gateway-api.md', import.meta.url), 'utf8');
  assert.equal(committed, withGatewayApiSupport(committed), 'the committed page is stale: run `npm run docs:compat`');
  assert.match(committed, /\| `spec\.rules\[\]\.sessionPersistence` \| \*\*not supported\*\* \(warning\) \|/);
});
