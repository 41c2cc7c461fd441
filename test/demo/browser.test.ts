/**
 * The demo in a real browser: Debian's chromium driven by playwright-core.
 * Loads the page through the gateway, applies scenarios from the panel,
 * toggles the dark-release header, trips the circuit breaker and reads the
 * service graph, and opens a trace. Saves the README's screenshots under
 * docs/screenshots/. Skipped (with the reason) when /usr/bin/chromium is absent.
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

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found: install it (apt-get install -y chromium, see .ci/browser-deps.sh) to run the browser tests`;
const shots = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

describe('pet-shop demo in chromium', { skip, timeout: 180_000 }, () => {
  let demo: Demo;
  let context: BrowserContext;
  let page: Page;
  let profile: string;

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
    page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(20_000);
  });
  after(async () => {
    await context?.close();
    await demo?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  const h1 = (): Promise<string> => page.locator('#result h1').innerText();
  const applyFromPanel = async (name: string): Promise<void> => {
    await page.click(`button[data-scenario="${name}"]`);
    await page.waitForSelector(`[data-active-scenario]:text-is("${name}")`);
  };

  it('loads the page through the gateway, with every scenario in the panel', async () => {
    await page.goto(demo.url);
    assert.match(await h1(), /^(Cat and addition room|Dog and multiplication room)$/);
    assert.equal(await page.locator('button[data-scenario]').count(), scenarios.length);
    assert.equal(await page.locator('[data-active-scenario]').innerText(), 'baseline');
    assert.ok((await page.locator('table.calls tbody tr').count()) === 3, 'calculate, db and image calls listed');
  });

  it('blue/green from the panel: Run ×20 gives only dogs', async () => {
    await applyFromPanel('blue-green');
    await page.click('#burst');
    await page.waitForSelector('#tally .hint:has-text("20/20 done")');
    const legend = await page.locator('#tally .legend').innerText();
    assert.match(legend, /🐱 0/);
    assert.match(legend, /🐶 20/);
    await page.waitForSelector('#result[data-pet], #result section[data-pet="dog"]');
    assert.equal(await h1(), 'Dog and multiplication room');
  });

  it('dark release: cats, and the dog with the version: dog toggle', async () => {
    await applyFromPanel('dark-release');
    await page.waitForSelector('#result section[data-pet="cat"]');
    assert.equal(await h1(), 'Cat and addition room');
    await page.check('#dark');
    await page.waitForSelector('#result section[data-pet="dog"]');
    assert.equal(await h1(), 'Dog and multiplication room');
    await page.screenshot({ path: join(shots, 'pet-shop.png') });
    await page.uncheck('#dark');
    await page.waitForSelector('#result section[data-pet="cat"]');
  });

  it('circuit breaker: the cat times out, is ejected, and the graph marks it', async () => {
    await applyFromPanel('circuit-breaker');
    // Round robin: every other call meets the 5 s cat and times out after 1 s; 3 cat errors eject it
    // (the page's own refresh after the apply may be the first).
    const outcomes: string[] = [];
    for (let i = 0; i < 12 && (outcomes.length < 3 || !outcomes.slice(-3).every((o) => o === 'dog')); i++) {
      outcomes.push(await page.evaluate(async () => {
        const o = (await (await fetch('/api/calculate?x=2&y=3')).json()) as { answer?: { pet: string }; call: { status: number; flags?: string } };
        return o.answer?.pet ?? `${o.call.status} ${o.call.flags ?? ''}`;
      }));
    }
    assert.ok(outcomes.filter((o) => o === '504 UT').length >= 2, `timeouts before ejection: ${outcomes.join(', ')}`);
    assert.deepEqual(outcomes.slice(-3), ['dog', 'dog', 'dog'], outcomes.join(', '));
    await page.goto(`${demo.url}console/graph`);
    await page.waitForSelector('[data-node="calculate:cat-plus"][data-ejected="true"]');
    assert.equal(await page.locator('[data-node="calculate:dog-multi"]').getAttribute('data-ejected'), 'false');
    await page.waitForSelector('[data-edge="client>calculate"]');
    await page.screenshot({ path: join(shots, 'service-graph.png') });
  });

  it('opens a trace with spans from all five services', async () => {
    await demo.applyScenario('baseline');
    await page.goto(demo.url); // gateway → client → calculate, db, image
    await page.goto(`${demo.url}console/traces`);
    const row = page.locator('#traces tbody tr').filter({ has: page.locator('.chip:text-is("db")') }).filter({ has: page.locator('.chip:text-is("istio-ingressgateway")') }).first();
    await row.locator('a[data-open]').click();
    await page.waitForSelector('#waterfall:not([hidden]) .span-row');
    const services = new Set(await page.locator('#spans .span-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-service'))));
    for (const s of ['istio-ingressgateway', 'client', 'db', 'image']) assert.ok(services.has(s), `${s} in ${[...services].join(', ')}`);
    assert.ok(services.has('calculate-v1') || services.has('calculate-v2'), `calculate in ${[...services].join(', ')}`);
    await page.screenshot({ path: join(shots, 'traces.png') });
  });
});
