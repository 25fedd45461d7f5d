// The dlicense support console, a module. The admin token lives in this
// module only (no storage, cookie or address); every string from the API
// reaches the page as text (textContent, text nodes, setAttribute).

const SVGNS = 'http://www.w3.org/2000/svg';
const ROOT = location.pathname.replace(/console(\/[^/]*)?$/, ''); // the page is <root>console
const PAGE_ROWS = 100; // rows of a table page
const HISTORY_PAGES = 20; // viewing history read: at most 2,000 views
const BUCKET_PX = 4; // offline plays: one mark per 4 pixels of a lane
const GAP_PX = 2; // bars on a row closer than this are drawn as one
const LEFT = 128, RIGHT = 16, ROW = 11;

let token = '';
let loadSeq = 0, stateSeq = 0, pending = 0;
let m = null; // the open member
let marks = []; // what each drawn mark stands for (hover details)

const $ = (id) => document.getElementById(id);

// h builds an HTML element: props are attributes (text: its text, on…:
// listeners); children are nodes or strings (text nodes); nulls are skipped.
function h(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  e.append(...kids.filter((k) => k != null));
  return e;
}

// s builds an SVG element the same way.
function s(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, String(v));
  e.append(...kids.filter((k) => k != null));
  return e;
}

const put = (box, ...kids) => box.replaceChildren(...kids.filter((k) => k != null));
const enc = encodeURIComponent;
const str = (v) => (v == null ? '' : String(v));
const time = (v) => Date.parse(v);
// plural is n and the noun, singular for one: "1 licence", "2 licences".
const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`;
const fmt = (ms) => (Number.isFinite(ms) ? new Date(ms).toISOString().replace('T', ' ').replace('.000Z', 'Z') : '');
const fmtAt = (v) => (Number.isFinite(time(v)) ? fmt(time(v)) : str(v));
const list = (v) => (Array.isArray(v) ? v : []);
function dur(ms) {
  if (!Number.isFinite(ms)) return '';
  const t = Math.round(ms / 1000), hh = Math.floor(t / 3600), mm = Math.floor(t / 60) % 60;
  return (hh ? hh + 'h ' : '') + String(mm).padStart(hh ? 2 : 1, '0') + 'm ' + String(t % 60).padStart(2, '0') + 's';
}
const rulesText = (rules) => list(rules).map((r) => str(r && r.code)).join(', ');
const rulesFull = (rules) => list(rules).map((r) => str(r && r.code) + ': ' + str(r && r.message)).join('; ');
const status = (text) => { $('status').textContent = text; };

function busy(d) {
  pending += d;
  document.body.dataset.pending = String(pending);
  $('main').setAttribute('aria-busy', String(pending > 0));
}

class ApiError extends Error {
  constructor(status, code, detail, rules) {
    super(detail);
    Object.assign(this, { status, code, rules });
  }
}

// api calls a route of this API with the token; a refusal throws an
// ApiError with the problem's code and detail (or the gateway's message).
async function api(path, method = 'GET', body = undefined) {
  if (!token) throw new ApiError(0, 'NO_TOKEN', 'paste an admin token and press "Use token" first');
  const headers = { Authorization: 'Bearer ' + token, Accept: 'application/json' };
  if (body != null) headers['Content-Type'] = 'application/json';
  busy(1);
  try {
    let r;
    try {
      r = await fetch(ROOT + path, { method, headers, body, credentials: 'omit', cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'NETWORK', 'the API could not be reached (' + str(e && e.message) + ')');
    }
    const doc = await r.json().catch(() => null);
    if (r.ok) return doc;
    const d = doc && typeof doc === 'object' ? doc : {};
    let detail = str(d.detail || d.message || d.title || r.statusText);
    if (r.status === 401) detail += ' (the token is missing, expired or not valid here)';
    throw new ApiError(r.status, str(d.code || (r.status === 401 ? 'UNAUTHORIZED' : 'HTTP_' + r.status)), detail, d.rules);
  } finally {
    busy(-1);
  }
}

// showError puts an error in box, as text (nothing if err is null).
function showError(box, err) {
  if (!err) return box.replaceChildren();
  if (!(err instanceof ApiError)) err = new ApiError(0, 'ERROR', str(err.message || err));
  const rules = Array.isArray(err.rules) ? h('ul', null, ...err.rules.map((r) => h('li', { text: str(r.code) + ': ' + str(r.message) }))) : null;
  put(box, h('p', { class: 'problem' }, h('strong', { text: 'Error ' }),
    h('code', { text: (err.status ? err.status + ' ' : '') + err.code + ': ' + err.message })), rules);
}

// table is a table showing a page of rows at a time (row: a datum to its
// <tr>), with a pager when there is more than a page.
function table(id, caption, columns, rows, row) {
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
  let page = 0;
  const body = h('tbody'), where = h('span', { class: 'note', 'aria-live': 'polite' });
  const prev = h('button', { type: 'button', text: 'Previous page', onclick: () => show(page - 1) });
  const next = h('button', { type: 'button', text: 'Next page', onclick: () => show(page + 1) });
  function show(p) {
    page = Math.min(Math.max(0, p), pages - 1);
    const slice = rows.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS);
    body.replaceChildren(...(slice.length ? slice.map(row) : [h('tr', null, h('td', { colspan: columns.length, text: 'None.' }))]));
    where.textContent = `Rows ${rows.length ? page * PAGE_ROWS + 1 : 0}–${page * PAGE_ROWS + slice.length} of ${rows.length}, page ${page + 1} of ${pages}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }
  show(0);
  return h('div', { class: 'table' }, pages > 1 ? h('div', { class: 'bar pager' }, prev, next, where) : null,
    h('table', { id }, h('caption', { text: caption }), h('thead', null, h('tr', null, ...columns.map((c) => h('th', { scope: 'col', text: c })))), body));
}
const td = (v, cls) => h('td', { class: cls, text: str(v) });

