/**
 * The pet-shop page as HTML strings. The same fragment renderers serve the
 * first server-side render and the browser's updates (`/api/view` returns the
 * result fragment), so there is one renderer and the page works with curl
 * (`curl -s URL | grep '<h1>'`, as in the talk).
 */
import type { Scenario } from '../scenarios.js';
import { scenarios } from '../scenarios.js';
import { navigation } from '../console/pages.js';
import type { CallRecord, PageView } from './calls.js';

/** Escapes text for HTML content and attribute values. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const ms = (value: number): string => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`);

/** The result card: room title (h1), pet photo and info, the calculation and the calls behind it. */
export function renderResult(view: PageView): string {
  const { calculate } = view;
  const answer = calculate.answer;
  const pet = answer?.pet ?? 'none';
  const title = answer ? answer.room : calculate.errorTitle ?? 'Error';
  const photo = view.image
    ? `<img class="photo" src="${view.image}" alt="${esc(pet)} photo from the image service" width="200" height="200">`
    : `<div class="photo placeholder" aria-hidden="true">?</div>`;
  const info = view.pet
    ? `<dl class="pet-info">
        <dt>Name</dt><dd>${esc(view.pet.name)}</dd>
        <dt>Breed</dt><dd>${esc(view.pet.breed)}</dd>
        <dt>Age</dt><dd>${esc(view.pet.age)}</dd>
        <dt>Likes</dt><dd>${esc(view.pet.likes)}</dd>
      </dl>`
    : '';
  const outcome = answer
    ? `<p class="calc-result"><span class="expr">${esc(answer.x)} ${esc(answer.symbol)} ${esc(answer.y)} =</span> <strong data-result>${esc(answer.result)}</strong></p>
       <p class="took">answered by <code>${esc(answer.version)}</code> in <strong data-ms>${ms(calculate.call.ms)}</strong></p>`
    : `<div class="local-reply">
         <p><strong>${esc(calculate.call.status || 'no response')}</strong>${calculate.call.flags ? ` · <code>x-meshlet-flags: ${esc(calculate.call.flags)}</code>` : ''} · after <strong data-ms>${ms(calculate.call.ms)}</strong></p>
         ${calculate.call.error ? `<p class="reply-body"><code>${esc(calculate.call.error)}</code></p>` : ''}
       </div>`;
  return `<section class="result pet-${esc(pet)}" data-pet="${esc(pet)}" data-status="${esc(calculate.call.status)}" data-flags="${esc(calculate.call.flags ?? '')}">
    <h1>${esc(title)}</h1>
    <div class="pet">${photo}${info}</div>
    ${outcome}
    ${renderCalls(view.calls, view.versionHeader)}
  </section>`;
}

/** The table of calls the client made through its mesh for this render. */
export function renderCalls(calls: CallRecord[], versionHeader: string | undefined): string {
  const rows = calls.map((c) => `<tr class="${c.flags ? 'flagged' : c.status === 200 ? 'ok' : 'failed'}">
      <td><code>${esc(c.service)}</code></td><td><code>${esc(c.path)}</code></td>
      <td>${esc(c.status || '—')}</td><td>${c.flags ? `<code>${esc(c.flags)}</code>` : ''}</td>
      <td>${esc(c.version ?? '')}</td><td class="num">${ms(c.ms)}</td></tr>`).join('');
  return `<table class="calls">
    <caption>Calls through the mesh${versionHeader ? ` · sent with <code>version: ${esc(versionHeader)}</code>` : ''}</caption>
    <thead><tr><th>service</th><th>path</th><th>status</th><th>flags</th><th>version</th><th>time</th></tr></thead>
    <tbody>${rows}</tbody></table>`;
}

