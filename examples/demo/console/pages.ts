/**
 * The console's pages: shells that load their data from the console API in
 * the browser (graph.js, traces.js, scenarios.js), sharing the pet shop's
 * header and style. The console has its own port, like Kiali, Grafana and
 * Jaeger in the talk (NodePorts 32000–32002): never behind the ingress
 * gateway, so never behind its rate limit.
 */

/** Where the header's links point: the pet shop (through the gateway) and the console's origin. */
export interface NavLinks {
  /** The pet shop's URL (`/` on the gateway's origin). */
  shop: string;
  /** The console's origin (`http://127.0.0.1:<port>`), or '' when the page is the console's own. */
  console: string;
}

const shell = (title: string, active: 'scenarios' | 'graph' | 'traces', links: NavLinks, body: string, script: string): string => `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title} · meshlet pet shop</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/console/assets/app.css">
  <link rel="stylesheet" href="/console/assets/console.css">
</head>
<body>
  ${navigation(active, links)}
  <main class="console">${body}</main>
  <script src="/console/assets/${script}" type="module"></script>
</body>
</html>`;

/** The header with links between the pet shop and the console pages. */
export function navigation(active: 'shop' | 'scenarios' | 'graph' | 'traces', links: NavLinks): string {
  const attr = (s: string): string => s.replace(/[&"<>]/g, (c) => ({ '&': '&amp;', '"': '&quot;', '<': '&lt;', '>': '&gt;' })[c]!);
  const link = (id: string, href: string, text: string): string => `<a href="${attr(href)}" data-nav="${id}"${id === active ? ' class="active" aria-current="page"' : ''}>${text}</a>`;
  const c = links.console;
  return `<header class="top">
    <div class="brand"><span class="logo">⬡</span> meshlet <span class="muted">pet shop</span></div>
    <nav class="nav">${link('shop', links.shop, 'Pet shop')}${link('scenarios', `${c}/console/`, 'Scenarios')}${link('graph', `${c}/console/graph`, 'Service graph')}${link('traces', `${c}/console/traces`, 'Traces')}${link('metrics', `${c}/metrics`, 'Prometheus /metrics')}</nav>
  </header>`;
}

/** The console's home: the scenario switch, usable while the gateway rate-limits the pet shop. */
export function renderScenariosPage(links: NavLinks, panel: string): string {
  return shell('Scenarios', 'scenarios', links, `
    <section class="card" id="panel">${panel}</section>
    <p class="hint">The demo console runs on its own port, as Kiali, Grafana and Jaeger did in the talk: it is never behind the ingress gateway's rate limit. Switch here, then open the <a href="${links.shop}">pet shop</a>.</p>`, 'scenarios.js');
}

/** The live service graph. */
export function renderGraphPage(links: NavLinks): string {
  return shell('Service graph', 'graph', links, `
    <section class="card graph-card">
      <div class="graph-head"><h1>Service graph</h1><p class="hint" id="graph-window">collecting istio_* metrics…</p></div>
      <svg id="graph" viewBox="0 0 1000 470" role="img" aria-label="service graph"></svg>
      <p class="legend-line"><span class="dot healthy"></span>healthy <span class="dot degraded"></span>errors &gt; 0.1 % <span class="dot failing"></span>errors ≥ 20 % or ejected <span class="dot idle"></span>no traffic · edges: requests/s · error % · p99 over the last 30 s. Edges into a workload are what the caller reported (<code>reporter="source"</code>); edges from the calculate service to each version are what that version reported (<code>reporter="destination"</code>), so a timed-out call shows on the version that was too slow.</p>
    </section>
    <section class="card"><h2>Edges</h2><table class="calls" id="edges"><thead><tr><th>from</th><th>to</th><th>req/s</th><th>errors</th><th>p99</th><th>flags</th></tr></thead><tbody></tbody></table></section>`, 'graph.js');
}

/** Recent traces and a waterfall. */
export function renderTracesPage(links: NavLinks): string {
  return shell('Traces', 'traces', links, `
    <section class="card" id="waterfall" hidden><h2 id="waterfall-title">Trace</h2><div id="spans" class="waterfall"></div></section>
    <section class="card"><div class="graph-head"><h1>Recent traces</h1><p class="hint">Spans from every workload's tracer, shipped to the demo in-process — no Jaeger needed. Sampling 100 %. Traces with an error or a slow call are kept longest; the demo's own polling and static files are not traced here.</p></div>
      <table class="calls traces" id="traces"><thead><tr><th>trace</th><th>scenario</th><th>services</th><th>spans</th><th>duration</th><th>started</th></tr></thead><tbody></tbody></table></section>`, 'traces.js');
}
