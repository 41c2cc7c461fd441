// The page's behaviour: calculate without reloading, the dark-release header
// toggle, scenario buttons and the ×20 repeat. Every number shown comes from
// the client's answers, which come from calls through its mesh — or, when the
// ingress gateway answers by itself (its global rate limit: 429, flag RL),
// from the gateway's reply, shown as such. Scenario buttons go to the demo
// console's own port (data-console), which the gateway never rate-limits.
const $ = (sel) => document.querySelector(sel);
const form = $('#calc');
const dark = $('#dark');
const pending = $('#pending');
const consoleOrigin = document.body.dataset.console ?? '';

dark.checked = localStorage.getItem('meshlet-dark') === '1';
const headers = () => (dark.checked ? { version: 'dog' } : {});
const query = () => new URLSearchParams(new FormData(form)).toString();
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const REASON = { 403: 'Forbidden', 429: 'Too Many Requests', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

/**
 * The client's JSON answer, or — when the gateway answered itself (not JSON) —
 * its status, response flag and text as a local reply of the gateway.
 */
async function answerOf(res) {
  if ((res.headers.get('content-type') ?? '').includes('application/json')) return { json: await res.json() };
  return { gateway: { status: res.status, flags: res.headers.get('x-meshlet-flags') ?? '', text: (await res.text()).slice(0, 200) } };
}

/** The result card for a reply of the gateway itself: the client never saw the request. */
function gatewayCard({ status, flags, text }) {
  const title = `${status} ${REASON[status] ?? 'Error'}`;
  const why = flags === 'RL' ? 'the ingress gateway\'s global rate limit' : 'the ingress gateway';
  return `<section class="result pet-none" data-pet="none" data-status="${status}" data-flags="${esc(flags)}" data-source="gateway">
    <h1 class="gateway-reply">${esc(title)}</h1>
    <div class="local-reply">
      <p><strong>${status}</strong>${flags ? ` · <code>x-meshlet-flags: ${esc(flags)}</code>` : ''} · answered by ${why}; the request never reached the client</p>
      ${text ? `<p class="reply-body"><code>${esc(text)}</code></p>` : ''}
    </div>
  </section>`;
}

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
    const answer = await answerOf(res);
    $('#result').innerHTML = answer.json ? answer.json.html : gatewayCard(answer.gateway);
  } catch (err) {
    $('#result').innerHTML = gatewayCard({ status: 0, flags: '', text: `the request failed: ${err.message}` });
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
    const res = await fetch(`${consoleOrigin}/console/api/scenarios/${encodeURIComponent(button.dataset.scenario)}`, { method: 'POST' });
    const body = await res.json();
    $('#panel').innerHTML = body.html;
    $('#tally').innerHTML = '';
    if (!res.ok) return;
    if (body.counts) {
      // A rate limit counts the user's accesses: refreshing here would spend one.
      $('#result').insertAdjacentHTML('afterbegin', '<p class="stale" data-stale>Not refreshed after the switch, so nothing was counted yet. Calculate (or reload) to see the new scenario.</p>');
    } else void refresh();
  } catch (err) {
    $('#panel').insertAdjacentHTML('afterbegin', `<p class="apply-error" role="alert">the demo console did not answer: ${esc(err.message)}</p>`);
  } finally {
    for (const b of document.querySelectorAll('button[data-scenario]')) b.disabled = false;
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
      <div class="legend"><span data-count="cat">🐱 ${counts.cat}</span><span data-count="dog">🐶 ${counts.dog}</span><span data-count="errors">errors ${counts.err}${flagText ? ` (${esc(flagText)})` : ''}</span></div>
      <div class="hint">${done}/${total} done · median ${median.toFixed(1)} ms</div>`;
  };
  const failed = (key) => {
    counts.err++;
    flags[key] = (flags[key] ?? 0) + 1;
  };
  const worker = async () => {
    while (next < total) {
      next++;
      const started = performance.now();
      try {
        const answer = await answerOf(await fetch(`/api/calculate?${query()}`, { headers: headers() }));
        if (answer.gateway) {
          failed(`${answer.gateway.status}${answer.gateway.flags ? ` ${answer.gateway.flags}` : ''} (gateway)`);
          times.push(performance.now() - started);
        } else {
          const outcome = answer.json;
          if (outcome.answer) counts[outcome.answer.pet]++;
          else failed(`${outcome.call.status}${outcome.call.flags ? ` ${outcome.call.flags}` : ''}`);
          times.push(outcome.call.ms);
        }
      } catch (err) {
        failed(`no answer (${err.message})`);
      }
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
