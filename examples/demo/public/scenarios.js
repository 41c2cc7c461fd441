// The console's scenario switch: the same panel as the pet shop's, served by
// the console on its own port (never behind the gateway's rate limit).
const panel = document.querySelector('#panel');

panel.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-scenario]');
  if (!button) return;
  for (const b of panel.querySelectorAll('button[data-scenario]')) b.disabled = true;
  try {
    const res = await fetch(`/console/api/scenarios/${encodeURIComponent(button.dataset.scenario)}`, { method: 'POST' });
    panel.innerHTML = (await res.json()).html;
  } catch (err) {
    panel.insertAdjacentHTML('afterbegin', `<p class="apply-error" role="alert">the demo console did not answer: ${String(err.message).replace(/[&<>]/g, '')}</p>`);
  } finally {
    for (const b of panel.querySelectorAll('button[data-scenario]')) b.disabled = false;
  }
});