// ---- token and views ----

function describeToken() {
  if (!token) return void ($('token-state').textContent = 'No token: it is kept in this page\'s memory only.');
  let c = {};
  try {
    const b = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    c = JSON.parse(atob(b + '='.repeat((4 - (b.length % 4)) % 4)));
  } catch (_) { /* not a JWT: the API will say */ }
  const scopes = typeof c.scope === 'string' ? c.scope.split(' ') : list(c.scp);
  $('token-state').textContent = 'Token in use' + (c.sub ? ' for ' + str(c.sub) : '') + (c.exp ? ', expires ' + fmt(c.exp * 1000) : '') +
    (scopes.length ? '; scopes: ' + scopes.map(str).join(' ') + '.' : '; it has no scope: the API will refuse it.');
}

function onSubmit(id, fn) {
  $(id).addEventListener('submit', (ev) => { ev.preventDefault(); fn(); });
}

onSubmit('token-form', () => {
  token = $('token').value.trim().replace(/^Bearer\s+/i, '');
  $('token').value = '';
  describeToken();
  status(token ? 'Token set.' : 'Token cleared.');
});
$('token-forget').addEventListener('click', () => { token = ''; describeToken(); status('Token forgotten.'); });

function showView(name) {
  for (const b of document.querySelectorAll('nav button')) {
    if (b.dataset.view === name) b.setAttribute('aria-current', 'page'); else b.removeAttribute('aria-current');
  }
  for (const sec of document.querySelectorAll('main > section')) sec.hidden = sec.dataset.view !== name;
  if (name === 'audit') loadAudit();
}
for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => showView(b.dataset.view));

// ---- member ----

onSubmit('member-form', () => {
  const id = $('member').value.trim();
  if (id) { showView('member'); openMember(id); }
});

async function openMember(id) {
  const seq = ++loadSeq;
  m = null;
  for (const b of ['picture', 'when-box', 'raw']) $(b).hidden = true;
  for (const b of ['state', 'refusals', 'views', 'raw-table', 'member-error', 'whatif-result', 'whatif-error']) $(b).replaceChildren();
  $('member-h').textContent = 'Member ' + id;
  $('member-summary').textContent = 'Loading…';
  $('whatif-member').textContent = 'Member: ' + id;
  status('Loading member ' + id + '…');
  try {
    const [log, now, viewing] = await Promise.all([loadEvents(id, seq), api(`v1/admin/members/${enc(id)}/timeline`), loadViews(id, seq)]);
    if (seq !== loadSeq) return;
    if (!log.events.length && !list(now.refusals).length && !viewing.views.length && !(viewing.row && list(viewing.row.titles).length)) {
      // A mistyped id: nothing to draw, and it says so.
      $('member-summary').textContent = `Nothing recorded for ${id}: no licence event, refusal or view.`;
      status(`Member ${id}: nothing recorded.`);
      return;
    }
    m = model(id, log, now, viewing);
    render();
    showState(now);
    status(`Member ${id}: ${plural(m.events.length, 'event')}.`);
  } catch (err) {
    if (seq !== loadSeq) return;
    $('member-summary').textContent = '';
    showError($('member-error'), err);
    status(`Member ${id} could not be read.`);
  }
}

// loadEvents reads the member's whole log, 1,000 events a call.
async function loadEvents(id, seq) {
  const log = { events: [], head: 0, snap: 0 };
  for (let after = 0; seq === loadSeq;) {
    const p = await api(`v1/admin/members/${enc(id)}/events?limit=1000` + (after ? '&after=' + after : ''));
    for (const e of list(p.events)) log.events.push(e);
    log.head = p.version;
    log.snap = p.snapshot_version;
    $('member-summary').textContent = `Loading events… ${log.events.length} of ${log.head}`;
    if (p.next_after == null) break;
    after = p.next_after;
  }
  return log;
}

// loadViews reads the member's viewing history, newest first; an error
// there leaves the rest of the member whole.
async function loadViews(id, seq) {
  const views = [];
  // The account's own recently watched row, with the titles the member
  // removed from it ("why is it not in my row?"); without it, the rest.
  const row = await api(`v1/admin/members/${enc(id)}/recently-watched`).catch(() => null);
  try {
    for (let i = 0, cursor = ''; i < HISTORY_PAGES && seq === loadSeq; i++) {
      const p = await api(`v1/admin/members/${enc(id)}/history?limit=100` + (cursor ? '&cursor=' + enc(cursor) : ''));
      for (const v of list(p.entries)) views.push(v);
      if (!p.next_cursor) return { views, row };
      cursor = p.next_cursor;
    }
    return { views, row, more: true };
  } catch (error) {
    return { views, row, error };
  }
}

