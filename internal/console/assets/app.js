// Autogate web console: a client of the /v1 API, with hash routing.
//
// Every datum from the server (names, output, errors) goes into the page
// through text nodes (el() and textContent), never as markup: a service
// that prints <script> shows it as text.

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

let session = null; // {user, role, kind, cluster, canRun, canWrite}

// el builds an element; string children become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// present drops the absent children (null, undefined, false).
function present(nodes) {
  return nodes.flat().filter(n => n !== undefined && n !== null && n !== false);
}

// gen counts the routings: a page whose data arrives after the user moved
// on (a newer routing) is not shown.
let gen = 0;

// show replaces the page with nodes if routing g is still the newest.
function show(g, ...nodes) {
  if (g !== gen) return false;
  main.replaceChildren(...present(nodes));
  return true;
}

function csrf() {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'autogate_csrf') return v.join('=');
  }
  return '';
}

// call is one API request; it resolves to {status, body} for any answer.
async function call(method, path, body) {
  const headers = {'Accept': 'application/json'};
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  const text = await resp.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = {detail: text}; }
  }
  if (resp.status === 401 && !path.startsWith('/ui/session')) {
    session = null;
    location.hash = '#/login';
  }
  return {status: resp.status, body: data};
}

// get returns the body of a 2xx answer or throws an Error with the detail.
async function get(path) {
  const r = await call('GET', path);
  if (r.status < 200 || r.status > 299) throw new Error(problemText(r));
  return r.body;
}

function problemText(r) {
  const b = r.body || {};
  return `${r.status} ${b.title || ''}: ${b.detail || ''}`.trim();
}

function errorBox(msg) {
  return el('div', {class: 'error', role: 'alert'}, msg);
}

// base is the /v1 prefix of cluster c's API.
function base(c) {
  return session.kind === 'manager' ? `/v1/clusters/${encodeURIComponent(c)}` : '/v1';
}

function fmtTime(t) {
  if (!t || t.startsWith('0001-')) return '—';
  const d = new Date(t);
  return isNaN(d) ? t : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function statusCell(s) {
  return el('span', {class: `status status-${s}`}, s);
}

// visible renders ESC as ␛ so an ANSI sequence shows as text.
function visible(s) {
  return String(s).replaceAll('\u001b', '\u241b');
}

function link(href, text) {
  return el('a', {href}, text);
}

function table(headers, rows, empty) {
  if (rows.length === 0) return el('p', {class: 'muted'}, empty || 'None.');
  return el('table', {},
    el('thead', {}, el('tr', {}, headers.map(h => el('th', {}, h)))),
    el('tbody', {}, rows.map(r => el('tr', {}, r.map(c => el('td', {}, c))))));
}

function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) u.set(k, v);
  const s = u.toString();
  return s ? `?${s}` : '';
}

// ---- sign-in ----

function loginPage() {
  const g = gen;
  const err = el('div');
  const user = el('input', {name: 'username', id: 'username', autocomplete: 'username', required: true});
  const pass = el('input', {name: 'password', id: 'password', type: 'password', autocomplete: 'current-password', required: true});
  const form = el('form', {class: 'card', id: 'login', onsubmit: async ev => {
    ev.preventDefault();
    const r = await call('POST', '/ui/session', {username: user.value, password: pass.value});
    if (r.status !== 200) {
      err.replaceChildren(errorBox(problemText(r)));
      return;
    }
    session = r.body;
    // On to the page asked for (the clusters after a sign-out or expiry).
    const target = !location.hash || location.hash === '#/login' ? '#/' : location.hash;
    if (location.hash === target) route();
    else location.hash = target;
  }},
  el('h1', {}, 'Sign in'),
  el('label', {for: 'username'}, 'User'), user,
  el('label', {for: 'password'}, 'Password'), pass,
  err,
  el('div', {class: 'actions'}, el('button', {type: 'submit', id: 'signin'}, 'Sign in')));
  show(g, form);
  user.focus();
}

async function logout() {
  await call('POST', '/ui/logout');
  session = null;
  renderChrome();
  location.hash = '#/login';
}

