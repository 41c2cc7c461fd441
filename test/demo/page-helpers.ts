/**
 * What the browser test reads off the demo's pages: the result card, a
 * Calculate click, Run ×20 tallies, whether an emoji has colour, and whether
 * the service graph's labels sit clear of its nodes. Each waits for a
 * condition on the page, never for time.
 */
import type { Page } from 'playwright-core';

// The callbacks below run in the page. The project compiles without lib.dom, so these are
// the few DOM shapes they touch, declared here (module scope: nothing leaks to other files).
interface El {
  textContent: string | null;
  tagName: string;
  parentElement: El | null;
  dataset: Record<string, string | undefined>;
  querySelector(selector: string): El | null;
  setAttribute(name: string, value: string): void;
  getBoundingClientRect(): { left: number; right: number; top: number; bottom: number };
}
interface Canvas2d {
  fillStyle: string;
  font: string;
  fillText(text: string, x: number, y: number): void;
  getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
}
declare const document: {
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El> & Iterable<El>;
  createElement(tag: 'canvas'): { width: number; height: number; getContext(kind: '2d'): Canvas2d | null };
};

/** Marks the current result card, so that its replacement can be awaited (`:not([data-seen])`). */
export async function markCard(page: Page): Promise<void> {
  await page.evaluate(() => document.querySelector('#result section.result')?.setAttribute('data-seen', ''));
}

/** The result card as the user sees it. */
export interface Card {
  h1: string;
  pet: string;
  status: string;
  flags: string;
  /** `gateway` when the ingress gateway answered itself (its rate limit). */
  source: string;
  /** The calculation's time as the card shows it, ms (NaN when the card shows none). */
  ms: number;
}

/** Reads the current result card. */
export function card(page: Page): Promise<Card> {
  return page.$eval('#result section.result', (node) => {
    const el = node as unknown as El;
    const text = el.querySelector('[data-ms]')?.textContent ?? '';
    const m = /([\d.]+) (s|ms)/.exec(text);
    const ms = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : Number.NaN;
    const data = el.dataset;
    return { h1: el.querySelector('h1')!.textContent!.trim(), pet: data.pet ?? '', status: data.status ?? '', flags: data.flags ?? '', source: data.source ?? 'client', ms };
  });
}

/** Clicks Calculate and resolves with the new card (the old one is marked, so its replacement is awaited). */
export async function calculate(page: Page): Promise<Card> {
  await markCard(page);
  await page.click('#calc button[type="submit"]');
  await page.waitForSelector('#result section.result:not([data-seen])');
  return card(page);
}

/** A Run ×20 tally. */
export interface Tally {
  cat: number;
  dog: number;
  errors: number;
  /** The errors' legend, e.g. `errors 16 (429 RL (gateway)×16)`. */
  text: string;
}

/** Runs ×20 up to `max` times (until `enough`), summing the tallies. */
export async function bursts(page: Page, max: number, enough: (t: Tally) => boolean = () => true): Promise<Tally> {
  const sum: Tally = { cat: 0, dog: 0, errors: 0, text: '' };
  for (let i = 0; i < max; i++) {
    await page.click('#burst');
    await page.waitForSelector('#tally .hint:has-text("20/20 done")');
    await page.waitForSelector('#burst:enabled');
    const count = async (k: string): Promise<string> => page.locator(`#tally [data-count="${k}"]`).innerText();
    sum.cat += Number((await count('cat')).replace(/\D/g, ''));
    sum.dog += Number((await count('dog')).replace(/\D/g, ''));
    const errors = await count('errors');
    sum.errors += Number(/errors (\d+)/.exec(errors)![1]);
    sum.text = errors;
    if (enough(sum)) break;
  }
  return sum;
}

/** Whether `emoji` draws with coloured pixels (a colour emoji font), not as a monochrome box. */
export function emojiHasColour(page: Page, emoji: string): Promise<boolean> {
  return page.evaluate((e) => {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 48;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#000';
    ctx.font = '32px sans-serif';
    ctx.fillText(e, 4, 38);
    const { data } = ctx.getImageData(0, 0, 48, 48);
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 40) return true;
    }
    return false;
  }, emoji);
}

/** Pairs of overlapping boxes on the graph: an edge label over a node (circle, label) or over another edge label. */
export function labelOverlaps(page: Page): Promise<string[]> {
  // No named functions inside: the callback runs in the page, without tsx's helpers.
  return page.evaluate(() => {
    const labels = [...document.querySelectorAll('#graph .edge-label')].map((el) => ({ id: el.dataset.edgeLabel!, r: el.getBoundingClientRect() }));
    // Each shape and text of a node, not the node's whole box (whose empty corners hide nothing).
    const nodes = [...document.querySelectorAll('#graph [data-node] > *')].map((el) => ({ id: `${el.parentElement!.dataset.node!} ${el.tagName}`, r: el.getBoundingClientRect() }));
    const out: string[] = [];
    labels.forEach((l, i) => {
      for (const o of [...nodes.map((n) => ({ id: `node ${n.id}`, r: n.r })), ...labels.slice(i + 1)]) {
        if (l.r.left < o.r.right && o.r.left < l.r.right && l.r.top < o.r.bottom && o.r.top < l.r.bottom) out.push(`${l.id} over ${o.id}`);
      }
    });
    return out;
  });
}
