/**
 * The console's pages: shells that load their data from the console API in
 * the browser (graph.js, traces.js), sharing the pet shop's header and style.
 */

const shell = (title: string, active: 'graph' | 'traces', body: string, script: string): string => `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title} · meshlet pet shop</title>
  <link rel="stylesheet" href="/console/assets/app.css">
  <link rel="stylesheet" href="/console/assets/console.css">
</head>
<body>
  ${navigation(active)}
  <main class="console">${body}</main>
  <script src="/console/assets/${script}" type="module"></script>
</body>
</html>`;

/** The header with links between the pet shop and the console pages. */
export function navigation(active: 'shop' | 'graph' | 'traces'): string {
  const link = (id: string, href: string, text: string): string => `<a href="${href}"${id === active ? ' class="active" aria-current="page"' : ''}>${text}</a>`;
  return `<header class="top">
    <div class="brand"><span class="logo">⬡</span> meshlet <span class="muted">pet shop</span></div>
    <nav class="nav">${link('shop', '/', 'Pet shop')}${link('graph', '/console/graph', 'Service graph')}${link('traces', '/console/traces', 'Traces')}<a href="/metrics">Prometheus /metrics</a></nav>
  </header>`;
}

/** The live service graph. */
export function renderGraphPage(): string {
  return shell('Service graph', 'graph', `
    <section class="card graph-card">
      <div class="graph-head"><h1>Service graph</h1><p class="hint" id="graph-window">collecting istio_* metrics…</p></div>
      <svg id="graph" viewBox="0 0 960 420" role="img" aria-label="service graph"></svg>
      <p class="legend-line"><span class="dot healthy"></span>healthy <span class="dot degraded"></span>errors &gt; 0.1 % <span class="dot failing"></span>errors ≥ 20 % or ejected <span class="dot idle"></span>no traffic · edges: requests/s · error % · p99, over the last 30 s, from each workload's <code>istio_requests_total</code> and <code>istio_request_duration_milliseconds</code> (reporter="source").</p>
    </section>
    <section class="card"><h2>Edges</h2><table class="calls" id="edges"><thead><tr><th>from</th><th>to</th><th>req/s</th><th>errors</th><th>p99</th><th>flags</th></tr></thead><tbody></tbody></table></section>`, 'graph.js');
}

/** Recent traces and a waterfall. */
export function renderTracesPage(): string {
  return shell('Traces', 'traces', `
    <section class="card"><div class="graph-head"><h1>Recent traces</h1><p class="hint">Spans from every workload's tracer, shipped to the demo in-process — no Jaeger needed. Sampling 100 %.</p></div>
      <table class="calls traces" id="traces"><thead><tr><th>trace</th><th>services</th><th>spans</th><th>duration</th><th>started</th></tr></thead><tbody></tbody></table></section>
    <section class="card" id="waterfall" hidden><h2 id="waterfall-title">Trace</h2><div id="spans" class="waterfall"></div></section>`, 'traces.js');
}
