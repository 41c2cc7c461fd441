/**
 * Which access logs a workload gets, case by case as istiod decides it:
 * the sidecar cases of TestAccessLogging (istio/istio
 * 86c9f01fd735fb01d8192f5bcaf0d424afb7f14c, pilot/pkg/model/telemetry_logging_test.go),
 * their Telemetry resources and expected providers copied, the listener
 * class read as CLIENT (SidecarOutbound) or SERVER (SidecarInbound).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessLogsFor, type AccessLogMeshConfig } from '../../src/config/translate-access-log.js';
import { fromStruct } from '../../src/config/struct.js';

type Rule = { match?: { mode: string }; providers?: Array<{ name: string }>; disabled?: boolean; filter?: { expression: string } };
const labels = { app: 'test' };
const telemetry = (namespace: string, accessLogging: Rule[] | undefined, extra: Record<string, unknown> = {}, name = `t-${namespace}`) =>
  ({ apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', metadata: { name, namespace }, spec: { ...extra, ...(accessLogging && { accessLogging }) } });
const p = (name: string) => ({ name });

const envoy = [{ providers: [p('envoy')] }];
const client = [{ match: { mode: 'CLIENT' }, providers: [p('envoy')] }];
const clientDisabled = [{ match: { mode: 'CLIENT' }, providers: [p('envoy')], disabled: true }];
const server = [{ match: { mode: 'SERVER' }, providers: [p('envoy')] }];
const serverDisabled = [{ match: { mode: 'SERVER' }, providers: [p('envoy')], disabled: true }];
const serverAndClient = [{ match: { mode: 'CLIENT_AND_SERVER' }, providers: [p('envoy')] }];
const stackdriver = [{ providers: [p('stackdriver')] }];
const empty = [{}];
const defaultJSON = [{ providers: [p('envoy-json')] }];
const disabled = [{ disabled: true }];
const nonExistent = [{ providers: [p('custom-provider')] }];
const multiAccessLogging = [{ providers: [p('envoy')] }, { providers: [p('envoy-json')] }];
const multiAccessLoggingWithDisabled = [{ providers: [p('envoy')] }, { providers: [p('envoy-json')], disabled: true }];
const multiAccessLoggingAndProviders = [{ providers: [p('envoy'), p('envoy-json')] }, { providers: [p('envoy')] }];
const multiFilters = [{ match: { mode: 'SERVER' }, providers: [p('envoy')] }, { match: { mode: 'CLIENT_AND_SERVER' }, providers: [p('envoy')] }];
const multiFiltersDisabled = [{ match: { mode: 'SERVER' }, providers: [p('envoy')] }, { match: { mode: 'CLIENT_AND_SERVER' }, providers: [p('envoy')], disabled: true }];
const serverAndClientDifferent = [{ match: { mode: 'SERVER' }, providers: [p('envoy')] }, { match: { mode: 'CLIENT' }, providers: [p('envoy-json')] }];
const sidecarClient = telemetry('default', client, { selector: { matchLabels: labels } }, 'sidecar-client');

// createTestTelemetries' mesh: `envoy` (built in, stdout) and `envoy-json`; stackdriver is no file logger.
const mesh = (defaults?: string[]): AccessLogMeshConfig => ({
  extensionProviders: [{ name: 'envoy-json', envoyFileAccessLog: { path: '/dev/stdout-json', logFormat: { labels: { code: '%RESPONSE_CODE%' } } } }],
  ...(defaults && { defaultProviders: { accessLogging: defaults } }),
});
const names = (logs: ReturnType<typeof accessLogsFor>['client']) => logs.map((l) => (l.typed_config?.path === '/dev/stdout-json' ? 'envoy-json' : 'envoy'));

const cases: Array<[string, object[], 'CLIENT' | 'SERVER', string[] | undefined, string[]]> = [
  ['empty', [], 'CLIENT', undefined, []],
  ['default provider only', [], 'CLIENT', ['envoy'], ['envoy']],
  ['provider only', [telemetry('istio-system', envoy)], 'CLIENT', undefined, ['envoy']],
  ['client - outbound', [telemetry('istio-system', client)], 'CLIENT', undefined, ['envoy']],
  ['client - inbound', [telemetry('istio-system', client)], 'SERVER', undefined, []],
  ['client - disabled server', [telemetry('istio-system', client), telemetry('default', serverDisabled)], 'CLIENT', undefined, ['envoy']],
  ['client - disabled client', [telemetry('istio-system', client), telemetry('default', clientDisabled)], 'CLIENT', undefined, []],
  ['client - disabled - enabled', [telemetry('istio-system', client), telemetry('default', clientDisabled), sidecarClient], 'CLIENT', undefined, ['envoy']],
  ['server - inbound', [telemetry('istio-system', server)], 'SERVER', undefined, ['envoy']],
  ['server - outbound', [telemetry('istio-system', server)], 'CLIENT', undefined, []],
  ['server and client - inbound', [telemetry('istio-system', serverAndClient)], 'SERVER', undefined, ['envoy']],
  ['server and client - outbound', [telemetry('istio-system', serverAndClient)], 'CLIENT', undefined, ['envoy']],
  ['override default', [telemetry('istio-system', envoy)], 'CLIENT', ['stackdriver'], ['envoy']],
  ['override namespace', [telemetry('istio-system', envoy), telemetry('default', defaultJSON)], 'CLIENT', undefined, ['envoy-json']],
  ['empty config inherits', [telemetry('istio-system', envoy), telemetry('default', empty)], 'CLIENT', undefined, ['envoy']],
  ['stackdriver', [telemetry('istio-system', envoy), telemetry('default', stackdriver)], 'CLIENT', undefined, []],
  ['default envoy JSON', [telemetry('istio-system', defaultJSON)], 'CLIENT', undefined, ['envoy-json']],
  ['disable config', [telemetry('istio-system', envoy), telemetry('default', disabled)], 'CLIENT', undefined, []],
  ['disable default', [telemetry('default', disabled)], 'CLIENT', ['envoy'], []],
  ['non existing', [telemetry('default', nonExistent)], 'CLIENT', ['envoy'], []],
  ['server - multi filters', [telemetry('istio-system', multiFilters)], 'CLIENT', undefined, ['envoy']],
  ['server - multi filters disabled', [telemetry('istio-system', multiFiltersDisabled)], 'CLIENT', undefined, []],
  ['multi accesslogging', [telemetry('istio-system', envoy), telemetry('default', multiAccessLogging)], 'CLIENT', undefined, ['envoy', 'envoy-json']],
  ['multi accesslogging with disabled', [telemetry('istio-system', envoy), telemetry('default', multiAccessLoggingWithDisabled)], 'CLIENT', undefined, ['envoy']],
  ['multi accesslogging - multi providers', [telemetry('istio-system', envoy), telemetry('default', multiAccessLoggingAndProviders)], 'CLIENT', undefined, ['envoy', 'envoy-json']],
  ['server and client different - inbound', [telemetry('istio-system', serverAndClientDifferent)], 'SERVER', undefined, ['envoy']],
  ['server and client different - outbound', [telemetry('istio-system', serverAndClientDifferent)], 'CLIENT', undefined, ['envoy-json']],
  ['prometheus-mesh (metrics only)', [telemetry('istio-system', undefined, { metrics: [{ providers: [p('envoy')] }] })], 'CLIENT', undefined, []],
];

test('istiod\'s TestAccessLogging sidecar cases: the same providers per side', () => {
  for (const [name, resources, side, defaults, want] of cases) {
    const logs = accessLogsFor(resources, { namespace: 'default', labels }, mesh(defaults));
    assert.deepEqual(names(side === 'CLIENT' ? logs.client : logs.server), want, name);
  }
});

test('a filter travels as the CEL ExpressionFilter istiod writes; the built-in provider takes the meshConfig encoding', () => {
  const logs = accessLogsFor([telemetry('istio-system', [{ providers: [p('envoy')], filter: { expression: 'response.code >= 400' } }])], { namespace: 'default', labels }, { accessLogEncoding: 'JSON' });
  assert.deepEqual(logs.client[0]!.filter, {
    extension_filter: {
      name: 'envoy.access_loggers.extension_filters.cel',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter', expression: 'response.code >= 400' },
    },
  });
  assert.equal(logs.client[0]!.typed_config?.path, '/dev/stdout');
  // A google.protobuf.Struct, as it travels over xDS.
  assert.equal(fromStruct(logs.client[0]!.typed_config?.log_format?.json_format).response_code, '%RESPONSE_CODE%');
  // Without Telemetry logging, the legacy accessLogFile applies to both sides.
  const legacy = accessLogsFor([], { namespace: 'default' }, { accessLogFile: '/var/log/a.log', accessLogFormat: '%RESPONSE_CODE%' });
  assert.deepEqual([legacy.client[0]?.typed_config?.log_format, legacy.server[0]?.typed_config?.path], [{ text_format_source: { inline_string: '%RESPONSE_CODE%\n' } }, '/var/log/a.log']);
});