// model turns the log, the timeline and the views into lanes.
function model(id, log, now, viewing) {
  const nowMs = Date.now(), licences = new Map(), devices = new Map(), screens = new Map();
  let t0 = Infinity, t1 = -Infinity, plays = 0;
  const see = (t) => { if (Number.isFinite(t)) { t0 = Math.min(t0, t); t1 = Math.max(t1, t); } };
  const lane = (d) => {
    d = str(d);
    if (!devices.has(d)) devices.set(d, { id: d, licences: [], plays: [], refusals: [] });
    return devices.get(d);
  };
  const release = (lid, at, reason) => {
    const l = licences.get(lid);
    if (l && l.released == null) Object.assign(l, { released: at, reason });
  };
  for (const e of log.events) {
    const at = time(e.at), d = e.data || {};
    see(at);
    if (e.type === 'LicenceAcquired') {
      const l = { id: str(d.licence_id), title: str(d.title_id), studio: str(d.studio_id), device: str(d.device_id), s: at, expires: time(d.expires_at), renewals: [] };
      licences.set(l.id, l);
      lane(l.device).licences.push(l);
    } else if (e.type === 'LicenceRenewed') {
      const l = licences.get(d.licence_id);
      if (l) { l.renewals.push(at); l.expires = time(d.expires_at); }
    } else if (e.type === 'LicenceReleased') {
      release(d.licence_id, at, d.reason);
    } else if (e.type === 'LicencesReleased') {
      for (const r of list(d.releases)) release(r.licence_id, at, r.reason);
    } else if (e.type === 'DeviceReleased') {
      for (const lid of list(d.licence_ids)) release(lid, at, d.reason);
    } else if (e.type === 'PlaybackRecorded') {
      for (const p of list(d.accepted)) {
        const t = time(p.device_time);
        if (Number.isFinite(t)) { see(t); lane(d.device_id).plays.push({ t, p }); plays++; }
      }
    }
  }
  const refusals = list(now.refusals);
  for (const r of refusals) { const t = time(r.at); see(t); lane(r.device_id).refusals.push({ t, r }); }
  for (const v of viewing.views) {
    const a = time(v.started_at), b = time(v.last_seen_at), d = str(v.device_id);
    see(a); see(b);
    if (!screens.has(d)) screens.set(d, []);
    screens.get(d).push({ s: a, e: Number.isFinite(b) ? b : a, v });
  }
  if (!Number.isFinite(t1)) t1 = nowMs;
  // The picture ends now, unless everything happened in a short stretch
  // long before: then it ends a little after the last of it, so that a
  // new member's few events are not squeezed into a few pixels.
  const span = Math.max(1000, t1 - Math.min(t0, t1));
  if (nowMs - t1 <= span / 10) see(nowMs); else t1 += span / 20;
  // The slider moves on a grid of a thousand steps ending there.
  const step = Math.max(1, Math.ceil((t1 - Math.min(t0, t1 - 1000)) / 1000));
  t0 = t1 - 1000 * step;
  for (const l of licences.values()) {
    l.e = l.released != null ? l.released : Math.min(Number.isFinite(l.expires) ? l.expires : t1, t1);
    l.cls = l.released != null ? 'released' : l.expires <= nowMs ? 'expired' : 'active';
  }
  const snapEvent = log.snap ? log.events.find((e) => e.version === log.snap) : null;
  return { id, events: log.events, snap: log.snap, snapAt: snapEvent ? time(snapEvent.at) : NaN,
    t0, t1, step, devices, screens, plays, refusals, viewing, cursor: t1 };
}

// bars lays bars ({s, e} in ms) out on rows, in pixels: a bar takes the
// first row free GAP_PX before it, else a new row (up to maxRows), else the
// row that frees first. Bars closer than GAP_PX on a row are drawn as one,
// with their count: at most a bar per GAP_PX + 2 pixels of a row.
function bars(items, x, maxRows) {
  const ends = [], last = [], groups = [];
  const laid = items.map((it) => ({ it, x1: x(it.s), x2: Math.max(x(it.e), x(it.s) + 2) })).sort((a, b) => a.x1 - b.x1);
  for (const b of laid) {
    let r = ends.findIndex((e) => e + GAP_PX <= b.x1);
    if (r < 0 && ends.length < maxRows) r = ends.push(-Infinity) - 1;
    if (r < 0) r = ends.indexOf(Math.min(...ends));
    const g = last[r];
    if (g && b.x1 < g.x2 + GAP_PX) { g.items.push(b.it); g.x2 = Math.max(g.x2, b.x2); } else groups.push(last[r] = { row: r, x1: b.x1, x2: b.x2, items: [b.it] });
    ends[r] = Math.max(ends[r], b.x2);
  }
  return { rows: Math.max(1, ends.length), groups };
}

const STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 3e4, 6e4, 3e5, 6e5, 18e5,
  36e5, 108e5, 216e5, 432e5, 864e5, 6048e5, 2592e6, 7776e6, 15552e6, 31536e6, 63072e6];

