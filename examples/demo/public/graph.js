// The live service graph: polls /console/api/graph every 2 s and draws the
// nodes (coloured by health, the ejected calculate version marked) and the
// edges (requests/s · error % on one line, p99 and flags on the next) as SVG.
// The layout keeps every label clear of the nodes: the browser test checks it.
const svg = document.querySelector('#graph');
const NS = 'http://www.w3.org/2000/svg';
const POS = {
  gateway: [80, 240], client: [290, 240], calculate: [620, 130],
  'calculate:cat-plus': [900, 60], 'calculate:dog-multi': [900, 205], db: [620, 310], image: [620, 420],
};
const COLOR = { healthy: '#2f9e44', degraded: '#f08c00', failing: '#d6336c', idle: '#adb5bd' };

const el = (name, attrs = {}, text) => {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
};
const fmtRate = (r) => (r >= 10 ? r.toFixed(0) : r.toFixed(2));
const fmtMs = (ms) => (ms === undefined || ms === null ? '–' : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`);

function draw(graph) {
  svg.replaceChildren();
  const defs = el('defs');
  for (const [health, color] of Object.entries(COLOR)) {
    const marker = el('marker', { id: `arrow-${health}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
    marker.append(el('path', { d: 'M0,0 L10,5 L0,10 z', fill: color }));
    defs.append(marker);
  }
  svg.append(defs);
  for (const e of graph.edges) {
    const a = POS[e.source];
    const b = POS[e.target];
    if (!a || !b) continue;
    const dx = b[0] - a[0];
    const dy = b[1] - a[1];
    const len = Math.hypot(dx, dy);
    const r = 30;
    const [x1, y1, x2, y2] = [a[0] + (dx / len) * r, a[1] + (dy / len) * r, b[0] - (dx / len) * (r + 4), b[1] - (dy / len) * (r + 4)];
    const g = el('g', { class: `edge ${e.health}`, 'data-edge': `${e.source}>${e.target}` });
    g.append(el('line', { x1, y1, x2, y2, stroke: COLOR[e.health], 'stroke-width': e.requests > 0 ? 3 : 1.5, 'marker-end': `url(#arrow-${e.health})`, 'stroke-dasharray': e.requests > 0 ? '' : '5 5' }));
    const flags = Object.entries(e.flags).map(([k, v]) => `${k}×${Math.round(v)}`).join(' ');
    // Two short lines at the middle of the edge, shifted off the line on its upper side.
    const [nx, ny] = -dx / len > 0 ? [-dy / len, dx / len] : [dy / len, -dx / len];
    const mx = (x1 + x2) / 2 + nx * 16;
    const my = (y1 + y2) / 2 + ny * 16 - 6;
    const text = el('text', { x: mx, y: my, class: 'edge-label', 'text-anchor': 'middle', 'data-edge-label': `${e.source}>${e.target}` });
    text.append(el('tspan', { x: mx, dy: 0 }, `${fmtRate(e.rps)} rps · ${(e.errorRate * 100).toFixed(0)} % err`));
    text.append(el('tspan', { x: mx, dy: 13 }, `p99 ${fmtMs(e.p99Ms)}${flags ? ` · ${flags}` : ''}`));
    g.append(text);
    svg.append(g);
  }
  for (const n of graph.nodes) {
    const [x, y] = POS[n.id] ?? [40, 40];
    const g = el('g', { class: `node ${n.health}${n.ejected ? ' ejected' : ''}`, 'data-node': n.id, 'data-health': n.health, 'data-ejected': String(n.ejected) });
    if (n.kind === 'service') g.append(el('path', { d: `M${x},${y - 30} L${x + 30},${y + 22} L${x - 30},${y + 22} z`, fill: '#fff', stroke: COLOR[n.health], 'stroke-width': 4 }));
    else g.append(el('circle', { cx: x, cy: y, r: 28, fill: '#fff', stroke: COLOR[n.health], 'stroke-width': 4 }));
    if (n.ejected) g.append(el('circle', { cx: x, cy: y, r: 36, fill: 'none', stroke: COLOR.failing, 'stroke-width': 2, 'stroke-dasharray': '6 4' }));
    g.append(el('text', { x, y: y + 48, 'text-anchor': 'middle', class: 'node-label' }, n.label));
    if (n.version && n.kind === 'app' && n.id.startsWith('calculate:')) g.append(el('text', { x, y: y + 63, 'text-anchor': 'middle', class: 'node-version' }, `version: ${n.version}`));
    if (n.ejected) g.append(el('text', { x, y: y - 42, 'text-anchor': 'middle', class: 'ejected-label' }, 'EJECTED (outlier detection)'));
    svg.append(g);
  }
  document.querySelector('#graph-window').textContent = `last ${graph.windowSeconds} s · updated ${new Date(graph.at).toLocaleTimeString()}`;
  const rows = graph.edges.map((e) => `<tr class="${e.health === 'failing' ? 'failed' : ''}"><td>${e.source}</td><td>${e.target}</td><td class="num">${fmtRate(e.rps)}</td><td class="num">${(e.errorRate * 100).toFixed(1)} %</td><td class="num">${fmtMs(e.p99Ms)}</td><td>${Object.entries(e.flags).map(([k, v]) => `<code>${k}</code>×${Math.round(v)}`).join(' ')}</td></tr>`);
  document.querySelector('#edges tbody').innerHTML = rows.join('');
}

async function tick() {
  try {
    const res = await fetch('/console/api/graph', { cache: 'no-store' });
    if (res.ok) draw(await res.json());
  } catch {
    // the demo is stopping; try again on the next tick
  }
}
void tick();
setInterval(tick, 2000);
