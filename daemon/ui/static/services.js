// Consul-style services with their checks, from the discovery engine's
// Consul API on the same listener.
import { api, el, note, engineAbsent } from './app.js';

const badge = (s) => el('span', { class: 'badge ' + (s === 'passing' ? 'ok' : s === 'warning' ? 'warn' : 'bad') }, s);

export async function mount(main) {
  main.append(el('h1', {}, 'Services'));
  const absent = engineAbsent('discovery', 'services');
  if (absent) { main.append(absent); return; }
  let names;
  try { names = Object.keys(await api('/v1/catalog/services')).filter((n) => n !== 'consul').sort(); } catch (e) { main.append(note(e.message)); return; }
  if (!names.length) { main.append(note('No service is registered (PUT /v1/agent/service/register, or `cairn service register`).')); return; }
  const body = el('tbody');
  for (const name of names) {
    let entries = [];
    try { entries = await api('/v1/health/service/' + encodeURIComponent(name)); } catch { /* shown as no instance */ }
    for (const en of entries) {
      const svc = en.Service || {};
      const checks = (en.Checks || []).filter((c) => c.ServiceID === svc.ID || !c.ServiceID);
      body.append(el('tr', {},
        el('td', {}, name), el('td', { class: 'code' }, svc.ID || ''),
        el('td', {}, `${svc.Address || en.Node?.Address || ''}${svc.Port ? ':' + svc.Port : ''}`),
        el('td', {}, (svc.Tags || []).join(', ')),
        el('td', {}, checks.length ? checks.map((c) => el('div', {}, badge(c.Status), ' ', c.Name || c.CheckID)) : el('span', { class: 'muted' }, 'no checks')),
        el('td', {}, el('a', { href: '#/?where=' + encodeURIComponent(`subject.contains(${JSON.stringify(svc.ID || name)})`) }, 'events'), ' · ',
          el('a', { href: '#/logs?where=' + encodeURIComponent(`subject.contains(${JSON.stringify(name)})`) }, 'logs'))));
    }
  }
  main.append(el('div', { class: 'scroll-x' }, el('table', { class: 'grid', id: 'services' },
    el('thead', {}, el('tr', {}, ['service', 'id', 'address', 'tags', 'checks', ''].map((h) => el('th', {}, h)))), body)));
}