function axisLabel(t, step) {
  const iso = new Date(t).toISOString();
  if (step < 1e3) return iso.slice(11, 23);
  if (step < 6e4) return iso.slice(11, 19);
  return step < 864e5 ? iso.slice(5, 10) + ' ' + iso.slice(11, 16) : iso.slice(0, 10);
}

// mark is one element (a group where it has a label) standing for marks[i],
// of one kind (its class and data-kind).
function mark(tag, kind, what, attrs, ...kids) {
  marks.push(Object.assign({ kind }, what));
  return s(tag, Object.assign({ 'data-kind': kind, 'data-i': marks.length - 1 }, attrs, { class: `mark ${kind} ${str(attrs.class)}` }), ...kids);
}

// draw renders the picture: a lane per device (licence bars, renewal ticks,
// refusals, offline plays), a lane per device of screens, the snapshot and
// the cursor. However long the history, about a mark per few pixels: what
// does not fit is counted into the marks (data-count), not dropped.
function draw() {
  const box = $('picture-svg'), W = Math.max(640, Math.floor(box.clientWidth || 960)), plotW = W - LEFT - RIGHT;
  const x = (t) => LEFT + ((t - m.t0) / (m.t1 - m.t0)) * plotW;
  const g = [];
  let y = 34, i = 0;
  marks = [];
  const heading = (text) => { g.push(s('text', { x: 4, y: y + 12, class: 'heading' }, text)); y += 18; };
  const laneBox = (name, group, height) => {
    const lg = s('g', { 'data-group': group, 'data-device': name }, s('rect', { x: 0, y, width: W, height, class: i++ % 2 ? 'lane odd' : 'lane' }),
      s('text', { x: 6, y: y + 13, class: 'lane-label' }, name.length > 17 ? name.slice(0, 16) + '…' : name));
    g.push(lg);
    return lg;
  };
  const rect = (b, top) => ({ x: b.x1.toFixed(1), y: top, width: Math.max(2, b.x2 - b.x1).toFixed(1), height: ROW - 3, 'data-count': b.items.length });
  if (m.devices.size) heading('Licences and offline plays, by device');
  for (const d of m.devices.values()) {
    const lay = bars(d.licences, x, 6), height = 30 + lay.rows * ROW, lg = laneBox(d.id, 'licences', height);
    for (const b of lay.groups) {
      const by = y + 16 + b.row * ROW, one = b.items.length === 1;
      lg.append(mark('rect', 'licence', { items: b.items }, Object.assign(rect(b, by), { class: one ? b.items[0].cls : 'group', 'data-status': one ? b.items[0].cls : null })));
      const cols = new Set();
      for (const l of b.items) for (const r of l.renewals) cols.add(Math.round(x(r) / 2) * 2);
      for (const cx of cols) lg.append(mark('line', 'renewal', { items: b.items }, { x1: cx, x2: cx, y1: by - 2, y2: by + ROW - 1 }));
    }
    const buckets = new Map();
    for (const p of d.plays) {
      const k = Math.floor((x(p.t) - LEFT) / BUCKET_PX);
      if (!buckets.has(k)) buckets.set(k, []);
      buckets.get(k).push(p);
    }
    for (const [k, ps] of buckets) {
      lg.append(mark('circle', 'play', { items: ps }, { 'data-count': ps.length, cx: LEFT + (k + 0.5) * BUCKET_PX, cy: y + 22 + lay.rows * ROW, r: ps.length > 1 ? 3.5 : 2.5 }));
    }
    // refusals, labelled with their rules where the label fits
    let free = -Infinity;
    for (const rf of d.refusals.slice().sort((a, b) => a.t - b.t)) {
      const rx = x(rf.t), ry = y + 8, codes = rulesText(rf.r.rules), wide = codes.length * 6.2, end = rx + 7 + wide > W;
      const mk = mark('g', 'refusal', { items: [rf] }, { 'data-codes': codes },
        s('path', { d: `M${rx - 4} ${ry - 4}L${rx + 4} ${ry + 4}M${rx - 4} ${ry + 4}L${rx + 4} ${ry - 4}` }));
      if (rx + 6 >= free) {
        mk.append(s('text', { x: end ? rx - 7 : rx + 7, y: ry + 4, 'text-anchor': end ? 'end' : 'start', class: 'refusal-label' }, codes));
        free = end ? rx + 8 : rx + 9 + wide;
      }
      lg.append(mk);
    }
    y += height;
  }
  if (m.screens.size) {
    y += 6;
    heading('Screens in use (viewing history), by device');
    i = 0;
    for (const [dev, vs] of m.screens) {
      const lay = bars(vs, x, 3), height = 12 + lay.rows * ROW, lg = laneBox(dev, 'views', height);
      for (const b of lay.groups) lg.append(mark('rect', 'view', { items: b.items }, rect(b, y + 6 + b.row * ROW)));
      y += height;
    }
  }
  const H = y + 8, axis = s('g', { class: 'axis' });
  const step = STEPS.find((st) => (m.t1 - m.t0) / st <= Math.max(2, plotW / 120)) || STEPS[STEPS.length - 1];
  for (let t = Math.ceil(m.t0 / step) * step; t <= m.t1; t += step) {
    axis.append(s('line', { x1: x(t), x2: x(t), y1: 22, y2: H }), s('text', { x: x(t), y: 14, 'text-anchor': 'middle' }, axisLabel(t, step)));
  }
  let snap = null;
  if (Number.isFinite(m.snapAt)) {
    const sx = x(m.snapAt), end = sx + 80 > W;
    snap = mark('g', 'snapshot', {}, { 'data-version': m.snap }, s('line', { x1: sx, x2: sx, y1: 20, y2: H }),
      s('text', { x: end ? sx - 3 : sx + 3, y: 30, 'text-anchor': end ? 'end' : 'start' }, 'snapshot v' + m.snap));
  }
  m.x = x;
  m.cursorLine = s('line', { 'data-kind': 'cursor', class: 'cursor', y1: 18, y2: H });
  const summary = summaryText();
  const svg = s('svg', { id: 'timeline', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': summary,
    'aria-describedby': 'timeline-desc', 'data-member': m.id },
  s('title', null, 'Timeline of member ' + m.id), s('desc', { id: 'timeline-desc' }, summary + ' The tables below hold the same as text.'),
  axis, snap, ...g, m.cursorLine);
  svg.addEventListener('pointermove', (ev) => { $('picture-detail').textContent = detail(ev.target.closest('[data-i]')); });
  svg.addEventListener('pointerleave', () => { $('picture-detail').textContent = ''; });
  put(box, svg, h('p', { id: 'picture-detail', class: 'note' }));
}

