// Recent traces: a list polled every 3 s; clicking one draws its waterfall
// above the list and scrolls to it (one row per span, indented by depth, a
// bar per duration, coloured by service).
const tbody = document.querySelector('#traces tbody');
const COLORS = { 'istio-ingressgateway': '#7048e8', client: '#3b5bdb', 'calculate-v1': '#f08c2e', 'calculate-v2': '#3d8bd9', db: '#2f9e44', image: '#d6336c' };
const KIND = { 0: 'INTERNAL', 1: 'SERVER', 2: 'CLIENT', 3: 'PRODUCER', 4: 'CONSUMER' };
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const ms = (v) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);
let open = new URLSearchParams(location.search).get('trace');

async function list() {
  const res = await fetch('/console/api/traces', { cache: 'no-store' });
  const traces = await res.json();
  tbody.innerHTML = traces.map((t) => `<tr data-trace="${t.traceId}" class="${t.errors ? 'failed' : ''}${t.traceId === open ? ' selected' : ''}">
    <td><a href="?trace=${t.traceId}" data-open="${t.traceId}">${esc(t.name)}</a>${t.flags.map((f) => ` <code class="flag">${esc(f)}</code>`).join('')}<br><code class="muted">${t.traceId.slice(0, 16)}…</code></td>
    <td data-scenario>${esc(t.scenario ?? '')}</td>
    <td>${t.services.map((s) => `<span class="chip" style="--c:${COLORS[s] ?? '#868e96'}">${esc(s)}</span>`).join(' ')}</td>
    <td class="num" data-span-count>${t.spans}</td><td class="num">${ms(t.durationMs)}</td><td>${new Date(t.start).toLocaleTimeString()}</td></tr>`).join('');
}

async function show(traceId) {
  const res = await fetch(`/console/api/traces/${traceId}`, { cache: 'no-store' });
  const section = document.querySelector('#waterfall');
  if (!res.ok) {
    section.hidden = true;
    return;
  }
  const { spans } = await res.json();
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const depth = (s) => {
    let d = 0;
    for (let p = byId.get(s.parentSpanId); p && d < 20; p = byId.get(p.parentSpanId)) d++;
    return d;
  };
  // Depth-first order: each span right after its parent, siblings by start.
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId)) (children.get(s.parentSpanId) ?? children.set(s.parentSpanId, []).get(s.parentSpanId)).push(s);
    else roots.push(s);
  }
  const ordered = [];
  const walk = (s) => {
    ordered.push(s);
    for (const c of (children.get(s.spanId) ?? []).sort((a, b) => a.start - b.start)) walk(c);
  };
  roots.sort((a, b) => a.start - b.start).forEach(walk);
  const t0 = Math.min(...spans.map((s) => s.start));
  const total = Math.max(...spans.map((s) => s.start + s.durationMs)) - t0 || 1;
  const services = [...new Set(spans.map((s) => s.service))];
  document.querySelector('#waterfall-title').textContent = `Trace ${traceId.slice(0, 16)}… · ${spans.length} spans · ${services.length} services · ${ms(total)}`;
  document.querySelector('#spans').innerHTML = ordered.map((s) => {
    const left = ((s.start - t0) / total) * 100;
    const width = Math.max(0.5, (s.durationMs / total) * 100);
    const attrs = ['http.response.status_code', 'url.full', 'url.path', 'meshlet.cluster', 'meshlet.flags'].filter((k) => s.attributes[k] !== undefined).map((k) => `${k}=${s.attributes[k]}`).join('  ');
    return `<div class="span-row${s.status === 2 ? ' error' : ''}" data-service="${esc(s.service)}" title="${esc(attrs)}">
      <div class="span-name" style="padding-left:${depth(s) * 14}px"><span class="chip" style="--c:${COLORS[s.service] ?? '#868e96'}">${esc(s.service)}</span> <code>${KIND[s.kind] ?? s.kind}</code> ${esc(s.name)}</div>
      <div class="span-track"><div class="span-bar" style="left:${left}%;width:${width}%;background:${COLORS[s.service] ?? '#868e96'}"></div><span class="span-ms" style="left:${Math.min(left + width, 88)}%">${ms(s.durationMs)}</span></div>
    </div>`;
  }).join('');
  section.hidden = false;
  section.scrollIntoView({ block: 'start' });
}

tbody.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-open]');
  if (!link) return;
  event.preventDefault();
  open = link.dataset.open;
  history.replaceState(null, '', `?trace=${open}`);
  for (const row of tbody.querySelectorAll('tr')) row.classList.toggle('selected', row.dataset.trace === open);
  void show(open);
});

await list();
if (open) void show(open);
setInterval(() => void list().catch(() => {}), 3000);