function renderChrome() {
  if (!session) {
    nav.replaceChildren();
    who.replaceChildren();
    return;
  }
  const links = [['#/', 'Clusters']];
  if (session.kind === 'gateway') {
    const c = session.cluster;
    links.push([`#/c/${c}/nodes`, 'Nodes'], [`#/c/${c}/services`, 'Services'],
      [`#/c/${c}/executions`, 'Executions'], [`#/c/${c}/dead`, 'Dead letters']);
  } else {
    links.push(['#/executions', 'Executions']);
  }
  nav.replaceChildren(...links.map(([h, t]) => el('a', {href: h, class: location.hash === h ? 'current' : null}, t)));
  who.replaceChildren(el('span', {id: 'whoami'}, `${session.user} (${session.role})`),
    el('button', {class: 'secondary', id: 'logout', onclick: logout}, 'Sign out'));
}

// ---- clusters ----

async function clustersPage() {
  const g = gen;
  if (session.kind === 'gateway') {
    const c = session.cluster;
    const [me, nodes] = await Promise.all([get('/v1/whoami'), get('/v1/nodes?limit=100')]);
    const active = nodes.items.find(n => n.role === 'active') || {};
    show(g, el('h1', {}, 'Cluster'),
      table(['Cluster', 'Status', 'Active node', 'Epoch', 'Last heartbeat', 'Connected', ''],
        [[link(`#/c/${c}/executions`, c), statusCell('connected'), active.id || me.node, String(active.epoch ?? '—'),
          fmtTime(active.lastHeartbeat), 'yes (this gateway)', clusterLinks(c)]]));
    return;
  }
  const page = await get('/v1/clusters?limit=100');
  show(g, el('h1', {}, 'Clusters'),
    table(['Cluster', 'Status', 'Active node', 'Epoch', 'Last heartbeat', 'Connected', ''],
      page.items.map(c => [link(`#/c/${c.id}/executions`, c.id), statusCell(c.status), c.node || '—',
        c.epoch ? String(c.epoch) : '—', fmtTime(c.lastHeartbeat), c.status === 'disconnected' ? 'no' : 'yes',
        clusterLinks(c.id)]), 'No clusters are registered.'),
    page.nextPageToken ? el('p', {class: 'muted'}, 'More clusters exist than shown (first 100).') : null);
}

function clusterLinks(c) {
  return el('span', {class: 'links'}, link(`#/c/${c}/nodes`, 'nodes'), ' · ', link(`#/c/${c}/services`, 'services'),
    ' · ', link(`#/c/${c}/executions`, 'executions'), ' · ', link(`#/c/${c}/dead`, 'dead letters'));
}

// ---- nodes ----

async function nodesPage(c) {
  const g = gen;
  const page = await get(`${base(c)}/nodes?limit=100`);
  show(g, el('h1', {}, `Nodes of ${c}`),
    table(['Node', 'Kind', 'Role', 'Load', 'Epoch', 'Last heartbeat', 'Version'],
      page.items.map(n => [n.id, n.kind, n.role, n.capacity ? `${n.load} / ${n.capacity}` : String(n.load),
        n.epoch ? String(n.epoch) : '—', fmtTime(n.lastHeartbeat), n.version || '—'])));
}

// ---- services ----

async function servicesPage(c) {
  const g = gen;
  const [svcs, repos] = await Promise.all([get(`${base(c)}/services?limit=100`), get(`${base(c)}/repositories?limit=100`)]);
  const refOf = Object.fromEntries(repos.items.map(r => [r.name, r.reference || 'default branch']));
  show(g, el('h1', {}, `Services of ${c}`),
    table(['Service', 'Type', 'Repository @ reference', 'Decorator', 'Timeout', 'Retryable', ''],
      svcs.items.map(s => [s.name, s.type, `${s.repository} @ ${refOf[s.repository] || '?'}`, s.decorator || '—',
        s.timeoutSeconds ? `${s.timeoutSeconds} s` : 'default (300 s)', s.retryable ? 'yes' : 'no',
        session.canRun ? el('a', {class: 'button run', href: `#/c/${c}/services/${s.name}/run`, 'data-service': s.name}, 'Run') : '']),
      'No services.'),
    svcs.nextPageToken ? el('p', {class: 'muted'}, 'More services exist than shown (first 100).') : null);
}

// ---- run form, generated from the decorator's JSON Schema ----

