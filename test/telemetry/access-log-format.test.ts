/**
 * Envoy's command operators and Istio's default formats, on fixed entries:
 * the text line is Istio's EnvoyTextLogFormat filled exactly as Envoy fills
 * it (`-` for missing), the JSON line keeps numbers typed and missing values
 * null, and the CEL subset of Telemetry filters evaluates as Envoy's filter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordedAccessLogEntry, type AccessLogFields } from '../../src/telemetry/access-log-entry.js';
import { compileJsonFormat, compileTextFormat, ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT } from '../../src/telemetry/access-log-format.js';
import { AccessLogFilterError, compileAccessLogFilter } from '../../src/telemetry/access-log-filter.js';

const fields: AccessLogFields = {
  startTime: Date.UTC(2026, 11, 2, 5, 4, 3, 21),
  method: 'GET',
  path: '/add?x=1',
  protocol: 'HTTP/1.1',
  authority: 'calculate:8000',
  responseCode: 200,
  responseFlags: '-',
  responseCodeDetails: 'via_upstream',
  upstreamTransportFailureReason: undefined,
  grpcStatus: undefined,
  bytesReceived: 0,
  bytesSent: 12,
  durationMs: 7,
  upstreamHost: '127.0.0.1:40123',
  upstreamCluster: 'outbound|8000||calculate.default.svc.cluster.local',
  upstreamLocalAddress: undefined,
  downstreamLocalAddress: 'calculate:8000',
  downstreamRemoteAddress: undefined,
  requestedServerName: undefined,
  routeName: 'default',
  mtls: false,
};
const entry = (over: Partial<AccessLogFields> = {}, req: string[] = ['user-agent', 'curl/8.5.0', 'x-request-id', 'abc-123'], res: string[] = ['x-envoy-upstream-service-time', '5']) =>
  new RecordedAccessLogEntry({ ...fields, ...over }, req, res);

test('Istio\'s default text format, as Envoy writes it: quoted fields, "-" for what is missing, one line', () => {
  const line = compileTextFormat(ISTIO_TEXT_FORMAT)(entry());
  assert.equal(line,
    '[2026-12-02T05:04:03.021Z] "GET /add?x=1 HTTP/1.1" 200 - via_upstream - "-" 0 12 7 5 "-" "curl/8.5.0" "abc-123" "calculate:8000" '
    + '"127.0.0.1:40123" outbound|8000||calculate.default.svc.cluster.local - calculate:8000 - - default\n');
  // x-envoy-original-path wins over :path (a rewritten request logs what the caller asked for).
  const rewritten = compileTextFormat('%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%')(entry({}, ['x-envoy-original-path', '/orig']));
  assert.equal(rewritten, '/orig\n', 'a format without a newline gets one, as Istio adds it');
});

test('JSON encoding with Istio\'s labels: numbers typed, missing values null, flags a string', () => {
  const parsed = JSON.parse(compileJsonFormat(ISTIO_JSON_FORMAT)(entry({ responseCode: 503, responseFlags: 'UH', responseCodeDetails: 'no_healthy_upstream', upstreamHost: undefined }))) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed).sort(), Object.keys(ISTIO_JSON_FORMAT).sort());
  assert.equal(parsed.response_code, 503);
  assert.equal(parsed.response_flags, 'UH');
  assert.equal(parsed.response_code_details, 'no_healthy_upstream');
  assert.equal(parsed.upstream_host, null);
  assert.equal(parsed.duration, 7);
  assert.equal(parsed.bytes_sent, 12);
  assert.equal(parsed.upstream_service_time, '5', 'a header value stays a string');
  assert.equal(parsed.start_time, '2026-12-02T05:04:03.021Z');
  const mixed = JSON.parse(compileJsonFormat({ line: '%REQ(:METHOD)% %RESPONSE_CODE%' })(entry())) as Record<string, unknown>;
  assert.equal(mixed.line, 'GET 200', 'text around operators makes a string');
});

test('operators with truncation and alternatives; unknown operators are refused, not written as text', () => {
  assert.equal(compileTextFormat('%REQ(USER-AGENT):4%|%RESP(MISSING)%|%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%|100%%')(entry()), 'curl|-|calculate|100%\n');
  assert.throws(() => compileTextFormat('%DYNAMIC_METADATA(istio.mixer:status)%'), /DYNAMIC_METADATA.*not supported/);
  assert.throws(() => compileTextFormat('%REQ%'), /needs a header name/);
  assert.throws(() => compileJsonFormat({ n: 5 as unknown as string }), /must be a format string/);
});

test('filter expressions: the CEL subset Istio\'s docs use', () => {
  const e500 = entry({ responseCode: 500, responseFlags: 'URX' });
  const e200 = entry();
  const cases: Array<[string, boolean, boolean]> = [
    ['response.code >= 400', true, false],
    ['response.code == 503', false, false],
    ['response.code != 200', true, false],
    ['response.code >= 400 || request.method == "POST"', true, false],
    ['request.headers[\'user-agent\'] == \'curl/8.5.0\' && response.code < 300', false, true],
    ['!has(request.headers[\'x-debug\'])', true, true],
    ['has(response.headers[\'x-envoy-upstream-service-time\'])', true, true],
    ['(response.code >= 500 && response.flags == "URX") || xds.route_name == "nope"', true, false],
    ['connection.mtls', false, false],
    ['!connection.mtls && request.path == "/add?x=1"', true, true],
    ['request.url_path == "/add"', true, true],
  ];
  for (const [expr, on500, on200] of cases) {
    const f = compileAccessLogFilter(expr);
    assert.equal(f(e500), on500, `${expr} on the 500`);
    assert.equal(f(e200), on200, `${expr} on the 200`);
  }
  for (const bad of ['response.code >= ', 'size(request.headers) > 2', 'request.headers["a"] + 1 == 2', 'filter_state["x"] == "y"', 'response.code in [500, 503]', '5', '']) {
    assert.throws(() => compileAccessLogFilter(bad), AccessLogFilterError, bad);
  }
});