/** The scenario buttons, the active one marked, and its YAML. */
export function renderScenarioPanel(active: Scenario | undefined, activeYaml: string, error?: string, probe?: PlaintextProbe): string {
  const buttons = scenarios.map((s) => `<li><button type="button" class="scenario${s === active ? ' active' : ''}" data-scenario="${esc(s.name)}" aria-pressed="${s === active}">
      <span class="section">${esc(s.section)}</span><span class="name">${esc(s.title)}</span><span class="expect">${esc(s.expect)}</span></button></li>`).join('');
  return `<h2>Scenarios</h2>
    <p class="active-line">Active: <strong data-active-scenario>${esc(active?.name ?? 'none')}</strong>${active ? ` · <code>scenarios/${esc(active.file)}</code>` : ''}</p>
    ${error ? `<p class="apply-error" role="alert">${esc(error)}</p>` : ''}
    ${active?.counts ? `<p class="counts" data-counts>${esc(active.counts)}</p>` : ''}
    ${probe ? `<p class="probe" data-probe="${probe.refused ? 'refused' : 'accepted'}">Plaintext probe to calculate (<code>${esc(probe.target)}</code>, no certificate): <strong>${probe.refused ? 'refused' : 'accepted'}</strong> — ${esc(probe.detail)}</p>` : ''}
    <ul class="scenarios">${buttons}</ul>
    <details><summary>Istio YAML in force</summary><pre><code>${esc(activeYaml)}</code></pre></details>`;
}

/** A plain HTTP request straight to a calculate instance, bypassing every mesh (what mTLS STRICT refuses). */
export interface PlaintextProbe {
  target: string;
  refused: boolean;
  /** `HTTP 200` when accepted; the socket error when refused. */
  detail: string;
}

/** What the page inlines and links to, so that one page load is one request through the gateway. */
export interface PageAssets {
  /** The console's origin (`http://127.0.0.1:<port>`): header links and the scenario buttons go there, not through the gateway. */
  consoleOrigin: string;
  css: string;
  js: string;
}

/** The whole page: styles and script inline, no favicon request, so a page load is one access (what the talk's rate limit counts). */
export function renderPage(view: PageView, panel: string, serviceEntriesYaml: string, assets: PageAssets): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>meshlet pet shop</title>
  <link rel="icon" href="data:,">
  <style>${assets.css}</style>
</head>
<body data-console="${esc(assets.consoleOrigin)}">
  ${navigation('shop', { shop: '/', console: assets.consoleOrigin })}
  <p class="subtitle">gateway → client → calculate (v1 cat + / v2 dog ×), db, image — every call through a proxyless mesh inside each process, configured by a control plane</p>
  <main>
    <div class="col">
      <div id="result">${renderResult(view)}</div>
      <form id="calc" class="calculator" method="get" action="/">
        <label>Number 1 <input name="x" type="number" value="${esc(view.x)}" step="any"></label>
        <label>Number 2 <input name="y" type="number" value="${esc(view.y)}" step="any"></label>
        <button type="submit">Calculate</button>
        <span id="pending" class="pending" hidden>calculating… <span data-elapsed>0.0</span> s</span>
      </form>
    </div>
    <aside class="col side">
      <div class="card">
        <label class="toggle"><input id="dark" type="checkbox"> <span>send header <code>version: dog</code></span></label>
        <label class="toggle"><input id="grpc" form="calc" type="checkbox" name="proto" value="grpc"${view.protocol === 'grpc' ? ' checked' : ''}> <span>call calculate over gRPC</span></label>
        <p class="hint">Dark release: the browser sends the header, the client forwards it, the mesh routes on it. gRPC: the client calls <code>calculate.Calculate/Calculate</code> instead of <code>GET /calculate</code>; the same VirtualService routes it.</p>
      </div>
      <div class="card" id="panel">${panel}</div>
      <div class="card">
        <h2>Repeat</h2>
        <p class="hint">20 calculations through the mesh, 4 at a time.</p>
        <button type="button" id="burst">Run ×20</button>
        <div id="tally" class="tally"></div>
      </div>
      <details class="card"><summary>Generated ServiceEntries</summary><pre><code>${esc(serviceEntriesYaml)}</code></pre></details>
    </aside>
  </main>
  <script type="module">${assets.js}</script>
</body>
</html>`;
}