// fieldFor returns the input for one schema property and how to read it.
function fieldFor(name, prop, required) {
  const id = `in-${name}`;
  const type = Array.isArray(prop.type) ? prop.type.find(t => t !== 'null') : prop.type;
  let input;
  let read;
  if (Array.isArray(prop.enum)) {
    input = el('select', {id, name},
      required ? null : el('option', {value: ''}, '—'),
      prop.enum.map(v => el('option', {value: JSON.stringify(v), selected: prop.default === v}, String(v))));
    read = () => input.value === '' ? undefined : JSON.parse(input.value);
  } else if (type === 'boolean') {
    input = el('input', {id, name, type: 'checkbox', checked: prop.default === true});
    read = () => input.checked;
  } else if (type === 'integer' || type === 'number') {
    input = el('input', {id, name, type: 'text', inputmode: 'decimal', value: prop.default ?? null});
    read = () => {
      const v = input.value.trim();
      if (v === '') return undefined;
      const n = Number(v);
      return isNaN(n) ? v : n; // the server says what is wrong with it
    };
  } else if (type === 'object' || type === 'array') {
    input = el('textarea', {id, name, rows: 3, placeholder: type === 'array' ? '[ … ] (JSON)' : '{ … } (JSON)'});
    if (prop.default !== undefined) input.value = JSON.stringify(prop.default);
    read = () => {
      const v = input.value.trim();
      if (v === '') return undefined;
      try { return JSON.parse(v); } catch { return v; }
    };
  } else {
    input = el('input', {id, name, type: prop.writeOnly ? 'password' : 'text', autocomplete: prop.writeOnly ? 'off' : null,
      value: prop.default ?? null});
    // An empty field is an input not given: a required one is then
    // reported missing, by the server.
    read = () => input.value === '' ? undefined : input.value;
  }
  const err = el('div', {class: 'field-error', id: `err-${name}`});
  const box = el('div', {class: 'field', 'data-field': name},
    el('label', {for: id}, prop.title || name, required ? el('span', {class: 'req', title: 'required'}, ' *') : null),
    prop.description ? el('p', {class: 'desc'}, prop.description) : null,
    input, err);
  return {name, box, read, err};
}

async function runPage(c, name) {
  const g = gen;
  const svc = await get(`${base(c)}/services/${encodeURIComponent(name)}`);
  let schema = {type: 'object', properties: {}};
  if (svc.decorator) {
    const d = await get(`${base(c)}/decorators/${encodeURIComponent(svc.decorator)}`);
    schema = d.schema || schema;
  }
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties || {}).map(([k, p]) => fieldFor(k, p || {}, required.has(k)));
  const general = el('div', {id: 'form-error'});
  const submit = el('button', {type: 'submit', id: 'submit-run'}, 'Run');
  const form = el('form', {class: 'card', id: 'run-form', novalidate: true, onsubmit: async ev => {
    ev.preventDefault();
    submit.disabled = true;
    for (const f of fields) f.err.replaceChildren();
    general.replaceChildren();
    const inputs = {};
    for (const f of fields) {
      const v = f.read();
      if (v !== undefined) inputs[f.name] = v;
    }
    const r = await call('POST', `${base(c)}/services/${encodeURIComponent(name)}/run`, {inputs, async: true});
    submit.disabled = false;
    if (r.status === 200 || r.status === 201 || r.status === 202) {
      location.hash = `#/c/${c}/executions/${r.body.id}`;
      return;
    }
    const byName = Object.fromEntries(fields.map(f => [f.name, f]));
    const rest = [];
    for (const e of (r.body && r.body.errors) || []) {
      const m = /^body\.inputs\.([^.[]+)/.exec(e.location || '');
      // A missing required input is an error of the whole object naming it.
      const missing = e.location === 'body.inputs' && /missing propert/.test(e.message || '')
        ? [...e.message.matchAll(/'([^']+)'/g)].map(x => x[1]).filter(n => byName[n]) : [];
      if (m && byName[m[1]]) byName[m[1]].err.append(el('div', {}, e.message));
      else if (missing.length) missing.forEach(n => byName[n].err.append(el('div', {}, 'required')));
      else rest.push(`${e.location || ''}: ${e.message}`);
    }
    const mapped = ((r.body && r.body.errors) || []).length > rest.length;
    general.replaceChildren(errorBox(mapped && !rest.length
      ? `${r.status} ${r.body.title || ''}: the inputs do not satisfy the decorator; see the marked fields.`
      : problemText(r) + (rest.length ? '\n' + rest.join('\n') : '')));
  }},
  el('h1', {}, `Run ${name} on ${c}`),
  svc.description ? el('p', {class: 'desc'}, svc.description) : null,
  svc.decorator ? el('p', {class: 'muted'}, 'Inputs checked against decorator ', el('code', {}, svc.decorator), '.')
    : el('p', {class: 'muted'}, 'This service has no decorator: it takes no declared inputs.'),
  fields.map(f => f.box), general,
  el('div', {class: 'actions'}, submit, el('a', {href: `#/c/${c}/services`}, 'Back')));
  show(g, form);
}

