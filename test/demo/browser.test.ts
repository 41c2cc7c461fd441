/**
 * The demo in a real browser, as a user goes through the talk: Debian's
 * chromium driven by playwright-core, every scenario switched from the page's
 * panel (or the console's, while the gateway rate-limits the page), and what
 * the talk says the user sees asserted on the page: "Timeout Error" after 2 s,
 * after about 8 s with retries, "503 Service Unavailable", mostly cats, only
 * dogs, the dog with the header, the 6th access → 429, the 6th calculation →
 * 429, timeouts then only dogs, the graph, the traces joined from the gateway
 * to db and image, mTLS. Every wait is for a condition on the page.
 *
 * `MESHLET_SCREENSHOTS=1` also saves the README's screenshots to
 * docs/screenshots/ (a plain test run never writes tracked files).
 * Skipped (with the reason) when /usr/bin/chromium is absent.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { scenarios, startDemo, type Demo } from '../../examples/demo/index.js';
import { bursts, calculate, card, emojiHasColour, labelOverlaps, markCard, type Card } from './page-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install Debian's chromium and fonts-noto-color-emoji (as .ci/run does) to run the browser tests`;
const shots = process.env.MESHLET_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../docs/screenshots/', import.meta.url)) : undefined;

describe('pet-shop demo in chromium, scenario by scenario as the talk shows them', { skip, timeout: 300_000 }, () => {
  let demo: Demo;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let origin: string;

  before(async () => {
    profile = await mkdtemp(join(tmpdir(), 'meshlet-chromium-'));
    [demo, context] = await Promise.all([
      startDemo({ port: 0 }),
      chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1280, height: 860 },
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }),
    ]);
    origin = new URL(demo.url).origin;
    page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(30_000);
  });
  after(async () => {
    await context?.close();
    await demo?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  const shot = async (name: string): Promise<void> => {
    if (shots) await page.screenshot({ path: join(shots, name) });
  };
  /** A scenario button on the page's panel; resolves once it is active (and, unless it counts accesses, the card refreshed). */
  const applyFromPanel = async (name: string): Promise<Card | undefined> => {
    await markCard(page);
    await page.click(`#panel button[data-scenario="${name}"]`);
    await page.waitForSelector(`#panel [data-active-scenario]:text-is("${name}")`);
    if (scenarios.find((s) => s.name === name)!.counts) return undefined;
    await page.waitForSelector('#result section.result:not([data-seen])');
    return card(page);
  };

  it('the page through the gateway: one request per load, the scenarios in the talk\'s order, 🐶 in colour', async () => {
    const requests: string[] = [];
    page.on('request', (r) => void (r.url().startsWith(origin) && requests.push(new URL(r.url()).pathname)));
    await page.goto(demo.url);
    await page.waitForLoadState('networkidle');
    page.removeAllListeners('request');
    assert.deepEqual(requests, ['/'], 'a page load is one access: styles and script are inline, no favicon');
    assert.match((await card(page)).h1, /^(Cat and addition room|Dog and multiplication room)$/);
    const sections = await page.locator('#panel button[data-scenario] .section').allInnerTexts();
    assert.deepEqual(sections, [...sections].sort(), 'in the talk\'s order');
    assert.equal(sections.length, scenarios.length);
    assert.equal(await page.locator('[data-active-scenario]').innerText(), 'baseline');
    assert.equal(await page.locator('table.calls tbody tr').count(), 3, 'calculate, db and image calls listed');
    assert.equal(await page.getAttribute('[data-probe]', 'data-probe'), 'accepted', 'PERMISSIVE by default lets plaintext in');
    assert.ok(await emojiHasColour(page, '🐶'), '🐶 renders from a colour emoji font, not as a box');
  });

  it('00 baseline: Run ×20 alternates, 10 cats and 10 dogs', async () => {
    assert.deepEqual(await bursts(page, 1), { cat: 10, dog: 10, errors: 0, text: 'errors 0' });
  });

  it('02 timeout: the cat sleeps 20 s; "Timeout Error" (504 UT) after 2 s; the probe says plaintext got in', async () => {
    const c = (await applyFromPanel('timeout'))!;
    assert.deepEqual([c.h1, c.status, c.flags], ['Timeout Error', '504', 'UT']);
    assert.ok(c.ms >= 1950 && c.ms < 20_000, `${c.ms} ms: the route timeout, not the 20 s sleep`);
    assert.equal(await page.getAttribute('[data-probe]', 'data-probe'), 'accepted', 'a slow cat is not a refused connection');
    assert.match(await page.locator('[data-probe]').innerText(), /accepted — HTTP 200/);
  });

  it('03 retry: first try + 3 retries × 2 s, "Timeout Error" after about 8 s', async () => {
    const c = (await applyFromPanel('retry'))!;
    assert.deepEqual([c.h1, c.status, c.flags], ['Timeout Error', '504', 'UT']);
    assert.ok(c.ms >= 7900 && c.ms < 20_000, `${c.ms} ms: four tries of 2 s`);
  });

  it('04 fault injection: "503 Service Unavailable" (FI), answered by the client\'s mesh', async () => {
    const c = (await applyFromPanel('fault-injection'))!;
    assert.deepEqual([c.h1, c.status, c.flags], ['503 Service Unavailable', '503', 'FI']);
  });

  it('05 canary 90/10: mostly cats, sometimes a dog', async () => {
    await applyFromPanel('canary');
    // Weighted picks are random: Run ×20 again until a dog shows (bounded: 5 runs, 100 calls).
    const tally = await bursts(page, 5, (t) => t.dog > 0);
    assert.equal(tally.errors, 0);
    assert.ok(tally.dog > 0 && tally.cat >= 0.7 * (tally.cat + tally.dog), JSON.stringify(tally));
  });

  it('05 blue/green 0/100: only dogs', async () => {
    await applyFromPanel('blue-green');
    assert.deepEqual(await bursts(page, 1), { cat: 0, dog: 20, errors: 0, text: 'errors 0' });
    assert.equal((await card(page)).h1, 'Dog and multiplication room');
  });

  it('06 dark release: cats; the dog with the `version: dog` header', async () => {
    assert.equal((await applyFromPanel('dark-release'))!.pet, 'cat');
    await page.check('#dark');
    await page.waitForSelector('#result section[data-pet="dog"]');
    assert.equal((await card(page)).h1, 'Dog and multiplication room');
    await shot('pet-shop.png');
    await page.uncheck('#dark');
    await page.waitForSelector('#result section[data-pet="cat"]');
  });

  it('07 global rate limit: the 6th access in a minute shows 429; the console switches scenarios meanwhile', async () => {
    assert.equal(await applyFromPanel('global-rate-limit'), undefined);
    assert.match(await page.locator('[data-counts]').innerText(), /6th access gets 429/);
    assert.equal(await page.locator('[data-stale]').count(), 1, 'the switch did not spend an access');
    for (let access = 1; access <= 5; access++) {
      const res = (await page.reload())!;
      assert.equal(res.status(), 200, `access ${access}`);
      assert.match((await card(page)).h1, /room$/);
    }
    const sixth = (await page.reload())!;
    assert.equal(sixth.status(), 429);
    assert.equal(sixth.headers()['x-meshlet-flags'], 'RL');
    assert.equal(await page.locator('body').innerText(), 'rate limited', 'the gateway\'s own reply, as Envoy\'s');
    // Locked out of the pet shop for the minute; the console is on its own port.
    await page.goto(demo.consoleUrl);
    await page.click('#panel button[data-scenario="baseline"]');
    await page.waitForSelector('#panel [data-active-scenario]:text-is("baseline")');
    assert.equal((await page.goto(demo.url))!.status(), 200);
    assert.match((await card(page)).h1, /room$/);
  });

  it('07 global rate limit on the page: Calculate and Run ×20 show the gateway\'s 429; the page\'s buttons still switch', async () => {
    await page.goto(demo.consoleUrl);
    await page.click('#panel button[data-scenario="global-rate-limit"]');
    await page.waitForSelector('#panel [data-active-scenario]:text-is("global-rate-limit")');
    await page.click('nav [data-nav="shop"]'); // access 1
    await page.waitForSelector('#result section.result');
    assert.deepEqual(await bursts(page, 1), { cat: 2, dog: 2, errors: 16, text: 'errors 16 (429 RL (gateway)×16)' }, 'accesses 2–5 pass');
    const c = await calculate(page);
    assert.deepEqual([c.h1, c.status, c.flags, c.source], ['429 Too Many Requests', '429', 'RL', 'gateway']);
    const back = (await applyFromPanel('baseline'))!;
    assert.match(back.h1, /room$/, 'the page\'s scenario switch works while the gateway limits the page');
  });

  it('07 local rate limit: the 6th quick calculation is "429 Too Many Requests"', async () => {
    assert.equal(await applyFromPanel('local-rate-limit'), undefined);
    assert.match(await page.locator('[data-counts]').innerText(), /6th calculation gets 429/);
    for (let i = 1; i <= 5; i++) assert.match((await calculate(page)).h1, /room$/, `calculation ${i}`);
    const sixth = await calculate(page);
    assert.deepEqual([sixth.h1, sixth.status, sixth.flags], ['429 Too Many Requests', '429', 'RL']);
  });

  it('08 circuit breaker: a few "Timeout Error"s, then only the dog; the graph marks the cat ejected, legibly', async () => {
    const outcomes = [(await applyFromPanel('circuit-breaker'))!];
    // Round robin: every other call meets the 5 s cat and times out after 1 s; 3 cat errors eject it.
    for (let i = 0; i < 12 && !(outcomes.length >= 3 && outcomes.slice(-3).every((o) => o.pet === 'dog')); i++) outcomes.push(await calculate(page));
    const seen = outcomes.map((o) => (o.pet === 'none' ? o.h1 : o.pet));
    assert.ok(seen.filter((o) => o === 'Timeout Error').length >= 2, seen.join(', '));
    assert.deepEqual(seen.slice(-3), ['dog', 'dog', 'dog'], seen.join(', '));
    await page.click('nav [data-nav="graph"]');
    await page.waitForSelector('[data-node="calculate:cat-plus"][data-ejected="true"]');
    assert.equal(await page.getAttribute('[data-node="calculate:dog-multi"]', 'data-ejected'), 'false');
    // The timeouts show on the version that was slow (its own metrics), not only on client → calculate.
    await page.waitForSelector('[data-edge="calculate>calculate:cat-plus"].failing, [data-edge="calculate>calculate:cat-plus"].degraded');
    await page.waitForSelector('[data-edge-label="client>calculate"]:has-text("UT")');
    for (const e of ['gateway>client', 'client>calculate', 'client>db', 'client>image', 'calculate>calculate:cat-plus', 'calculate>calculate:dog-multi']) {
      assert.equal(await page.locator(`[data-edge-label="${e}"]`).count(), 1, e);
    }
    assert.deepEqual(await labelOverlaps(page), [], 'edge labels clear of nodes and of each other');
    await shot('service-graph.png');
  });

  it('09/10 observability and header propagation: the page load is one trace from the gateway to db and image', async () => {
    await demo.applyScenario('baseline');
    await page.goto(demo.url);
    await page.click('nav [data-nav="traces"]');
    const rows = page.locator('#traces tbody tr');
    await rows.first().waitFor();
    // The retry scenario's trace outlived everything since, and says what it shows.
    // Its flags are Envoy's set for tries that all timed out: UT (with URX once the retries ran out).
    await page.waitForSelector('#traces tbody tr:has(td[data-scenario]:text-is("retry")):has(code.flag:text-matches("(^|,)UT(,|$)"))');
    const names = await page.locator('#traces tbody tr a[data-open]').allInnerTexts();
    assert.ok(names.every((n) => !/\/console|\/metrics|\/assets|api\/scenarios|\/healthz/.test(n)), `the demo's own polling is not listed: ${names.join(' | ')}`);
    const load = rows.filter({ has: page.locator('td[data-scenario]:text-is("baseline")') }).filter({ has: page.locator('.chip:text-is("db")') }).filter({ has: page.locator('.chip:text-is("istio-ingressgateway")') }).first();
    const traceId = await load.getAttribute('data-trace');
    await load.locator('a[data-open]').click();
    await page.waitForSelector('#waterfall:not([hidden]) .span-row');
    const box = (await page.locator('#waterfall').boundingBox())!;
    assert.ok(box.y >= 0 && box.y < 860, `the waterfall is in view (y=${box.y})`);
    const spanNames = await page.locator('#spans .span-name').allInnerTexts();
    assert.ok(spanNames.some((n) => /CLIENT GET db \/pets\/(cat|dog)/.test(n)), spanNames.join(' | '));
    assert.ok(spanNames.every((n) => !/(SERVER|CLIENT) GET$/.test(n.trim())), `spans are named by method and route: ${spanNames.join(' | ')}`);
    const { spans } = await (await page.request.get(`${demo.consoleUrl}api/traces/${traceId}`)).json() as { spans: Array<{ spanId: string; parentSpanId?: string; service: string }> };
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const roots = spans.filter((s) => !s.parentSpanId || !byId.has(s.parentSpanId));
    assert.deepEqual(roots.map((s) => s.service), ['istio-ingressgateway'], 'one root: the gateway; every other span has its parent in the trace');
    const services = new Set(spans.map((s) => s.service));
    for (const s of ['istio-ingressgateway', 'client', 'db', 'image']) assert.ok(services.has(s), `${s} in ${[...services].join(', ')}`);
    await shot('traces.png');
  });

  it('mTLS STRICT: the page keeps working and the plaintext probe is refused; AuthorizationPolicy DENY: 403', async () => {
    await page.click('nav [data-nav="shop"]');
    await page.waitForSelector('#result section.result');
    const strict = (await applyFromPanel('mtls-strict'))!;
    assert.match(strict.h1, /room$/);
    assert.equal(await page.getAttribute('[data-probe]', 'data-probe'), 'refused');
    const denied = (await applyFromPanel('authorization-deny'))!;
    assert.deepEqual([denied.h1, denied.status, denied.flags], ['403 Forbidden', '403', 'RBAC']);
    await applyFromPanel('baseline');
  });
});