function summaryText() {
  const lic = [...m.devices.values()].reduce((n, d) => n + d.licences.length, 0), ev = m.events;
  return `Member ${m.id}: ${plural(ev.length, 'event')}` + (ev.length ? ` (from ${fmtAt(ev[0].at)} to ${fmtAt(ev[ev.length - 1].at)})` : '') +
    `, ${plural(lic, 'licence')} on ${plural(m.devices.size, 'device lane')}, ${plural(m.plays, 'offline play')}, ${plural(m.refusals.length, 'recent refusal')}, ` +
    `${plural(m.viewing.views.length, 'view')}, ` + (m.snap ? `snapshot at version ${m.snap}.` : 'no snapshot.');
}

// detail says what a mark stands for (shown under the picture on hover).
function detail(el) {
  const mk = el && marks[Number(el.getAttribute('data-i'))];
  if (!mk) return '';
  const it = mk.items || [], a = it[0], n = it.length;
  switch (mk.kind) {
    case 'licence': case 'renewal':
      return n > 1 ? `${n} licences, ${fmt(a.s)} – ${fmt(it[n - 1].e)}` : `Licence ${a.id}: ${a.title} (${a.studio}) on ${a.device}, acquired ${fmt(a.s)}` +
        (a.renewals.length ? ', renewed ' + a.renewals.map(fmt).join(', ') : '') +
        (a.released != null ? `, released ${fmt(a.released)} (${str(a.reason)})` : ', expires ' + fmt(a.expires));
    case 'play':
      return n > 1 ? `${n} offline plays, ${fmt(a.t)} – ${fmt(it[n - 1].t)}`
        : `Offline ${str(a.p.kind)} of ${str(a.p.title_id || a.p.licence_id)} at ${fmt(a.t)}, position ${dur(a.p.position_ms)}`;
    case 'refusal':
      return `Refused ${str(a.r.command)} of ${str(a.r.title_id || a.r.licence_id)} on ${str(a.r.device_id)} at ${fmtAt(a.r.at)}: ${rulesFull(a.r.rules)}`;
    case 'view':
      return n > 1 ? `${n} views` : `View of ${str(a.v.title_id)} on ${str(a.v.device_id)}, ${fmtAt(a.v.started_at)} – ${fmtAt(a.v.last_seen_at)}`;
    default:
      return `Snapshot at version ${m.snap} (${fmt(m.snapAt)})`;
  }
}

function render() {
  $('member-summary').textContent = summaryText();
  $('picture').hidden = false;
  draw();
  Object.assign($('when'), { min: m.t0, max: m.t1, step: m.step, value: m.t1 });
  setCursor(m.t1);
  $('when-box').hidden = false;
  put($('refusals'), h('h3', { text: 'Latest refusals' }),
    table('refusals-table', 'Commands refused (the latest 50, kept 30 days)', ['Time', 'Command', 'Plan', 'Device', 'Title or licence', 'Rules'], m.refusals,
      (r) => h('tr', null, td(fmtAt(r.at)), td(r.command), td(r.plan), td(r.device_id), td(r.title_id || r.licence_id), td(rulesFull(r.rules)))));
  const v = m.viewing, err = v.error ? h('div', { class: 'error', role: 'alert' }) : null;
  put($('views'), h('h3', { text: 'Viewing history' }), v.more ? h('p', { class: 'note', text: `The latest ${v.views.length} views.` }) : null,
    table('views-table', 'Views, newest first', ['Started', 'Last seen', 'Device', 'Title', 'Profile', 'Watched', 'Position', 'Completed', 'Ended'], v.views,
      (w) => h('tr', null, td(fmtAt(w.started_at)), td(fmtAt(w.last_seen_at)), td(w.device_id), td(w.title_id), td(w.profile_id),
        td(dur(w.watched_ms)), td(dur(w.position_ms)), td(w.completed ? 'yes' : 'no'), td(w.ended || 'playing'))), err);
  if (v.row) {
    const removed = list(v.row.removed);
    $('views').append(h('h3', { text: 'Recently watched row' }),
      table('row-table', 'The account\'s own row, latest first', ['Title', 'Started', 'Resume from', 'Completed'], list(v.row.titles),
        (r) => h('tr', null, td(r.title_id), td(fmtAt(r.started_at)), td(dur(r.resume_from_ms)), td(r.completed ? 'yes' : 'no'))),
      removed.length === 0 ? h('p', { class: 'note', id: 'row-removed', text: 'No title removed from the row by the member.' })
        : h('div', { id: 'row-removed' }, h('p', { class: 'note', text: 'Removed from the row by the member (kept in the history; watching again brings a title back):' }),
          h('ul', null, ...removed.map((r) => h('li', { 'data-title': r.title_id, text: `${r.title_id}, removed ${fmtAt(r.removed_at)}` })))));
  }
  if (err) showError(err, v.error);
  renderEvents();
  $('raw').hidden = false;
  $('raw').querySelector('summary').textContent = `Raw events (${m.events.length})`;
}