// ---- executions ----

const statuses = ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'canceled', 'lost'];

async function executionsPage(c, params, deadOnly) {
  const g = gen;
  let clusters = null;
  if (session.kind === 'manager') {
    clusters = (await get('/v1/clusters?limit=100')).items.map(x => x.id);
    if (!c) c = clusters[0];
  }
  if (!c) {
    show(g, el('h1', {}, 'Executions'), el('p', {class: 'muted'}, 'No clusters are registered.'));
    return;
  }
  const service = params.get('service') || '';
  // A dead-lettered run is a queued one whose message sits in the
  // dead-letter queue: the queued ones are read through the status index
  // (few), and the flagged ones shown.
  const status = deadOnly ? 'queued' : params.get('status') || '';
  const token = params.get('pageToken') || '';
  const prev = params.get('prev') || ''; // the tokens of the pages before, comma-separated
  const limit = params.get('limit') || '';
  const page = await get(`${base(c)}/executions${q({limit: limit || 20, service, status, pageToken: token})}`);
  const items = deadOnly ? page.items.filter(e => e.deadLettered) : page.items;
  const here = deadOnly ? 'dead' : 'executions';
  const go = (extra) => {
    const p = {service, status: deadOnly ? '' : status, limit, ...extra};
    location.hash = `#/c/${c}/${here}${q(p)}`;
  };
  const fService = el('input', {id: 'f-service', value: service, placeholder: 'any'});
  const fStatus = el('select', {id: 'f-status'}, el('option', {value: ''}, 'any'),
    statuses.map(s => el('option', {value: s, selected: s === status}, s)));
  const fCluster = clusters ? el('select', {id: 'f-cluster'}, clusters.map(x => el('option', {value: x, selected: x === c}, x))) : null;
  const filters = el('form', {class: 'filters', id: 'filters', onsubmit: ev => {
    ev.preventDefault();
    const cl = fCluster ? fCluster.value : c;
    location.hash = `#/c/${cl}/${here}${q({service: fService.value.trim(), status: deadOnly ? '' : fStatus.value, limit})}`;
  }},
  fCluster ? el('label', {}, 'Cluster ', fCluster) : null,
  el('label', {}, 'Service ', fService),
  deadOnly ? null : el('label', {}, 'Status ', fStatus),
  el('button', {type: 'submit'}, 'Filter'));
  const prevTokens = prev ? prev.split(',') : [];
  const pager = el('div', {class: 'pager'},
    el('button', {class: 'secondary', id: 'prev-page', disabled: !token,
      onclick: () => {
        const back = prevTokens.slice(0, -1);
        go({pageToken: prevTokens[prevTokens.length - 1] === '-' ? '' : prevTokens[prevTokens.length - 1], prev: back.join(',')});
      }}, '← Newer'),
    el('button', {class: 'secondary', id: 'next-page', disabled: !page.nextPageToken,
      onclick: () => go({pageToken: page.nextPageToken, prev: [...prevTokens, token || '-'].join(',')})}, 'Older →'),
    el('span', {class: 'muted'}, page.nextPageToken ? 'more pages follow' : 'last page'));
  const redrive = deadOnly && session.canWrite ? el('div', {class: 'actions'},
    el('button', {id: 'redrive', onclick: async ev => {
      ev.target.disabled = true;
      const r = await call('POST', `${base(c)}/redrive`, {});
      ev.target.disabled = false;
      out.replaceChildren(r.status === 200 ? el('div', {class: 'notice'}, `Moved ${r.body.moved} message(s) back to the work queue.`)
        : errorBox(problemText(r)));
    }}, 'Redrive dead letters')) : null;
  const out = el('div', {id: 'redrive-result'});
  show(g, el('h1', {}, deadOnly ? `Dead-lettered runs of ${c}` : `Executions of ${c}`),
    deadOnly ? el('p', {class: 'muted'}, 'Queued runs whose message failed repeatedly and sits in the dead-letter queue, from this page of queued runs (newest first). Fix the cause, then redrive: their messages go back to the work queue.') : null,
    filters, redrive, out,
    table(['Execution', 'Service', 'Status', 'Node', 'Attempt', 'Created', 'Ended', 'Exit code'],
      items.map(e => [link(`#/c/${c}/executions/${e.id}`, e.id), e.service, statusCell(e.status), e.node || '—',
        e.attempt ? String(e.attempt) : '—', fmtTime(e.createdAt), fmtTime(e.endedAt), e.exitCode ?? '—']),
      deadOnly ? 'No dead-lettered runs on this page.' : 'No executions match.'),
    pager);
}

