// fleet-edge console: a small single-page app over the management API (/api/fleet/...), the
// same endpoints a script calls. Every DOM node is built with textContent (no innerHTML of
// data), the session lives in an HttpOnly cookie, and each write sends the session's CSRF token.
'use strict';
(function () {
  let csrf = null;
  const $ = (id) => document.getElementById(id);
  const view = $('view');

  // h('tag.class', {attr: v, onclick: f}, child...) builds an element; strings become text.
  function h(spec, attrs, ...kids) {
    const [tag, ...classes] = spec.split('.');
    const el = document.createElement(tag);
    if (classes.length) el.className = classes.join(' ');
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const badge = (s) => h('span.badge.s-' + String(s || 'none').replace(/[^a-z_]/gi, '_').toLowerCase(), {}, s || '—');
  const when = (t) => (t ? new Date(t).toLocaleString() : '—');
  function toast(msg) {
    const t = $('toast');
    t.textContent = msg;
    t.className = 'show';
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (t.className = ''), 4000);
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      headers['kbn-xsrf'] = 'fleet-edge-console';
      if (csrf) headers['X-CSRF-Token'] = csrf;
    }
    const res = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (res.status === 401 && !path.startsWith('/console/api/login')) { showLogin(); throw new Error('session expired'); }
    if (!res.ok) throw new Error((data && data.message) || res.status + ' ' + res.statusText);
    return data;
  }
  const get = (p) => api('GET', p);
  async function act(label, method, path, body, after) {
    try {
      await api(method, path, body);
      toast(label + ': done');
      if (after) after();
    } catch (e) { toast(label + ' failed: ' + e.message); }
  }

  // ---- session ---------------------------------------------------------------------------
  function showLogin() {
    csrf = null;
    $('nav').hidden = true;
    view.replaceChildren();
    $('login').hidden = false;
    $('token').focus();
  }
  async function start() {
    try {
      const s = await api('GET', '/console/api/session');
      csrf = s.csrf;
      $('login').hidden = true;
      $('nav').hidden = false;
      route();
    } catch (_) { showLogin(); }
  }
  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('login-error').textContent = '';
    try {
      const s = await api('POST', '/console/api/login', { token: $('token').value });
      $('token').value = '';
      csrf = s.csrf;
      start();
    } catch (e) { $('login-error').textContent = e.message; }
  });
  $('logout').addEventListener('click', async () => {
    try { await api('POST', '/console/api/logout', {}); } catch (_) { /* the cookie is gone either way */ }
    showLogin();
  });

  // ---- routing ---------------------------------------------------------------------------
  function route() {
    if (!csrf) return;
    const parts = (location.hash || '#/overview').slice(2).split('/').map(decodeURIComponent);
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('on', a.dataset.page === parts[0]);
    const pages = { overview, agents, agent: () => agent(parts[1]), policies, policy: () => policy(parts[1]) };
    view.replaceChildren(h('p.mut', {}, 'Loading…'));
    (pages[parts[0]] || overview)().catch((e) => view.replaceChildren(h('p.error', {}, e.message)));
  }
  window.addEventListener('hashchange', route);

  // ---- overview --------------------------------------------------------------------------
  const STATUSES = ['online', 'error', 'degraded', 'offline', 'updating', 'enrolling', 'unenrolling', 'inactive', 'unenrolled', 'uninstalled', 'orphaned'];
  async function overview() {
    const [counts, pols, acts] = await Promise.all([
      get('/api/fleet/agent_status'), get('/api/fleet/agent_policies?perPage=1000'),
      get('/api/fleet/agents/action_status?perPage=10'),
    ]);
    const by = counts.results.by_status || {};
    const max = Math.max(1, ...STATUSES.map((s) => by[s] || 0));
    const outdated = await olderRevisions(pols.items);
    view.replaceChildren(
      h('h1', {}, 'Overview'),
      h('div.grid', {},
        h('section.card', {},
          h('h2', {}, 'Agents'),
          h('div.big', { id: 'total-active' }, counts.results.active),
          h('p.mut', {}, 'active of ', String(counts.results.all), ' enrolled'),
          h('div.bars', { id: 'by-status' }, STATUSES.filter((s) => by[s]).map((s) =>
            h('div', {}, h('span.n', {}, by[s]), h('i', { style: null, 'data-w': by[s] / max }), h('a', { href: '#/agents?status=' + s }, badge(s)))))),
        h('section.card', {},
          h('h2', {}, 'Policies'),
          h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Policy'), h('th', {}, 'Rev.'), h('th', {}, 'Agents'), h('th', {}, 'On older rev.'))),
            h('tbody', {}, pols.items.map((p) => h('tr', {},
              h('td', {}, h('a', { href: '#/policy/' + encodeURIComponent(p.id) }, p.name)),
              h('td', {}, p.revision), h('td', {}, p.agents),
              h('td', {}, outdated[p.id] ? badge(String(outdated[p.id])) : '0'))))))),
      h('section.card', {},
        h('h2', {}, 'Recent actions'),
        actionTable(acts.items.slice(0, 10))));
    // Bar widths through CSSOM (the policy allows no inline style attribute).
    for (const i of view.querySelectorAll('.bars i')) i.style.width = (Number(i.dataset.w) * 12) + 'rem';
  }
  // Agents whose policy_revision is below their policy's revision, counted page by page.
  async function olderRevisions(policies) {
    const rev = Object.fromEntries(policies.map((p) => [p.id, p.revision]));
    const out = {};
    for (let page = 1; page <= 20; page++) {
      const list = await get('/api/fleet/agents?perPage=1000&page=' + page);
      for (const a of list.items) {
        if (a.policy_id in rev && (a.policy_revision || 0) < rev[a.policy_id]) out[a.policy_id] = (out[a.policy_id] || 0) + 1;
      }
      if (page * 1000 >= list.total) break;
    }
    return out;
  }
  function actionTable(items) {
    if (!items.length) return h('p.mut', {}, 'No actions yet.');
    return h('table', {}, h('thead', {}, h('tr', {}, ['Action', 'Status', 'Progress', 'Created'].map((t) => h('th', {}, t)))),
      h('tbody', {}, items.map((a) => h('tr', {},
        h('td', {}, a.type, h('div.mut', {}, a.actionId)),
        h('td', {}, badge(a.status)),
        h('td', {}, h('progress', { max: a.nbAgentsActioned || 1, value: a.nbAgentsAck + a.nbAgentsFailed }),
          ' ', `${a.nbAgentsAck} acked, ${a.nbAgentsFailed} failed, ${a.nbAgentsActioned - a.nbAgentsAck - a.nbAgentsFailed} pending`),
        h('td', {}, when(a.creationTime))))));
  }

  // ---- agents ----------------------------------------------------------------------------
  const PER_PAGE = 50;
  const quote = (v) => '"' + String(v).replace(/["\\]/g, '') + '"';
  function kuery(f) {
    const terms = [];
    if (f.q) terms.push(`(local_metadata.host.hostname:${quote(f.q + '*')} or agent.id:${quote(f.q + '*')})`);
    if (f.status) terms.push('status:' + quote(f.status));
    if (f.policy) terms.push('policy_id:' + quote(f.policy));
    if (f.tag) terms.push('tags:' + quote(f.tag));
    if (f.version) terms.push('agent.version:' + quote(f.version));
    return terms.join(' and ');
  }
  async function agents() {
    const params = new URLSearchParams(location.hash.split('?')[1] || '');
    const f = { q: params.get('q') || '', status: params.get('status') || '', policy: params.get('policy') || '', tag: params.get('tag') || '', version: params.get('version') || '', page: Number(params.get('page') || 1) };
    const [pols, tags] = await Promise.all([get('/api/fleet/agent_policies?perPage=1000'), get('/api/fleet/agents/tags')]);
    const q = h('input', { type: 'search', placeholder: 'Host name or agent id', value: f.q, 'aria-label': 'search' });
    const sel = (name, label, values) => h('select', { 'aria-label': label, name },
      h('option', { value: '' }, 'Any ' + label), values.map(([v, t]) => h('option', { value: v, selected: v === f[name] }, t)));
    const status = sel('status', 'status', STATUSES.map((s) => [s, s]));
    const policySel = sel('policy', 'policy', pols.items.map((p) => [p.id, p.name]));
    const tag = sel('tag', 'tag', tags.items.map((t) => [t, t]));
    const version = h('input', { placeholder: 'Version', value: f.version, size: 8, 'aria-label': 'version' });
    const apply = (page) => {
      const p = new URLSearchParams();
      const next = { q: q.value.trim(), status: status.value, policy: policySel.value, tag: tag.value, version: version.value.trim() };
      for (const [k, v] of Object.entries(next)) if (v) p.set(k, v);
      if (page > 1) p.set('page', page);
      location.hash = '#/agents' + (p.toString() ? '?' + p : '');
    };
    const form = h('form.filters', { id: 'filters', onsubmit: (e) => { e.preventDefault(); apply(1); } }, q, status, policySel, tag, version, h('button', { type: 'submit' }, 'Filter'));
    for (const s of [status, policySel, tag]) s.addEventListener('change', () => apply(1));
    const inactive = ['inactive', 'unenrolled', 'uninstalled', 'orphaned'].includes(f.status);
    const query = new URLSearchParams({ page: f.page, perPage: PER_PAGE, showInactive: inactive });
    const k = kuery(f);
    if (k) query.set('kuery', k);
    const list = await get('/api/fleet/agents?' + query);
    const pages = Math.max(1, Math.ceil(list.total / PER_PAGE));
    view.replaceChildren(
      h('h1', {}, 'Agents'),
      h('section.card', {}, form,
        h('p.mut', { id: 'agent-count' }, `${list.total} agents`),
        h('table.agents', { id: 'agents' },
          h('thead', {}, h('tr', {}, ['Host', 'Status', 'Policy', 'Version', 'Tags', 'Last check-in'].map((t) => h('th', {}, t)))),
          h('tbody', {}, list.items.map((a) => h('tr.link', { 'data-id': a.id, onclick: () => (location.hash = '#/agent/' + encodeURIComponent(a.id)) },
            h('td', {}, h('a', { href: '#/agent/' + encodeURIComponent(a.id) }, a.hostname || a.id)),
            h('td', {}, badge(a.status)),
            h('td', {}, a.policy_id || '—', a.policy_revision ? ' rev ' + a.policy_revision : ''),
            h('td', {}, a.version || '—'),
            h('td', {}, (a.tags || []).map((t) => h('span.badge', {}, t))),
            h('td', {}, when(a.last_checkin)))))),
        h('div.row', {},
          h('button.sec', { disabled: f.page <= 1, onclick: () => apply(f.page - 1) }, '‹ Previous'),
          h('span', {}, `page ${f.page} of ${pages}`),
          h('button.sec', { disabled: f.page >= pages, onclick: () => apply(f.page + 1) }, 'Next ›'))));
  }

  async function agent(id) {
    const [{ item: a }, pols] = await Promise.all([get('/api/fleet/agents/' + encodeURIComponent(id)), get('/api/fleet/agent_policies?perPage=1000')]);
    const path = '/api/fleet/agents/' + encodeURIComponent(id);
    const reload = () => agent(id).catch((e) => toast(e.message));
    const up = a.upgrade_details;
    const tagsInput = h('input', { id: 'tags-input', value: (a.tags || []).join(', '), 'aria-label': 'tags' });
    const version = h('input', { id: 'upgrade-version', placeholder: '8.16.0', size: 8, 'aria-label': 'upgrade version' });
    const policySel = h('select', { 'aria-label': 'new policy' }, pols.items.map((p) => h('option', { value: p.id, selected: p.id === a.policy_id }, p.name)));
    const level = h('select', { 'aria-label': 'log level' }, ['error', 'warning', 'info', 'debug'].map((l) => h('option', { value: l }, l)));
    const confirmThen = (msg, f) => () => { if (confirm(msg)) f(); };
    view.replaceChildren(
      h('p', {}, h('a', { href: '#/agents' }, '‹ Agents')),
      h('h1', {}, a.hostname || a.id, ' ', badge(a.status)),
      h('div.grid', {},
        h('section.card', {}, h('h2', {}, 'Details'), h('dl', {},
          [['Agent id', a.id], ['Policy', (a.policy_id || '—') + (a.policy_revision ? ' rev ' + a.policy_revision : '')],
            ['Version', a.version], ['Enrolled', when(a.enrolled_at)], ['Last check-in', when(a.last_checkin)],
            ['Last message', a.last_checkin_message || '—'], ['Tags', (a.tags || []).join(', ') || '—'],
            ['Upgrade', up ? `${up.state || ''} → ${up.target_version || ''}${up.metadata && up.metadata.download_percent !== undefined ? ' (' + up.metadata.download_percent + '%)' : ''}` : (a.upgrade_failure || (a.upgraded_at ? 'upgraded ' + when(a.upgraded_at) : '—'))],
          ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
        h('section.card', {}, h('h2', {}, 'Actions'),
          h('div.row', {}, tagsInput, h('button', { id: 'save-tags', onclick: () => act('Tags', 'PUT', path, { tags: tagsInput.value.split(',').map((t) => t.trim()).filter(Boolean) }, reload) }, 'Save tags')),
          h('div.row', {}, version, h('button', { onclick: () => version.value.trim() && act('Upgrade', 'POST', path + '/upgrade', { version: version.value.trim() }, reload) }, 'Upgrade')),
          h('div.row', {}, policySel, h('button', { onclick: () => act('Reassign', 'POST', path + '/reassign', { policy_id: policySel.value }, reload) }, 'Reassign')),
          h('div.row', {}, level, h('button', { onclick: () => act('Log level', 'POST', path + '/actions', { action: { type: 'SETTINGS', data: { log_level: level.value } } }, reload) }, 'Set log level')),
          h('div.row', {},
            h('button.sec', { id: 'diagnostics', onclick: () => act('Diagnostics requested', 'POST', path + '/request_diagnostics', {}, reload) }, 'Request diagnostics'),
            h('button.danger', { onclick: confirmThen('Unenroll this agent?', () => act('Unenroll', 'POST', path + '/unenroll', {}, reload)) }, 'Unenroll'),
            h('button.danger', { onclick: confirmThen('Force-unenroll (revoke its keys now)?', () => act('Force unenroll', 'POST', path + '/unenroll', { force: true, revoke: true }, reload)) }, 'Force unenroll')))),
      h('section.card', {}, h('h2', {}, 'Components'), components(a.components || [])));
  }
  function components(list) {
    if (!list.length) return h('p.mut', {}, 'The agent reported no components.');
    return h('table', { id: 'components' }, h('thead', {}, h('tr', {}, ['Component', 'Status', 'Message', 'Units'].map((t) => h('th', {}, t)))),
      h('tbody', {}, list.map((c) => h('tr', {},
        h('td', {}, c.id, h('div.mut', {}, c.type || '')), h('td', {}, badge(c.status)), h('td', {}, c.message || ''),
        h('td', {}, (c.units || []).map((u) => h('div', {}, badge(u.status), ' ', u.id, u.message ? ': ' + u.message : '')))))));
  }

  // ---- policies and enrollment tokens ----------------------------------------------------
  async function policies() {
    const [pols, keys] = await Promise.all([get('/api/fleet/agent_policies?perPage=1000'), get('/api/fleet/enrollment_api_keys?perPage=1000')]);
    const url = h('input', { id: 'fleet-url', value: 'https://' + location.hostname + ':8220', size: 30, 'aria-label': 'Fleet Server URL' });
    const ca = h('input', { id: 'ca-path', placeholder: '/path/to/ca.crt (self-signed certificates)', size: 30, 'aria-label': 'CA file' });
    const cmd = h('code.cmd', { id: 'install-command' }, 'Pick a token below.');
    let chosen = null;
    const show = () => {
      if (!chosen) return;
      cmd.textContent = `sudo elastic-agent install --url=${url.value.trim()} --enrollment-token=${chosen}` + (ca.value.trim() ? ' --certificate-authorities=' + ca.value.trim() : '');
    };
    url.addEventListener('input', show); ca.addEventListener('input', show);
    const policySel = h('select', { id: 'token-policy', 'aria-label': 'policy' }, pols.items.map((p) => h('option', { value: p.id }, p.name)));
    const name = h('input', { id: 'token-name', placeholder: 'Token name', 'aria-label': 'token name' });
    view.replaceChildren(
      h('h1', {}, 'Policies'),
      h('section.card', {}, h('table', { id: 'policies' },
        h('thead', {}, h('tr', {}, ['Policy', 'Id', 'Revision', 'Agents', 'Updated'].map((t) => h('th', {}, t)))),
        h('tbody', {}, pols.items.map((p) => h('tr', {},
          h('td', {}, h('a', { href: '#/policy/' + encodeURIComponent(p.id) }, p.name)), h('td', {}, p.id),
          h('td', {}, p.revision), h('td', {}, h('a', { href: '#/agents?policy=' + encodeURIComponent(p.id) }, String(p.agents))), h('td', {}, when(p.updated_at))))))),
      h('h1', {}, 'Enrollment tokens'),
      h('section.card', {},
        h('div.row', {}, policySel, name, h('button', { id: 'create-token', onclick: () => act('Token created', 'POST', '/api/fleet/enrollment_api_keys', { policy_id: policySel.value, name: name.value.trim() || undefined }, route) }, 'Create token')),
        h('table', { id: 'tokens' }, h('thead', {}, h('tr', {}, ['Name', 'Policy', 'Created', 'Active', ''].map((t) => h('th', {}, t)))),
          h('tbody', {}, keys.items.map((k) => h('tr', {},
            h('td', {}, k.name || k.id), h('td', {}, k.policy_id), h('td', {}, when(k.created_at)), h('td', {}, k.active ? badge('active') : badge('revoked')),
            h('td', {}, k.active && [
              h('button.sec', { onclick: () => { chosen = k.api_key; show(); cmd.scrollIntoView(); } }, 'Install command'), ' ',
              h('button.danger', { onclick: () => confirm('Revoke this token?') && act('Token revoked', 'DELETE', '/api/fleet/enrollment_api_keys/' + encodeURIComponent(k.id), undefined, route) }, 'Revoke')])))))),
      h('section.card', {}, h('h2', {}, 'Install an agent'),
        h('div.row', {}, h('label', { for: 'fleet-url' }, 'Fleet Server URL'), url), h('div.row', {}, h('label', { for: 'ca-path' }, 'CA'), ca), cmd,
        h('div.row', {}, h('button.sec', { onclick: () => navigator.clipboard.writeText(cmd.textContent).then(() => toast('Copied'), () => toast('Copy by hand: the browser refused')) }, 'Copy'))));
  }

  async function policy(id) {
    const { item } = await get('/api/fleet/agent_policies/' + encodeURIComponent(id) + '/full');
    view.replaceChildren(h('p', {}, h('a', { href: '#/policies' }, '‹ Policies')),
      h('h1', {}, 'Policy ', id, ' ', h('a', { href: '#/agents?policy=' + encodeURIComponent(id) }, '(agents)')),
      h('section.card', {}, h('h2', {}, 'Compiled policy (what agents receive)'), highlight(JSON.stringify(item, null, 2))));
  }
  // JSON with keys, strings and numbers in colour: spans built from tokens, never parsed HTML.
  function highlight(text) {
    const pre = h('pre', { id: 'policy-json' });
    const re = /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/g;
    let last = 0;
    for (const m of text.matchAll(re)) {
      pre.append(text.slice(last, m.index));
      pre.append(h('span.' + (m[1] ? (m[2] ? 'k' : 's') : 'n'), {}, m[1] || m[3]), m[2] || '');
      last = m.index + m[0].length;
    }
    pre.append(text.slice(last));
    return pre;
  }

  start();
})();