function renderEvents() {
  const type = $('raw-type').value, rows = type ? m.events.filter((e) => e.type === type) : m.events;
  put($('raw-table'), table('events-table', `Events of member ${m.id}${type ? ' of type ' + type : ''}, oldest first`, ['Version', 'Type', 'Time', 'Policy', 'Data'], rows,
    (e) => h('tr', { 'data-version': str(e.version) }, td(e.version), td(e.type), td(fmtAt(e.at)), td(e.policy_version), h('td', null, h('code', { text: JSON.stringify(e.data) })))));
}
$('raw-type').addEventListener('change', () => m && renderEvents());

function setCursor(t) {
  m.cursor = t;
  const cx = m.x(t).toFixed(1);
  m.cursorLine.setAttribute('x1', cx);
  m.cursorLine.setAttribute('x2', cx);
  $('when').setAttribute('aria-valuetext', fmt(t));
  $('when-text').textContent = fmt(t) + (t >= m.t1 ? ' (now)' : '');
}

// fetchState reads the member's licences as they were at t.
async function fetchState(t) {
  if (!m) return;
  const seq = ++stateSeq, id = m.id;
  try {
    const doc = await api(`v1/admin/members/${enc(id)}/timeline` + (t >= m.t1 ? '' : '?at=' + enc(new Date(t).toISOString())));
    if (seq === stateSeq && m && m.id === id) showState(doc);
  } catch (err) {
    if (seq === stateSeq) showError($('member-error'), err);
  }
}

const ORDER = { ACTIVE: 0, EXPIRED: 1, RELEASED: 2 };
function showState(doc) {
  showError($('member-error'), null);
  const ls = list(doc.licences).slice().sort((a, b) => (ORDER[a.status] ?? 3) - (ORDER[b.status] ?? 3) || time(b.issued_at) - time(a.issued_at));
  const box = $('state');
  box.setAttribute('data-at', str(doc.at));
  box.setAttribute('data-version', str(doc.version));
  put(box, h('h3', { text: 'Licences at ' + fmtAt(doc.at) }),
    h('p', { class: 'note', text: `Log version ${str(doc.version)} of ${str(doc.events)}: ${ls.filter((l) => l.status === 'ACTIVE').length} active of ${ls.length} licences.` }),
    table('state-table', 'Licences as the service saw them at ' + fmtAt(doc.at),
      ['Licence', 'Title', 'Studio', 'Device', 'Status', 'Issued', 'Expires', 'Renewals', 'Plays', 'Released'], ls,
      (l) => h('tr', { 'data-licence': str(l.licence_id), 'data-status': str(l.status) },
        td(l.licence_id), td(l.title_id), td(l.studio_id), td(l.device_id), td(l.status, 'status ' + str(l.status).toLowerCase()),
        td(fmtAt(l.issued_at)), td(fmtAt(l.expires_at)), td(l.renewals), td(l.plays),
        td(l.released_at ? `${fmtAt(l.released_at)} (${str(l.release_reason)})` : ''))));
}

// The slider: the cursor follows it at once; the state is read when it
// rests, or on change (a keyboard step, the thumb let go).
let restTimer = 0;
$('when').addEventListener('input', () => {
  if (!m) return;
  setCursor(Number($('when').value));
  clearTimeout(restTimer);
  restTimer = setTimeout(() => fetchState(m.cursor), 250);
});
$('when').addEventListener('change', () => {
  if (!m) return;
  clearTimeout(restTimer);
  setCursor(Number($('when').value));
  fetchState(m.cursor);
});
// Previous and next event: the event's exact time (the slider's steps are
// a thousandth of the span).
function jump(dir) {
  if (!m || !m.events.length) return;
  const ts = m.events.map((e) => time(e.at));
  let t = dir < 0 ? ts.filter((v) => v < m.cursor).pop() : ts.find((v) => v > m.cursor);
  if (t === undefined) t = dir < 0 ? ts[0] : m.t1;
  $('when').value = String(t);
  setCursor(t);
  fetchState(t);
}
$('when-prev').addEventListener('click', () => jump(-1));
$('when-next').addEventListener('click', () => jump(1));

