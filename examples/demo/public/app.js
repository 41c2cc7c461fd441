// The page's behaviour: calculate without reloading, the dark-release header
// toggle, scenario buttons and the ×20 repeat. Every number shown comes from
// the client's answers, which come from calls through its mesh.
const $ = (sel) => document.querySelector(sel);
const form = $('#calc');
const dark = $('#dark');
const pending = $('#pending');

dark.checked = localStorage.getItem('meshlet-dark') === '1';
const headers = () => (dark.checked ? { version: 'dog' } : {});
const query = () => new URLSearchParams(new FormData(form)).toString();

let ticker;
function busy(on) {
  form.querySelector('button').disabled = on;
  pending.hidden = !on;
  clearInterval(ticker);
  if (!on) return;
  const started = performance.now();
  const out = pending.querySelector('[data-elapsed]');
  out.textContent = '0.0';
  ticker = setInterval(() => { out.textContent = ((performance.now() - started) / 1000).toFixed(1); }, 100);
}

async function refresh() {
  busy(true);
  try {
    const res = await fetch(`/api/view?${query()}`, { headers: headers() });
    const body = await res.json();
    $('#result').innerHTML = body.html;
  } finally {
    busy(false);
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  history.replaceState(null, '', `/?${query()}`);
  void refresh();
});

$('#grpc').addEventListener('change', () => {
  history.replaceState(null, '', `/?${query()}`);
  void refresh();
});

dark.addEventListener('change', () => {
  localStorage.setItem('meshlet-dark', dark.checked ? '1' : '0');
  void refresh();
});

$('#panel').addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-scenario]');
  if (!button) return;
  const buttons = document.querySelectorAll('button[data-scenario]');
  for (const b of buttons) b.disabled = true;
  try {
    const res = await fetch(`/console/api/scenarios/${encodeURIComponent(button.dataset.scenario)}`, { method: 'POST' });
    const body = await res.json();
    $('#panel').innerHTML = body.html;
    $('#tally').innerHTML = '';
    if (res.ok) void refresh();
  } finally {
    for (const b of buttons) b.disabled = false;
  }
});

$('#burst').addEventListener('click', async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  const counts = { cat: 0, dog: 0, err: 0 };
  const flags = {};
  const times = [];
  let next = 0;
  const total = 20;
  const draw = () => {
    const done = counts.cat + counts.dog + counts.err;
    const pct = (n) => `${(100 * n) / total}%`;
    const flagText = Object.entries(flags).map(([k, v]) => `${k}×${v}`).join(', ');
    times.sort((a, b) => a - b);
    const median = times.length ? times[Math.floor(times.length / 2)] : 0;
    $('#tally').innerHTML = `<div class="bar"><span class="cat" style="width:${pct(counts.cat)}"></span><span class="dog" style="width:${pct(counts.dog)}"></span><span class="err" style="width:${pct(counts.err)}"></span></div>
      <div class="legend"><span>🐱 ${counts.cat}</span><span>🐶 ${counts.dog}</span><span>errors ${counts.err}${flagText ? ` (${flagText})` : ''}</span></div>
      <div class="hint">${done}/${total} done · median ${median.toFixed(1)} ms</div>`;
  };
  const worker = async () => {
    while (next < total) {
      next++;
      const res = await fetch(`/api/calculate?${query()}`, { headers: headers() });
      const outcome = await res.json();
      if (outcome.answer) counts[outcome.answer.pet]++;
      else {
        counts.err++;
        const key = `${outcome.call.status}${outcome.call.flags ? ` ${outcome.call.flags}` : ''}`;
        flags[key] = (flags[key] ?? 0) + 1;
      }
      times.push(outcome.call.ms);
      draw();
    }
  };
  try {
    await Promise.all([worker(), worker(), worker(), worker()]);
  } finally {
    button.disabled = false;
  }
});

if (dark.checked) void refresh();