let stream = null; // the open EventSource of an execution page

async function executionPage(c, id) {
  const g = gen;
  const path = `${base(c)}/executions/${encodeURIComponent(id)}`;
  let e = await get(path);
  const facts = el('dl', {class: 'facts', id: 'facts'});
  const stdout = el('pre', {class: 'output', id: 'output'});
  const actions = el('div', {class: 'actions'});
  const msg = el('div');
  const renderFacts = () => {
    const rows = [['Status', statusCell(e.status)], ['Service', e.service], ['Reason', e.reason || '—'],
      ['Created', fmtTime(e.createdAt)], ['Started', fmtTime(e.startedAt)], ['Ended', fmtTime(e.endedAt)],
      ['Node', e.node || '—'], ['Attempt', e.attempt ? String(e.attempt) : '—'], ['Commit', e.commit || '—'],
      ['Submitter', e.submitter || '—'], ['Exit code', el('span', {id: 'exit-code'}, e.exitCode ?? '—')]];
    if (e.deadLettered) rows.push(['Dead-lettered', 'yes']);
    facts.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    facts.dataset.status = e.status;
    const terminal = !['queued', 'running'].includes(e.status);
    actions.replaceChildren(...present([session.canRun && !terminal ? el('button', {class: 'danger', id: 'cancel', onclick: async ev => {
      ev.target.disabled = true;
      const r = await call('POST', `${path}/cancel`);
      if (r.status === 200) {
        e = r.body;
        renderFacts();
        msg.replaceChildren(el('div', {class: 'notice'}, 'Cancel requested.'));
      } else {
        ev.target.disabled = false;
        msg.replaceChildren(errorBox(problemText(r)));
      }
    }}, 'Cancel run') : null]));
  };
  renderFacts();
  if (!show(g, el('h1', {}, `Execution ${id}`), facts, actions, msg, el('h2', {}, 'Output'), stdout,
    el('p', {class: 'muted', id: 'stream-state'}, 'following…'))) return;
  if (stream) stream.close();
  const es = new EventSource(`${path}/output`, {withCredentials: true});
  stream = es;
  es.addEventListener('output', ev => {
    const o = JSON.parse(ev.data);
    stdout.append(el('span', {class: o.stream}, visible(o.text)));
    stdout.scrollTop = stdout.scrollHeight;
  });
  es.addEventListener('end', async ev => {
    es.close();
    const end = JSON.parse(ev.data);
    document.getElementById('stream-state')?.replaceChildren(`ended: ${end.status}`);
    try { e = await get(path); } catch { e = {...e, status: end.status, exitCode: end.exitCode}; }
    renderFacts();
  });
  es.addEventListener('error', () => {
    // The browser reconnects with Last-Event-ID; a closed stream stays closed.
    if (es.readyState === EventSource.CLOSED) document.getElementById('stream-state')?.replaceChildren('stream closed');
  });
}

// ---- routing ----

async function route() {
  const g = ++gen;
  if (stream && !location.hash.includes('/executions/')) {
    stream.close();
    stream = null;
  }
  if (!session) {
    const r = await call('GET', '/ui/session');
    if (r.status === 200) session = r.body;
  }
  renderChrome();
  if (g !== gen) return; // a newer routing took over while the session loaded
  const hash = location.hash.replace(/^#/, '') || '/';
  const [pathPart, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  const p = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  if (!session) {
    loginPage();
    return;
  }
  try {
    if (p.length === 0 || p[0] === 'login') await clustersPage();
    else if (p[0] === 'executions') await executionsPage(null, params, false);
    else if (p[0] === 'c' && p[2] === 'nodes') await nodesPage(p[1]);
    else if (p[0] === 'c' && p[2] === 'services' && p[4] === 'run') await runPage(p[1], p[3]);
    else if (p[0] === 'c' && p[2] === 'services') await servicesPage(p[1]);
    else if (p[0] === 'c' && p[2] === 'executions' && p[3]) await executionPage(p[1], p[3]);
    else if (p[0] === 'c' && p[2] === 'executions') await executionsPage(p[1], params, false);
    else if (p[0] === 'c' && p[2] === 'dead') await executionsPage(p[1], params, true);
    else show(g, el('h1', {}, 'Not found'), el('p', {}, 'No such page: ', el('code', {}, hash)));
  } catch (err) {
    if (session) show(g, errorBox(err.message));
  }
}

window.addEventListener('hashchange', route);
route();
