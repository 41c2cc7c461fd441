import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYaml } from '../../src/config/load.js';
import { parseResources } from '../../src/config/resources.js';
import { MeshConfigError } from '../../src/errors.js';

const vs = (http: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: calculate, namespace: shop }
spec:
  hosts: [calculate]
${extra}  http:
${http}`;

const dr = (body: string) => `
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: { name: calculate, namespace: shop }
spec:
  host: calculate
${body}`;

// Each case: YAML, then the kind, resource, path and a fragment of the reason the error must carry.
const cases: Array<[string, string, string, string, string, RegExp]> = [
  ['weights totalling 0', vs('    - route:\n        - { destination: { host: calculate, subset: a }, weight: 0 }\n        - { destination: { host: calculate, subset: b } }'), 'VirtualService', 'shop/calculate', 'spec.http[0].route', /total destination weight = 0/],
  ['a negative weight', vs('    - route:\n        - { destination: { host: calculate, subset: a }, weight: -1 }\n        - { destination: { host: calculate, subset: b }, weight: 2 }'), 'VirtualService', 'shop/calculate', 'spec.http[0].route[0].weight', /≥ 0/],
  ['a bad duration', vs('    - timeout: 2 seconds\n      route: [{ destination: { host: calculate } }]'), 'VirtualService', 'shop/calculate', 'spec.http[0].timeout', /not a duration/],
  ['an unknown field', vs('    - route: [{ destination: { host: calculate } }]\n      retry: { attempts: 3 }'), 'VirtualService', 'shop/calculate', 'spec.http[0].retry', /unknown field "retry"/],
  ['an unknown retry condition', vs('    - retries: { attempts: 2, retryOn: "5xx,sometimes" }\n      route: [{ destination: { host: calculate } }]'), 'VirtualService', 'shop/calculate', 'spec.http[0].retries.retryOn', /unknown retry condition "sometimes"/],
  ['an invalid regex', vs('    - match: [{ uri: { regex: "/a[" } }]\n      route: [{ destination: { host: calculate } }]'), 'VirtualService', 'shop/calculate', 'spec.http[0].match[0].uri.regex', /invalid RE2 regex "\/a\[": .*missing closing \]/],
  ['two string matchers at once', vs('    - match: [{ uri: { exact: /a, prefix: /b } }]\n      route: [{ destination: { host: calculate } }]'), 'VirtualService', 'shop/calculate', 'spec.http[0].match[0].uri', /only one of exact, prefix, regex/],
  ['a route without a destination', vs('    - timeout: 1s'), 'VirtualService', 'shop/calculate', 'spec.http[0]', /one of route, redirect, directResponse or delegate/],
  // No hosts makes a delegate (istiod's validateVirtualService), which may not name gateways.
  ['a delegate with gateways', vs('    - route: [{ destination: { host: calculate } }]').replace('hosts: [calculate]', 'hosts: []\n  gateways: [mesh]'), 'VirtualService', 'shop/calculate', 'spec.gateways', /delegate virtual service must have no gateways/],
  ['a percentage over 100', vs('    - fault: { abort: { httpStatus: 503, percentage: { value: 150 } } }\n      route: [{ destination: { host: calculate } }]'), 'VirtualService', 'shop/calculate', 'spec.http[0].fault.abort.percentage.value', /≤ 100/],
  ['a subset without a name', dr('  subsets:\n    - labels: { version: v1 }'), 'DestinationRule', 'shop/calculate', 'spec.subsets[0].name', /is required/],
  ['duplicate subset names', dr('  subsets:\n    - { name: v1, labels: { version: v1 } }\n    - { name: v1, labels: { version: v2 } }'), 'DestinationRule', 'shop/calculate', 'spec.subsets[1].name', /duplicate subset name "v1"/],
  ['an unknown load balancer', dr('  trafficPolicy: { loadBalancer: { simple: FASTEST } }'), 'DestinationRule', 'shop/calculate', 'spec.trafficPolicy.loadBalancer.simple', /must be one of/],
  ['a negative ejection percent', dr('  trafficPolicy: { outlierDetection: { maxEjectionPercent: -5 } }'), 'DestinationRule', 'shop/calculate', 'spec.trafficPolicy.outlierDetection.maxEjectionPercent', /≥ 0/],
  // Ports are optional in Istio (ValidateServiceEntry); duplicates, bad addresses and `*` hosts are not.
  ['a ServiceEntry with a duplicate port number', 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: db }\nspec:\n  hosts: [db.example.com]\n  ports: [{ number: 80, name: a }, { number: 80, name: b }]\n', 'ServiceEntry', 'default/db', 'spec.ports[1].number', /port 80 already defined/],
  ['a ServiceEntry address that is no IP', 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: db }\nspec:\n  hosts: [db.example.com]\n  addresses: [db.example.com]\n', 'ServiceEntry', 'default/db', 'spec.addresses[0]', /not a valid IP address or CIDR/],
  ['a CIDR address with DNS resolution', 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: db }\nspec:\n  hosts: [db.example.com]\n  addresses: [10.0.0.0/16]\n  resolution: DNS\n', 'ServiceEntry', 'default/db', 'spec.addresses', /only for NONE\/STATIC/],
  ['a VirtualService exported to nobody (~ is for ServiceEntries)', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: a }\nspec: { hosts: [a], exportTo: ["~"] }\n', 'VirtualService', 'default/a', 'spec.exportTo[0]', /not allowed/],
  ['exportTo with . and its own namespace', 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: a, namespace: shop }\nspec: { host: a, exportTo: [shop, "."] }\n', 'DestinationRule', 'shop/a', 'spec.exportTo[1]', /duplicate entries in exportTo: \. and current namespace shop/],
  ['exportTo * with others', 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: db }\nspec: { hosts: [db.example.com], exportTo: ["*", shop] }\n', 'ServiceEntry', 'default/db', 'spec.exportTo', /both public/],
  ['a bad metadata name', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: Calculate_Service }\nspec: { hosts: [a] }\n', 'VirtualService', 'document 0', 'metadata.name', /DNS-1123/],
  ['an unsupported kind of an Istio group', 'apiVersion: networking.istio.io/v1\nkind: Sidecarz\nmetadata: { name: x }\nspec: {}\n', 'Sidecarz', 'document 0', 'kind', /unsupported kind/],
  ['a RateLimit with neither host nor selector', 'apiVersion: meshlet.dev/v1alpha1\nkind: RateLimit\nmetadata: { name: rl }\nspec: { local: { tokenBucket: { maxTokens: 5, fillInterval: 60s } } }\n', 'RateLimit', 'default/rl', 'spec', /exactly one of host/],
];

describe("config validation as Istio's own: MeshConfigError names kind, resource, field path and reason", () => {
  for (const [title, yaml, kind, resource, path, reason] of cases) {
    it(`rejects ${title}`, () => {
      assert.throws(() => parseResources(parseYaml(yaml, 'test')), (err: unknown) => {
        assert.ok(err instanceof MeshConfigError, String(err));
        assert.equal(err.kind, kind);
        assert.equal(err.resource, resource);
        assert.equal(err.path, path);
        assert.match(err.reason, reason);
        assert.match(err.message, new RegExp(`^${kind} `));
        return true;
      });
    });
  }

  it('accepts the v1, v1beta1 and v1alpha3 aliases and defaults the namespace', () => {
    const resources = parseResources(parseYaml([
      vs('    - route: [{ destination: { host: calculate } }]'),
      dr('  subsets: [{ name: v1, labels: { version: v1 } }]').replace('v1beta1', 'v1alpha3'),
      'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: { name: db }\nspec: { hosts: [db.example.com], ports: [{ number: 80 }] }\n',
    ].join('\n---\n'), 'test'));
    assert.deepEqual(resources.map((r) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`), ['VirtualService/shop/calculate', 'DestinationRule/shop/calculate', 'ServiceEntry/default/db']);
  });

  it('skips documents of other API groups (a Kubernetes Deployment in the same directory)', () => {
    assert.equal(parseResources(parseYaml('apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: x }\n', 'test')).length, 0);
  });

  it('refuses two resources with the same kind, namespace and name', () => {
    const one = vs('    - route: [{ destination: { host: calculate } }]');
    assert.throws(() => parseResources(parseYaml(`${one}\n---\n${one}`, 'test')), /duplicate resource/);
  });
});
