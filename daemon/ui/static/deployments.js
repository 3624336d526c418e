// BOSH-style deployments and their instances, from the deploy engine's
// read verbs.
import { el, run, note, engineAbsent } from './app.js';

export async function mount(main, q) {
  main.append(el('h1', {}, 'Deployments'));
  const absent = engineAbsent('deploy', 'deployments');
  if (absent) { main.append(absent); return; }
  let deps;
  try { deps = (await run('deployments')).rows; } catch (e) { main.append(note(e.message)); return; }
  if (!deps.length) { main.append(note('No deployment yet (`cairn deploy MANIFEST`).')); return; }
  const vitals = q.get('vitals') === '1';
  main.append(el('p', {}, el('a', { href: vitals ? '#/deployments' : '#/deployments?vitals=1' }, vitals ? 'hide vitals' : 'show vitals (CPU, memory: reads each container)')));
  for (const d of deps) {
    const name = d.name || d.deployment;
    main.append(el('h2', {}, name, ' ', el('span', { class: 'muted' }, [d.releases, d.stemcells, d.instances + ' instances'].filter(Boolean).join(' · '))));
    let rows = [];
    try {
      rows = (await run(`deploy instances ${JSON.stringify(name)}`)).rows;
    } catch (e) { main.append(note(e.message)); continue; }
    let vit = {};
    if (vitals) {
      try { for (const v of (await run(`deploy vms ${JSON.stringify(name)} vitals`)).rows) vit[v.instance] = v; } catch { /* vitals are optional */ }
    }
    const hasAZ = rows.some((r) => r.az);
    const mib = (b) => b == null ? '' : (b / 1048576).toFixed(1) + ' MiB';
    const cols = ['instance', 'process state', 'desired', 'address', ...(hasAZ ? ['az'] : []), ...(vitals ? ['container', 'cpu', 'memory', 'disk'] : []), ''];
    main.append(el('div', { class: 'scroll-x' }, el('table', { class: 'grid deploy' },
      el('thead', {}, el('tr', {}, cols.map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.map((r) => {
        const v = vit[r.instance] || {};
        return el('tr', {},
          el('td', { class: 'code' }, r.instance), el('td', {}, r.process_state || ''), el('td', {}, r.desired || ''),
          el('td', {}, r.ip || ''), ...(hasAZ ? [el('td', {}, r.az || '')] : []),
          ...(vitals ? [el('td', {}, v.state || ''), el('td', {}, v.cpu_percent == null ? '' : v.cpu_percent.toFixed(1) + ' %'),
            el('td', {}, mib(v.memory_bytes) + (v.memory_limit_bytes ? ' / ' + mib(v.memory_limit_bytes) : '')), el('td', {}, mib(v.disk_bytes))] : []),
          el('td', {}, el('a', { href: '#/logs?where=' + encodeURIComponent(`subject.contains(${JSON.stringify(r.instance)})`) }, 'logs'), ' · ',
            el('a', { href: '#/?where=' + encodeURIComponent(`subject.contains(${JSON.stringify(r.instance)})`) }, 'events')));
      })))));
  }
}