let resizeTimer = 0;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (m) { const c = m.cursor; draw(); setCursor(c); } }, 200);
});

// ---- what-if ----

$('policy-file').addEventListener('change', () => {
  const f = $('policy-file').files[0];
  if (f) f.text().then((text) => { $('policy').value = text; status(`Policy file ${f.name} loaded.`); }, () => showError($('whatif-error'), new ApiError(0, 'FILE', 'the file could not be read')));
});

// The policy the service decides by, as loaded, to change and try.
$('policy-load').addEventListener('click', async () => {
  showError($('whatif-error'), null);
  try {
    const doc = await api('v1/admin/policy');
    $('policy').value = JSON.stringify(doc, null, 2);
    status(`Policy ${str(doc && doc.version)} in force loaded.`);
  } catch (e) {
    showError($('whatif-error'), e);
  }
});

onSubmit('whatif-form', async () => {
  const err = $('whatif-error'), out = $('whatif-result'), id = m ? m.id : $('member').value.trim(), body = $('policy').value;
  showError(err, null);
  status('');
  out.replaceChildren();
  if (!id) return showError(err, new ApiError(0, 'NO_MEMBER', 'open a member first'));
  try { JSON.parse(body); } catch (e) { return showError(err, new ApiError(0, 'NOT_JSON', 'the policy is not JSON: ' + e.message)); }
  try {
    const doc = await api(`v1/admin/members/${enc(id)}/what-if`, 'POST', body), div = list(doc.divergences), grants = list(doc.would_grant);
    const rows = div.map((d) => ({ version: d.version, at: d.at, what: `${str(d.type)} ${str(d.licence_id)}` + (d.title_id ? ` (${str(d.title_id)})` : ''),
      then: d.type === 'LicenceRenewed' ? 'RENEWED' : 'GRANTED', now: 'REFUSED', rules: d.rules, cls: 'refused' }))
      .concat(grants.map(({ refusal: r = {} }) => ({ version: r.version, at: r.at, what: `${str(r.command)} ${str(r.title_id || r.licence_id)} on ${str(r.device_id)}`,
        then: `REFUSED (${rulesText(r.rules)})`, now: 'GRANTED', rules: [], cls: 'granted' })));
    put(out, h('p', { class: 'note', text: `Member ${str(doc.member || id)}, ${str(doc.events)} events, under policy ${str(doc.policy_version)}: ` +
      `${div.length} past grants or renewals would have been refused; ${grants.length} of the latest refusals would have been granted.` }),
    table('whatif-table', 'Decisions this policy would have made differently', ['Version', 'Time', 'Decision', 'Decided then', 'Under this policy', 'Rules that did it'], rows,
      (r) => h('tr', { 'data-kind': 'flip', class: r.cls }, td(r.version), td(fmtAt(r.at)), td(r.what), td(r.then, 'then'), td(r.now, 'now'), td(rulesFull(r.rules)))));
    status('What-if done.');
  } catch (e) {
    status('What-if failed.');
    showError(err, e);
  }
});

// ---- fleet-wide jobs ----

$('job-policy-load').addEventListener('click', async () => {
  showError($('job-error'), null);
  try {
    $('job-policy').value = JSON.stringify(await api('v1/admin/policy'), null, 2);
  } catch (e) {
    showError($('job-error'), e);
  }
});

// chart draws the counts of a map (name → n) as horizontal bars, largest
// first: an SVG with a bar, its name and its count per entry.
function chart(id, caption, counts) {
  const entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 12);
  const max = Math.max(1, ...entries.map((e) => e[1])), W = 640, ROW = 22, LABEL = 200;
  const svg = s('svg', { id, role: 'img', 'aria-label': caption, viewBox: `0 0 ${W} ${ROW * entries.length + 24}`, width: W, height: ROW * entries.length + 24 },
    s('text', { x: 0, y: 14, class: 'caption' }, caption),
    ...entries.map(([name, n], i) => s('g', { 'data-kind': 'bar', 'data-name': name, 'data-count': n },
      s('text', { x: 0, y: 24 + ROW * i + 15 }, name),
      s('rect', { x: LABEL, y: 24 + ROW * i + 3, width: Math.max(1, ((W - LABEL - 60) * n) / max), height: ROW - 6, class: 'bar' }),
      s('text', { x: LABEL + ((W - LABEL - 60) * n) / max + 6, y: 24 + ROW * i + 15 }, String(n)))));
  return entries.length ? svg : h('p', { class: 'note', text: caption + ': none.' });
}

