// fleet-edge console: a small single-page app over the management API (/api/fleet/...), the
// same endpoints a script calls. Every DOM node is built with textContent (no innerHTML of
// data), the session lives in an HttpOnly cookie, and each write sends the session's CSRF token.
'use strict';
(function () {
  let me = null; // {csrf, name, role, expires}
  const $ = (id) => document.getElementById(id);
  const view = $('view');
  const canWrite = () => me && me.role === 'admin';

  // h('tag.class#id', {attr: v, onclick: f}, child...) builds an element; strings become text.
  function h(spec, attrs, ...kids) {
    const [tag, ...classes] = spec.split('.');
    const el = document.createElement(tag);
    if (classes.length) el.className = classes.join(' ');
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const badge = (s) => h('span.badge.s-' + String(s || 'none').replace(/[^a-z_]/gi, '_').toLowerCase(), {}, s || '—');
  const when = (t) => (t ? new Date(t).toLocaleString() : '—');
  const enc = encodeURIComponent;
  const table = (id, heads, rows) => h('table', { id }, h('thead', {}, h('tr', {}, heads.map((t) => h('th', {}, t)))), h('tbody', {}, rows));
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
      if (me) headers['X-CSRF-Token'] = me.csrf;
    }
    const res = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (res.status === 401 && !path.startsWith('/console/api/')) { showLogin(); throw new Error('session expired'); }
    if (!res.ok) {
      const e = new Error((data && data.message) || res.status + ' ' + res.statusText);
      e.status = res.status;
      throw e;
    }
    return data;
  }
  const get = (p) => api('GET', p);
  async function act(label, method, path, body, after) {
    try {
      const r = await api(method, path, body);
      toast(label + ': done');
      if (after) after(r);
    } catch (e) { toast(label + ' failed: ' + e.message); }
  }
  // Policies change rarely: one request per page view at most.
  let policyCache = null;
  const policies$ = () => (policyCache = policyCache || get('/api/fleet/agent_policies?perPage=1000').catch((e) => { policyCache = null; throw e; }));

  // ---- session ---------------------------------------------------------------------------
  function showLogin() {
    me = null;
    policyCache = null;
    $('nav').hidden = true;
    view.replaceChildren();
    $('login').hidden = false;
    $('token').focus();
  }
  async function start() {
    try {
      me = await api('GET', '/console/api/session');
      $('login').hidden = true;
      $('nav').hidden = false;
      $('who').textContent = me.name + (me.role === 'viewer' ? ' (viewer)' : '');
      document.body.classList.toggle('viewer', !canWrite());
      route();
    } catch (_) { showLogin(); }
  }
  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('login-error').textContent = '';
    try {
      await api('POST', '/console/api/login', { token: $('token').value });
      $('token').value = '';
      start();
    } catch (e) { $('login-error').textContent = e.message; }
  });
  $('logout').addEventListener('click', async () => {
    try { await api('POST', '/console/api/logout', {}); } catch (_) { /* the cookie is gone either way */ }
    showLogin();
  });

  // ---- routing ---------------------------------------------------------------------------
  let generation = 0;
  function route() {
    if (!me) return;
    const [path, query] = (location.hash || '#/overview').slice(2).split('?');
    const parts = path.split('/').map(decodeURIComponent);
    const params = new URLSearchParams(query || '');
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('on', a.dataset.page === parts[0] || (a.dataset.page === 'agents' && parts[0] === 'agent'));
    const pages = { overview, agents: () => agents(params), agent: () => agent(parts[1]), policies: () => policies(), policy: () => policy(parts[1]), files };
    const page = pages[parts[0]] || overview;
    // The agents page keeps its form and table across paging and filtering.
    if (parts[0] !== 'agents' || !$('agents')) view.replaceChildren(h('p.mut', {}, 'Loading…'));
    const mine = ++generation;
    page().then(() => { if (mine === generation) document.body.dataset.page = parts[0]; })
      .catch((e) => { if (mine === generation) view.replaceChildren(h('p.error', { role: 'alert' }, e.message)); });
  }
  window.addEventListener('hashchange', route);

  // ---- overview --------------------------------------------------------------------------
  const STATUSES = ['online', 'error', 'degraded', 'offline', 'updating', 'enrolling', 'unenrolling', 'inactive', 'unenrolled', 'uninstalled', 'orphaned'];
  const kq = (v) => '"' + String(v).replace(/["\\]/g, '') + '"';
  async function overview() {
    const [counts, pols, acts, health, hist] = await Promise.all([
      get('/api/fleet/agent_status'), policies$(),
      get('/api/fleet/agents/action_status?perPage=10'), get('/api/fleet/fleet_edge/health'),
      get('/api/fleet/fleet_edge/status_history').catch(() => null),
    ]);
    // Agents of each policy not on its current revision, counted by the API (one small page each).
    const older = await Promise.all(pols.items.map((p) => get('/api/fleet/agents?perPage=1&showInactive=false&kuery=' +
      enc(`policy_id:${kq(p.id)} and not policy_revision_idx:${p.revision}`)).then((r) => r.total)));
    const by = counts.results.by_status || {};
    const max = Math.max(1, ...STATUSES.map((s) => by[s] || 0));
    view.replaceChildren(
      h('h1', {}, 'Overview'),
      h('div.grid', {},
        h('section.card', { id: 'agents-card' },
          h('h2', {}, 'Agents'),
          h('div.big', { id: 'total-active' }, counts.results.active),
          h('p.mut', {}, 'active of ', String(counts.results.all), ' enrolled'),
          h('div.bars', { id: 'by-status' }, STATUSES.filter((s) => by[s]).map((s) =>
            h('div', {}, h('span.n', {}, by[s]), h('i', { 'data-w': by[s] / max }), h('a', { href: '#/agents?status=' + s }, badge(s))))),
          statusChart(hist)),
        h('section.card', { id: 'health' },
          h('h2', {}, 'Server'),
          h('dl', {}, [
            ['Status', badge(health.status.toLowerCase())], ['Store', health.store],
            ['Parked long polls', health.parked_long_polls], ['Requests in flight', health.requests_in_flight],
            ['Checkin writes pending', health.checkin_writes_pending], ['Late backend replies', health.late_backend_replies],
            ['Up', Math.round(health.uptime_seconds / 60) + ' min'],
          ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])))),
      h('section.card', {},
        h('h2', {}, 'Policies'),
        table('overview-policies', ['Policy', 'Revision', 'Agents', 'On an older revision'], pols.items.map((p, i) => h('tr', {},
          h('td', {}, h('a', { href: '#/policy/' + enc(p.id) }, p.name || p.id)),
          h('td', {}, p.revision), h('td', {}, h('a', { href: '#/agents?policy=' + enc(p.id) }, String(p.agents))),
          h('td', {}, older[i] ? badge(String(older[i])) : '0'))))),
      h('section.card', {},
        h('h2', {}, 'Recent actions'),
        actionTable(acts.items.slice(0, 10))));
    // Bar widths through CSSOM (the policy allows no inline style attribute).
    for (const i of view.querySelectorAll('.bars i')) i.style.width = (Number(i.dataset.w) * 10) + 'rem';
  }
  // Agents by status over the last 24 h from the server's 5-minute samples: one stacked bar a
  // sample, one SVG path a status (built as DOM nodes; colours from the stylesheet).
  const svg = (tag, attrs, ...kids) => {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    el.append(...kids);
    return el;
  };
  function statusChart(hist) {
    if (!hist) return null;
    const samples = hist.samples;
    if (!samples.length) return h('p.mut.small', { id: 'status-chart' }, 'No status history yet: a sample is kept every 5 minutes.');
    const W = 576, H = 96, span = hist.window_seconds * 1000, step = hist.interval_seconds * 1000;
    const end = Date.parse(samples[samples.length - 1].timestamp) + step;
    const total = (s) => s.counts.reduce((a, n) => a + n, 0);
    const top = Math.max(1, ...samples.map(total));
    const x = (t) => Math.max(0, W - ((end - t) / span) * W);
    const w = Math.max(1, (step / span) * W + 0.5); // touching bars
    const d = hist.statuses.map(() => []);
    for (const s of samples) {
      const left = x(Date.parse(s.timestamp)).toFixed(1);
      let base = H;
      s.counts.forEach((n, i) => {
        if (!n) return;
        const hgt = (n / top) * H;
        d[i].push(`M${left} ${(base - hgt).toFixed(1)}h${w.toFixed(1)}V${base.toFixed(1)}h-${w.toFixed(1)}Z`);
        base -= hgt;
      });
    }
    const shown = hist.statuses.map((s, i) => [s, d[i]]).filter(([, p]) => p.length);
    const when = (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return h('figure.chart', { id: 'status-chart', 'data-samples': samples.length },
      svg('svg', { viewBox: `0 0 ${W} ${H + 14}`, 'shape-rendering': 'crispEdges', role: 'img', 'aria-label': 'Agents by status over the last 24 hours' },
        ...shown.map(([s, p]) => svg('path', { class: 'c-' + s, d: p.join('') }, svg('title', {}, s))),
        svg('line', { x1: 0, y1: H + 0.5, x2: W, y2: H + 0.5 }),
        svg('text', { x: 0, y: H + 12 }, '24 h earlier'),
        svg('text', { x: W, y: H + 12, 'text-anchor': 'end' }, when(end)),
        svg('text', { x: 2, y: 10 }, String(top))),
      h('figcaption.small', {}, 'Last 24 h: ', shown.map(([s]) => h('span.key', {}, h('i.c-' + s), s))));
  }
  function actionTable(items, id) {
    if (!items.length) return h('p.mut', {}, 'No actions yet.');
    return table(id || 'actions', ['Action', 'Status', 'Progress', 'Created'], items.map((a) => h('tr', {},
      h('td', {}, a.type, h('div.mut.small', {}, a.actionId)),
      h('td', {}, badge(a.status)),
      h('td', {}, h('progress', { max: a.nbAgentsActioned || 1, value: a.nbAgentsAck + a.nbAgentsFailed }),
        h('div.small', {}, `${a.nbAgentsAck} acked, ${a.nbAgentsFailed} failed, ${a.nbAgentsActioned - a.nbAgentsAck - a.nbAgentsFailed} pending`),
        (a.latestErrors || []).slice(0, 3).map((e) => h('div.small.error', {}, e.error))),
      h('td', {}, when(a.creationTime)))));
  }

  // ---- agents ----------------------------------------------------------------------------
  const PER_PAGE = 50;
  const INACTIVE = ['inactive', 'unenrolled', 'uninstalled', 'orphaned'];
  let tagCache = null;
  async function agents(params) {
    const f = { q: params.get('q') || '', status: params.get('status') || '', policy: params.get('policy') || '', tag: params.get('tag') || '', version: params.get('version') || '', page: Math.max(1, Number(params.get('page')) || 1) };
    const terms = [];
    if (f.status) terms.push('status:' + kq(f.status));
    if (f.policy) terms.push('policy_id:' + kq(f.policy));
    if (f.tag) terms.push('tags:' + kq(f.tag));
    if (f.version) terms.push('agent.version:' + kq(f.version));
    const query = new URLSearchParams({ page: f.page, perPage: PER_PAGE, showInactive: INACTIVE.includes(f.status) });
    if (terms.length) query.set('kuery', terms.join(' and '));
    if (f.q) query.set('search', f.q);
    if (!$('agents')) {
      if (!tagCache) tagCache = get('/api/fleet/agents/tags').catch(() => ({ items: [] }));
      const [pols, tags] = await Promise.all([policies$(), tagCache]);
      agentsForm(pols, tags);
    }
    const list = await get('/api/fleet/agents?' + query);
    const form = $('filters');
    for (const [k, v] of Object.entries(f)) if (form.elements[k]) form.elements[k].value = v;
    const pages = Math.max(1, Math.ceil(list.total / PER_PAGE));
    $('agent-count').textContent = `${list.total} agents`;
    $('agents').tBodies[0].replaceChildren(...list.items.map((a) => h('tr', { 'data-id': a.id },
      h('td', {}, h('a', { href: '#/agent/' + enc(a.id) }, a.hostname || a.id)),
      h('td', {}, badge(a.status)),
      h('td', {}, a.policy_id || '—', a.policy_revision ? ' rev ' + a.policy_revision : ''),
      h('td', {}, a.version || '—'),
      h('td', {}, (a.tags || []).map((t) => h('span.badge', {}, t))),
      h('td', {}, when(a.last_checkin)))));
    $('page-of').textContent = `page ${f.page} of ${pages}`;
    $('prev').disabled = f.page <= 1;
    $('next').disabled = f.page >= pages;
    $('prev').dataset.page = f.page - 1;
    $('next').dataset.page = f.page + 1;
    performance.mark('agents-rendered');
  }
  function agentsForm(pols, tags) {
    const sel = (name, label, values) => h('select', { 'aria-label': label, name },
      h('option', { value: '' }, 'Any ' + label), values.map(([v, t]) => h('option', { value: v }, t)));
    const apply = (page) => {
      const form = $('filters');
      const p = new URLSearchParams();
      for (const k of ['q', 'status', 'policy', 'tag', 'version']) { const v = form.elements[k].value.trim(); if (v) p.set(k, v); }
      if (page > 1) p.set('page', page);
      location.hash = '#/agents' + (p.toString() ? '?' + p : '');
    };
    const form = h('form.filters', { id: 'filters', onsubmit: (e) => { e.preventDefault(); apply(1); } },
      h('input', { type: 'search', name: 'q', placeholder: 'Host name or agent id', 'aria-label': 'search' }),
      sel('status', 'status', STATUSES.map((s) => [s, s])),
      sel('policy', 'policy', pols.items.map((p) => [p.id, p.name || p.id])),
      sel('tag', 'tag', tags.items.map((t) => [t, t])),
      h('input', { name: 'version', placeholder: 'Version', size: 8, 'aria-label': 'version' }),
      h('button', { type: 'submit' }, 'Filter'));
    for (const s of form.querySelectorAll('select')) s.addEventListener('change', () => apply(1));
    view.replaceChildren(
      h('h1', {}, 'Agents'),
      h('section.card', {}, form,
        h('p.mut', { id: 'agent-count' }),
        h('table.agents', { id: 'agents' },
          h('thead', {}, h('tr', {}, ['Host', 'Status', 'Policy', 'Version', 'Tags', 'Last check-in'].map((t) => h('th', {}, t)))),
          h('tbody', { onclick: (e) => { const tr = e.target.closest('tr'); if (tr && e.target.tagName !== 'A') location.hash = '#/agent/' + enc(tr.dataset.id); } })),
        h('div.row', {},
          h('button.sec', { id: 'prev', type: 'button', onclick: (e) => apply(Number(e.target.dataset.page)) }, '‹ Previous'),
          h('span', { id: 'page-of' }),
          h('button.sec', { id: 'next', type: 'button', onclick: (e) => apply(Number(e.target.dataset.page)) }, 'Next ›'))));
  }

  async function agent(id) {
    const path = '/api/fleet/agents/' + enc(id);
    const [{ item: a }, pols, acts, uploads] = await Promise.all([get(path), policies$(),
      get('/api/fleet/agents/action_status?perPage=20&agentId=' + enc(id)),
      get(path + '/uploads').catch((e) => ({ missing: e.status === 404, items: [] }))]);
    const reload = () => { if (location.hash === '#/agent/' + enc(id)) route(); };
    const up = a.upgrade_details;
    const upgrade = up ? `${up.state || ''} → ${up.target_version || ''}${up.metadata && up.metadata.download_percent !== undefined ? ' (' + up.metadata.download_percent + ' % downloaded)' : ''}${up.metadata && up.metadata.error_msg ? ': ' + up.metadata.error_msg : ''}`
      : (a.upgrade_failure || (a.upgraded_at ? 'upgraded ' + when(a.upgraded_at) : '—'));
    const tagsInput = h('input', { id: 'tags-input', value: (a.tags || []).join(', '), 'aria-label': 'tags' });
    const version = h('input', { id: 'upgrade-version', placeholder: '9.2.1', size: 8, 'aria-label': 'upgrade version' });
    const policySel = h('select', { 'aria-label': 'new policy' }, pols.items.map((p) => h('option', { value: p.id, selected: p.id === a.policy_id }, p.name || p.id)));
    const level = h('select', { 'aria-label': 'log level' }, ['error', 'warning', 'info', 'debug'].map((l) => h('option', { value: l }, l)));
    const confirmThen = (msg, f) => () => { if (confirm(msg)) f(); };
    const actions = canWrite() ? h('section.card', { id: 'agent-actions' }, h('h2', {}, 'Actions'),
      h('div.row', {}, tagsInput, h('button', { id: 'save-tags', onclick: () => act('Tags', 'PUT', path, { tags: tagsInput.value.split(',').map((t) => t.trim()).filter(Boolean) }, () => { tagCache = null; reload(); }) }, 'Save tags')),
      h('div.row', {}, version, h('button', { id: 'upgrade', onclick: () => version.value.trim() && act('Upgrade', 'POST', path + '/upgrade', { version: version.value.trim() }, reload) }, 'Upgrade')),
      h('div.row', {}, policySel, h('button', { id: 'reassign', onclick: () => act('Reassign', 'POST', path + '/reassign', { policy_id: policySel.value }, reload) }, 'Reassign')),
      h('div.row', {}, level, h('button', { id: 'log-level', onclick: () => act('Log level', 'POST', path + '/actions', { action: { type: 'SETTINGS', data: { log_level: level.value } } }, reload) }, 'Set log level')),
      h('div.row', {},
        h('button.sec', { id: 'diagnostics', onclick: () => act('Diagnostics requested', 'POST', path + '/request_diagnostics', {}, reload) }, 'Request diagnostics'),
        h('button.danger', { id: 'unenroll', onclick: confirmThen('Unenroll this agent?', () => act('Unenroll', 'POST', path + '/unenroll', {}, reload)) }, 'Unenroll'),
        h('button.danger', { id: 'force-unenroll', onclick: confirmThen('Force-unenroll (revoke its keys now)?', () => act('Force unenroll', 'POST', path + '/unenroll', { force: true, revoke: true }, reload)) }, 'Force unenroll')))
      : h('section.card', {}, h('h2', {}, 'Actions'), h('p.mut', {}, 'Your role is viewer: read only.'));
    view.replaceChildren(
      h('p', {}, h('a', { href: '#/agents' }, '‹ Agents')),
      h('h1', { id: 'agent-title' }, a.hostname || a.id, ' ', badge(a.status)),
      h('div.grid', {},
        h('section.card', {}, h('h2', {}, 'Details'), h('dl', { id: 'agent-details' },
          [['Agent id', a.id], ['Policy', (a.policy_id || '—') + (a.policy_revision ? ' rev ' + a.policy_revision : '')],
            ['Version', a.version || '—'], ['Enrolled', when(a.enrolled_at)], ['Last check-in', when(a.last_checkin)],
            ['Last message', a.last_checkin_message || '—'], ['Tags', (a.tags || []).join(', ') || '—'],
            ['Upgrade', upgrade], ['Problems', (a.problems || []).join('; ') || '—'],
          ].map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
        actions),
      h('section.card', {}, h('h2', {}, 'Components'), components(a.components || [])),
      h('section.card', {}, h('h2', {}, 'Diagnostics'), uploadList(uploads)),
      h('section.card', {}, h('h2', {}, 'Actions history'), actionTable(acts.items, 'agent-history')));
  }
  function components(list) {
    if (!list.length) return h('p.mut', {}, 'The agent reported no components.');
    return table('components', ['Component', 'Status', 'Message', 'Units'], list.map((c) => h('tr', {},
      h('td', {}, c.id, h('div.mut.small', {}, c.type || '')), h('td', {}, badge(c.status)), h('td', {}, c.message || ''),
      h('td', {}, (c.units || []).map((u) => h('div', {}, badge(u.status), ' ', u.id, u.message ? ': ' + u.message : ''))))));
  }
  // Kibana's uploads list; a server without the uploads endpoint says so (404).
  function uploadList(uploads, withAgent) {
    if (uploads.missing) return h('p.mut', { id: 'uploads-missing' }, 'This server does not keep uploaded files yet: requested diagnostics show in the actions history.');
    if (!uploads.items.length) return h('p.mut', { id: 'uploads-none' }, 'No diagnostics bundle uploaded.');
    return table('uploads', (withAgent ? ['Agent'] : []).concat(['File', 'Status', 'Created', '']), uploads.items.map((u) => h('tr', {},
      withAgent && h('td', {}, h('a', { href: '#/agent/' + enc(u.agentId) }, u.agentId)),
      h('td', {}, u.name || u.id), h('td', {}, badge(u.status)), h('td', {}, when(u.createTime)),
      h('td', {}, u.filePath && u.status === 'READY' ? h('a', { href: u.filePath, download: u.name || 'diagnostics.zip' }, 'Download') : (u.error || '')))));
  }

  // ---- files -----------------------------------------------------------------------------
  async function files() {
    const acts = await get('/api/fleet/agents/action_status?perPage=100');
    const diag = acts.items.filter((a) => a.type === 'REQUEST_DIAGNOSTICS');
    const agentIds = new Set();
    for (const a of diag) {
      const r = await get('/api/fleet/actions/' + enc(a.actionId) + '/results').catch(() => ({ items: [] }));
      for (const x of r.items) agentIds.add(x.agent_id);
    }
    const uploads = { items: [], missing: false };
    for (const id of agentIds) {
      const u = await get('/api/fleet/agents/' + enc(id) + '/uploads').catch((e) => ({ missing: e.status === 404, items: [] }));
      uploads.missing = uploads.missing || u.missing;
      for (const item of u.items) uploads.items.push(Object.assign({ agentId: id }, item));
    }
    view.replaceChildren(h('h1', {}, 'Files'),
      h('section.card', {}, h('h2', {}, 'Uploaded diagnostics'), agentIds.size ? uploadList(uploads, true) : h('p.mut', {}, 'No agent has answered a diagnostics request yet.')),
      h('section.card', {}, h('h2', {}, 'Diagnostics requests'), actionTable(diag, 'diagnostics-requests')));
  }

  // ---- policies and enrollment tokens ----------------------------------------------------
  async function policies(created) {
    policyCache = null;
    const [pols, keys, hint] = await Promise.all([policies$(), get('/api/fleet/enrollment_api_keys?perPage=1000'),
      get('/api/fleet/fleet_edge/enrollment').catch(() => null)]);
    const cmd = h('code.cmd', { id: 'install-command' }, 'Pick a token: its install command shows here.');
    const copy = h('button.sec', { id: 'copy-command', type: 'button', disabled: true, onclick: () => copyText(cmd.textContent) }, 'Copy');
    const show = (token) => {
      cmd.textContent = hint ? hint.install_command.replace('{TOKEN}', token) : `sudo elastic-agent install --url=<Fleet Server URL> --enrollment-token=${token}`;
      copy.disabled = false;
      cmd.scrollIntoView({ block: 'nearest' });
    };
    const policySel = h('select', { id: 'token-policy', 'aria-label': 'policy' }, pols.items.map((p) => h('option', { value: p.id }, p.name || p.id)));
    const name = h('input', { id: 'token-name', placeholder: 'Token name', 'aria-label': 'token name' });
    view.replaceChildren(
      h('h1', {}, 'Policies'),
      h('section.card', {}, table('policies', ['Policy', 'Id', 'Revision', 'Agents', 'Updated'], pols.items.map((p) => h('tr', {},
        h('td', {}, h('a', { href: '#/policy/' + enc(p.id) }, p.name || p.id)), h('td', {}, p.id),
        h('td', {}, p.revision), h('td', {}, h('a', { href: '#/agents?policy=' + enc(p.id) }, String(p.agents))), h('td', {}, when(p.updated_at)))))),
      h('h1', {}, 'Enrollment tokens'),
      h('section.card', {},
        canWrite() && h('div.row', {}, policySel, name, h('button', { id: 'create-token', onclick: () => act('Token created', 'POST', '/api/fleet/enrollment_api_keys', { policy_id: policySel.value, name: name.value.trim() || undefined }, (r) => policies(r.item.api_key)) }, 'Create token')),
        table('tokens', ['Name', 'Policy', 'Created', 'Active', ''], keys.items.map((k) => h('tr', { 'data-name': k.name || k.id },
          h('td', {}, k.name || k.id), h('td', {}, k.policy_id), h('td', {}, when(k.created_at)), h('td', {}, k.active ? badge('active') : badge('revoked')),
          h('td', {}, k.active && [
            h('button.sec', { type: 'button', onclick: () => show(k.api_key) }, 'Install command'), ' ',
            canWrite() && h('button.danger', { type: 'button', onclick: () => confirm('Revoke this token?') && act('Token revoked', 'DELETE', '/api/fleet/enrollment_api_keys/' + enc(k.id), undefined, route) }, 'Revoke')]))))),
      h('section.card', {}, h('h2', {}, 'Install an agent'),
        h('p.mut', {}, hint ? 'As the quick start prints it; run it on the agent host.' : 'The Fleet Server URL is not known to this server.'),
        cmd, h('div.row', {}, copy)));
    if (created) show(created);
  }
  function copyText(text) {
    const done = () => toast('Copied');
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
    else fallbackCopy(text, done);
  }
  function fallbackCopy(text, done) {
    const t = h('textarea', { readonly: true, 'aria-hidden': 'true' });
    t.value = text;
    document.body.append(t);
    t.select();
    try { document.execCommand('copy'); done(); } catch (_) { toast('Select the command and copy it'); }
    t.remove();
  }

  async function policy(id) {
    const [{ item }, list] = await Promise.all([get('/api/fleet/agent_policies/' + enc(id) + '/full'),
      get('/api/fleet/agents?perPage=20&kuery=' + enc('policy_id:' + kq(id)))]);
    view.replaceChildren(h('p', {}, h('a', { href: '#/policies' }, '‹ Policies')),
      h('h1', {}, 'Policy ', id, item.revision ? ' rev ' + item.revision : ''),
      h('section.card', {}, h('h2', {}, `Agents on it (${list.total})`),
        list.items.length ? h('p', {}, list.items.map((a) => [h('a', { href: '#/agent/' + enc(a.id) }, a.hostname || a.id), ' ']),
          list.total > list.items.length ? h('a', { href: '#/agents?policy=' + enc(id) }, 'all ›') : '') : h('p.mut', {}, 'None.')),
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
