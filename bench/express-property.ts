/**
 * Why meshlet keeps per-request state beside a request, not on it: the cost of
 * adding one property to a node request/response whose prototype was replaced
 * (as Express does per request with `Object.setPrototypeOf(res, app.response)`),
 * against the same store into a WeakMap, and against a request left alone.
 *
 *   node --import tsx bench/express-property.ts
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

const appResponse = Object.create(ServerResponse.prototype) as object;
const key = Symbol('state');
const side = new WeakMap<object, number>();
const variants: Record<string, (res: Record<PropertyKey, unknown>) => void> = {
  'nothing added': () => undefined,
  'symbol property': (res) => { res[key] = 1; },
  'instance method (end)': (res) => { res.end = noop; },
  'WeakMap entry': (res) => { side.set(res, 1); },
};
function noop(): void {}

for (const withPrototype of [false, true]) {
  console.log(withPrototype ? '\nafter Object.setPrototypeOf (Express):' : 'plain ServerResponse:');
  for (const [name, add] of Object.entries(variants)) {
    let ns = 0;
    const n = 20_000;
    for (let round = 0; round < 2; round++) {
      ns = 0;
      for (let i = 0; i < n; i++) {
        const res = new ServerResponse(new IncomingMessage(new Socket()));
        if (withPrototype) Object.setPrototypeOf(res, appResponse);
        const t0 = process.hrtime.bigint();
        add(res as unknown as Record<PropertyKey, unknown>);
        ns += Number(process.hrtime.bigint() - t0);
      }
    }
    console.log(`  ${name.padEnd(24)} ${(ns / n).toFixed(0).padStart(6)} ns`);
  }
}