function showJob(job) {
  const p = $('job-progress');
  p.max = Math.max(1, job.segments || 1);
  p.value = job.segments_done || 0;
  $('job-state').textContent = `Job ${str(job.job_id)} (${str(job.kind)}): ${str(job.state)}, ${job.segments_done} of ${plural(job.segments, 'segment')}, ` +
    `${plural(job.members, 'member')}, ${plural(job.errors, 'error')}.`;
  const sum = job.summary;
  if (!sum) return $('job-result').replaceChildren();
  const rows = (name, counts) => Object.entries(counts || {}).sort((a, b) => b[1] - a[1]).map(([k, n]) => [name, k, n]);
  const out = [h('p', { class: 'note', text: `${plural(sum.members, 'member')}, ${plural(sum.events, 'event')} over ${plural(sum.segments, 'segment')}.` })];
  if (sum.kind === 'whatif') {
    out.push(h('p', { class: 'note', id: 'job-flips', text: `${sum.flips || 0} past grants or renewals would have been refused; ${sum.would_grant || 0} of the latest refusals would have been granted.` }),
      table('job-table', 'Decisions the policy would have made differently, by rule, studio, plan and title', ['By', 'Which', 'Count'],
        [...rows('rule', sum.by_rule), ...rows('studio', sum.by_studio), ...rows('plan', sum.by_plan), ...rows('title', sum.by_title)],
        (r) => h('tr', { 'data-kind': 'flip-count' }, ...r.map((v) => td(v)))),
      chart('job-chart-rules', 'Flips per rule', sum.by_rule), chart('job-chart-studios', 'Flips per studio', sum.by_studio),
      h('p', { class: 'note', text: 'Sample members: ' + list(sum.samples).join(', ') }));
  } else if (sum.kind === 'recount') {
    out.push(table('job-table', 'Counters recounted from every log', ['Scope', 'Field', 'Count'],
      Object.entries(sum.counts || {}).flatMap(([scope, f]) => Object.entries(f).map(([k, n]) => [scope, k, n])), (r) => h('tr', null, ...r.map((v) => td(v)))));
  } else {
    out.push(h('p', { class: 'note', text: sum.kind === 'snapshots' ? `${sum.written || 0} snapshots written.` : `${sum.holders || 0} holders recorded.` }));
  }
  put($('job-result'), ...out);
}

onSubmit('job-form', async () => {
  const err = $('job-error'), kind = $('job-kind').value, body = { kind, segments: Number($('job-segments').value) || 32 };
  showError(err, null);
  if (kind === 'whatif') {
    try { body.policy = JSON.parse($('job-policy').value); } catch (e) { return showError(err, new ApiError(0, 'NOT_JSON', 'the policy is not JSON: ' + e.message)); }
  }
  try {
    let job = await api('v1/admin/jobs', 'POST', JSON.stringify(body));
    status(`Job ${str(job.job_id)} started.`);
    const id = job.job_id;
    for (;;) {
      job = await api(`v1/admin/jobs/${enc(id)}`);
      showJob(job);
      if (job.state !== 'RUNNING') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    status(`Job ${str(id)}: ${str(job.state)}.`);
  } catch (e) {
    showError(err, e);
  }
});

// ---- titles and studios ----

const today = new Date().toISOString().slice(0, 10);
$('studio-day').value = $('watched-day').value = today;

// counts wires a form to a counters route and shows its answer as a table.
function counts(name, path, caption, columns, rowsOf) {
  onSubmit(name + '-form', async () => {
    const err = $(name + '-error'), out = $(name + '-result');
    showError(err, null);
    try {
      const doc = await api(path());
      put(out, table(name + '-table', caption(doc), columns, rowsOf(doc), (r) => h('tr', null, ...r.map((v) => td(v)))));
      status(caption(doc) + ': read.');
    } catch (e) {
      out.replaceChildren();
      showError(err, e);
    }
  });
}
const val = (id) => enc($(id).value.trim());
counts('title', () => `v1/admin/titles/${val('title-id')}/counts`,
  (d) => 'Licences of title ' + str(d.title_id), ['Title', 'Granted ever', 'Held today'], (d) => [[d.title_id, d.granted, d.active]]);
counts('studio', () => `v1/admin/studios/${val('studio-id')}/days/${val('studio-day')}/counts`,
  (d) => `Licences of studio ${str(d.studio_id)} granted on ${str(d.day)}`, ['Studio', 'Day', 'Granted', 'Still held'],
  (d) => [[d.studio_id, d.day, d.granted, d.still_active]]);
counts('watched', () => `v1/admin/days/${val('watched-day')}/most-watched?limit=${val('watched-limit')}`,
  (d) => 'Most watched on ' + str(d.day), ['Rank', 'Title', 'Views', 'Time watched', 'Completions'],
  (d) => list(d.titles).map((t, i) => [i + 1, t.title_id, t.views, dur(t.watched_ms), t.completions]));

// ---- my actions ----

async function loadAudit() {
  const err = $('audit-error'), out = $('audit-result');
  showError(err, null);
  try {
    const doc = await api('v1/admin/audit?limit=100');
    const named = (r) => [r.member && 'member ' + r.member, r.title && 'title ' + r.title, r.studio && 'studio ' + r.studio, r.job && 'job ' + r.job].filter(Boolean).join(', ');
    put(out, table('audit-table', 'Calls by ' + str(doc.actor), ['When', 'Route', 'Named', 'Answer', 'App client'], list(doc.records),
      (r) => h('tr', { 'data-route': str(r.route), 'data-member': str(r.member || '') }, td(fmtAt(r.at)), td(r.route), td(named(r)), td(r.status), td(r.client_id || ''))));
    status('My actions: read.');
  } catch (e) {
    out.replaceChildren();
    showError(err, e);
  }
}
$('audit-load').addEventListener('click', loadAudit);

busy(0);
