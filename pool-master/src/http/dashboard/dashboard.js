// Spawnpool dashboard: polls GET /api/dashboard once a second and redraws
// the page in place (no reload). Charts are hand-drawn SVG; no library, no
// CDN. Every string from the pool goes in through textContent, never as
// HTML.
'use strict';

(function () {
  const POLL_MS = 1000;
  const RETRY_MS = 2000;
  const MAX_EVENTS_SHOWN = 100;
  // Kept apart, so that chatter never pushes out what matters.
  const ALERT_KINDS = ['node_down', 'app_failed', 'app_pending'];
  const MAX_PLACEMENTS_SHOWN = 30;
  // The filter's kinds, alerts first; all shown at first.
  const EVENT_KINDS = [
    ['node_down', 'nodes down'], ['app_failed', 'apps failed'], ['app_pending', 'apps pending'],
    ['node_up', 'nodes up'], ['app_started', 'apps started'], ['app_stopped', 'apps stopped'],
    ['child_restarted', 'restarts'], ['api', 'operations'], ['placement', 'placements'],
  ];
  const PROCS_SHOWN = 200;
  const MIN_SPAN_MS = 60000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const PALETTE = ['#2dd4bf', '#a78bfa', '#60a5fa', '#f472b6', '#fbbf24', '#34d399',
    '#fb923c', '#22d3ee', '#e879f9', '#a3e635', '#f87171', '#94a3b8'];
  const EVENT_ICONS = {
    node_up: '▲', node_down: '▼', child_restarted: '↻', app_started: '▶',
    app_failed: '✕', app_pending: '…', app_stopped: '■', placement: '→', api: '⚙',
  };

  // What the page knows between polls.
  const state = {
    masterId: null,   // a new id means the master restarted: start over
    since: 0,         // time of the newest history sample received
    after: 0,         // number of the last event received
    window: 300000,   // history the master keeps, ms
    span: 60000,      // what the charts show: the history so far, 1 min to window
    step: 1000,       // sample step, ms
    hist: new Map(),  // node id -> [[t, score, procs, cpu, out, in], ...]
    events: [],       // newest first
    shown: new Set(EVENT_KINDS.map((k) => k[0])), // kinds the filter lets through
    procsNode: null,  // the node whose processes are listed, if any
    colors: new Map(),// node name -> colour
    cards: new Map(), // node id -> card element
    polls: 0,
  };

  // ----- small DOM helpers -------------------------------------------------

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    applyProps(e, props);
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function svg(tag, props) {
    const e = document.createElementNS(SVG_NS, tag);
    applyProps(e, props);
    return e;
  }

  function applyProps(e, props) {
    if (!props) return;
    for (const [k, v] of Object.entries(props)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'style') for (const [p, pv] of Object.entries(v)) e.style.setProperty(p, pv);
      else e.setAttribute(k === 'cls' ? 'class' : k, String(v));
    }
  }

  function byId(id) { return document.getElementById(id); }

  function replaceChildren(parent, children) {
    parent.replaceChildren(...children);
  }

  // ----- formatting ----------------------------------------------------------

  function fmtNum(n) {
    if (n === null || n === undefined || !isFinite(n)) return '–';
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(1).replace(/\.0$/, '') + 'G';
    if (a >= 1e6) return (n / 1e6).toFixed(1).replace(/\.0$/, '') + 'M';
    if (a >= 1e4) return (n / 1e3).toFixed(0) + 'k';
    if (a >= 1e3) return (n / 1e3).toFixed(1).replace(/\.0$/, '') + 'k';
    return String(Math.round(n));
  }

  function fmtScore(s) {
    if (!isFinite(s)) return '–';
    return s >= 10 ? s.toFixed(1) : s.toFixed(2);
  }

  function fmtBytes(b) {
    if (!isFinite(b)) return '–';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i === 0 ? String(Math.round(b)) : b.toFixed(1)) + ' ' + units[i];
  }

  function fmtClock(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, '0')).join(':');
  }

  function fmtAgo(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + 's ago';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + (s % 60) + 's ago';
    return Math.floor(m / 60) + 'h ' + (m % 60) + 'm ago';
  }

  function fmtSpan(ms) {
    const s = Math.round(ms / 1000);
    if (s < 90) return s + ' s';
    return Math.round(s / 60) + ' min';
  }

  function fmtDuration(ms) {
    if (ms < 1000) return ms + ' ms';
    const s = ms / 1000;
    return (Number.isInteger(s) ? s : s.toFixed(1)) + ' s';
  }

  // Each node name gets a colour the first time it is seen (names seen at
  // once are coloured in name order), so colours stay put between polls.
  function colorOf(name) {
    if (!state.colors.has(name)) state.colors.set(name, PALETTE[state.colors.size % PALETTE.length]);
    return state.colors.get(name);
  }

  // ----- polling -------------------------------------------------------------

  // A poll starts POLL_MS after the previous one started (not after it
  // ended), so the page redraws once a second while answers come in time.
  async function poll() {
    const started = Date.now();
    let data;
    try {
      const url = '/api/dashboard?since=' + state.since + '&after=' + state.after;
      const resp = await fetch(url, { cache: 'no-store' });
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      data = await resp.json();
    } catch (e) {
      setConn('lost', 'master unreachable · retrying');
      document.body.dataset.error = String(e);
      setTimeout(poll, RETRY_MS);
      return;
    }
    try {
      if (!apply(data)) {
        // The master restarted: ask again for everything.
        setTimeout(poll, 0);
        return;
      }
      render(data);
      setConn('live', 'live · updated ' + fmtClock(data.now_ms));
      state.polls++;
      document.body.dataset.polls = String(state.polls);
      delete document.body.dataset.error;
    } catch (e) {
      // A bug of this page, not the master: say so, and keep polling.
      setConn('lost', 'display error: ' + e.message);
      document.body.dataset.error = String(e);
    }
    setTimeout(poll, Math.max(0, POLL_MS - (Date.now() - started)));
  }

  function setConn(s, text) {
    const c = byId('conn');
    c.dataset.state = s;
    byId('conn-text').textContent = text;
  }

  // Merges a poll's answer into what the page keeps; false if the page
  // must start over (the master restarted since the last poll).
  function apply(data) {
    if (state.masterId !== data.master.id || data.last_seq < state.after) {
      const first = state.masterId === null && state.since === 0 && state.after === 0;
      state.masterId = data.master.id;
      state.hist.clear();
      state.events = [];
      state.after = 0;
      state.since = 0;
      if (!first) return false;
    }
    state.window = data.window_ms;
    state.step = data.step_ms;
    for (const n of [...data.nodes].sort((a, b) => a.name.localeCompare(b.name))) colorOf(n.name);
    const live = new Set();
    for (const n of data.nodes) {
      live.add(n.id);
      const h = state.hist.get(n.id) || [];
      for (const s of n.history) {
        if (!h.length || s[0] > h[h.length - 1][0]) h.push(s);
        if (s[0] > state.since) state.since = s[0];
      }
      const oldest = data.now_ms - state.window;
      while (h.length && h[0][0] < oldest) h.shift();
      state.hist.set(n.id, h);
    }
    for (const id of [...state.hist.keys()]) if (!live.has(id)) state.hist.delete(id);
    const fresh = data.events.slice().reverse();
    for (const e of fresh) e.fresh = state.polls > 0;
    state.events = keepEvents(fresh.concat(state.events.map((e) => { e.fresh = false; return e; })));
    state.after = Math.max(state.after, data.last_seq);
    // The charts span the history there is (a young pool's first minute
    // fills the chart), from one minute up to the whole window; the same
    // span for every card, so that they compare.
    let oldest = data.now_ms;
    for (const h of state.hist.values()) if (h.length && h[0][0] < oldest) oldest = h[0][0];
    state.span = Math.min(state.window, Math.max(MIN_SPAN_MS, data.now_ms - oldest));
    return true;
  }

  function render(data) {
    renderMaster(data);
    renderTiles(data);
    renderSpread(data);
    renderNodes(data);
    renderTrees(data);
    renderAttention(data);
    renderEvents();
  }

  // ----- a node's processes ------------------------------------------------------

  // Clicking a live node's card lists its processes, asked of the node
  // (GET /api/nodes/{node}/processes); clicking again or × closes it.
  function toggleProcs(name) {
    state.procsNode = state.procsNode === name ? null : name;
    loadProcs();
  }

  async function loadProcs() {
    const name = state.procsNode;
    const box = byId('procs');
    box.hidden = !name;
    if (!name) return;
    byId('procs-node').textContent = name;
    byId('procs-count').textContent = 'loading…';
    let list;
    try {
      const r = await fetch('/api/nodes/' + encodeURIComponent(name) + '/processes', { cache: 'no-store' });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
      list = body;
    } catch (e) {
      if (state.procsNode !== name) return;
      byId('procs-count').textContent = '';
      replaceChildren(byId('procs-body'), [el('div', { cls: 'empty', text: 'Could not list them: ' + e.message })]);
      return;
    }
    if (state.procsNode !== name) return;
    byId('procs-count').textContent = list.length + ' process' + (list.length === 1 ? '' : 'es') +
      (list.length > PROCS_SHOWN ? ', first ' + PROCS_SHOWN + ' shown' : '');
    const head = el('div', { cls: 'proc-row head' },
      el('span', { text: 'pid' }), el('span', { text: 'function' }), el('span', { text: 'name / owner' }),
      el('span', { text: 'status' }), el('span', { text: 'age' }));
    const rows = list.slice(0, PROCS_SHOWN).map((p) => el('div', { cls: 'proc-row', 'data-pid': p.pid },
      el('span', { cls: 'pid', text: p.pid }), el('span', { text: p.function }),
      el('span', { text: [p.name, p.owner].filter(Boolean).join(' · ') || '—' }),
      el('span', { cls: 'status', text: p.status }), el('span', { text: fmtDuration(p.age_ms || 0) })));
    replaceChildren(byId('procs-body'), [head, ...rows]);
  }

  // ----- header --------------------------------------------------------------

  function renderMaster(data) {
    const m = data.master;
    replaceChildren(byId('master-line'), [
      'master ', el('b', { text: m.name }),
      ' · placement ', el('b', { text: m.placement }),
      ' · node timeout ', el('b', { text: fmtDuration(m.node_timeout_ms) }),
      ' · operations ', el('b', { text: m.operations ? 'token required' : 'disabled' }),
    ]);
    byId('window-label').textContent = 'last ' + fmtSpan(state.span);
  }

  function tile(label, value, note, tone, small) {
    return el('div', { cls: 'tile' + (tone ? ' ' + tone : ''), 'data-tile': label },
      el('div', { cls: 'label', text: label }),
      el('div', { cls: 'value' }, value, small ? el('small', { text: small }) : null),
      el('div', { cls: 'note', text: note || '' }));
  }

  // The Trees tile's note and suffix: failed and pending trees, if any.
  function treesNote(s) {
    const parts = [];
    if (s.trees_failed) parts.push(s.trees_failed + ' failed');
    if (s.trees_pending) parts.push(s.trees_pending + ' pending');
    return parts.length ? parts.join(' · ') : 'running';
  }

  function treesExtra(s) {
    const parts = [];
    if (s.trees_failed) parts.push('+ ' + s.trees_failed + ' failed');
    if (s.trees_pending) parts.push('+ ' + s.trees_pending + ' pending');
    return parts.join(' ');
  }

  function renderTiles(data) {
    const s = data.summary;
    const avg = s.nodes_up ? s.processes / s.nodes_up : 0;
    replaceChildren(byId('tiles'), [
      tile('Nodes up', String(s.nodes_up),
        s.nodes_down ? s.nodes_down + ' down in the last ' + Math.round(data.window_ms / 60000) + ' min'
          : (s.nodes_up ? 'all workers reporting' : 'no worker yet'),
        s.nodes_down ? 'bad' : (s.nodes_up ? 'good' : ''), s.nodes_down ? '/ ' + (s.nodes_up + s.nodes_down) : ''),
      tile('Processes', fmtNum(s.processes), s.nodes_up ? fmtNum(avg) + ' per node on average' : ''),
      tile('Restarts · 1 min', String(s.restarts_1m), s.restarts_1m ? 'children restarted by supervisors' : 'no restart',
        s.restarts_1m ? 'warn' : ''),
      tile('Spawns · 1 min', fmtNum(s.spawns_1m), 'placed by the master'),
      tile('Trees', String(s.trees_running), treesNote(s),
        s.trees_failed ? 'bad' : (s.trees_pending ? 'warn' : ''), treesExtra(s)),
      tile('Messages / s', fmtNum(s.frames_per_s), 'between nodes'),
    ]);
  }

  function renderSpread(data) {
    const up = data.nodes.filter((n) => n.state === 'up');
    const total = up.reduce((a, n) => a + n.procs, 0);
    byId('spread-total').textContent = fmtNum(total) + ' processes on ' + up.length + ' node' + (up.length === 1 ? '' : 's');
    const bar = [];
    const legend = [];
    for (const n of up) {
      const c = colorOf(n.name);
      bar.push(el('span', { title: n.name + ': ' + n.procs, style: { background: c, 'flex-grow': String(Math.max(n.procs, total ? 0 : 1)) } }));
      const pct = total ? Math.round((100 * n.procs) / total) : 0;
      legend.push(el('span', {}, el('i', { cls: 'swatch', style: { background: c } }), n.name + ' ',
        el('b', { text: fmtNum(n.procs) }), ' · ' + pct + '%'));
    }
    replaceChildren(byId('spread-bar'), bar);
    replaceChildren(byId('spread-legend'), legend);
  }

  // ----- node cards ------------------------------------------------------------

  function renderNodes(data) {
    const host = byId('nodes');
    const nodes = [...data.nodes].sort((a, b) =>
      a.name.localeCompare(b.name) || (a.state === 'up' ? -1 : 1));
    if (!nodes.length) {
      if (!host.querySelector('.empty')) {
        replaceChildren(host, [el('div', { cls: 'empty' }, 'No worker has joined yet. Start one with ',
          el('code', { text: 'pool-worker --master ADDR --name w1' }), '.')]);
      }
      state.cards.clear();
      return;
    }
    const keep = new Set();
    const order = [];
    for (const n of nodes) {
      keep.add(n.id);
      let card = state.cards.get(n.id);
      if (!card) {
        card = el('article', { cls: 'node', title: 'click to list its processes' });
        card.addEventListener('click', () => { if (card.dataset.state === 'up') toggleProcs(card.dataset.node); });
        state.cards.set(n.id, card);
      }
      fillCard(card, n, data);
      order.push(card);
    }
    for (const [id, card] of state.cards) if (!keep.has(id)) { card.remove(); state.cards.delete(id); }
    // Put the cards in order without re-creating them.
    const empty = host.querySelector('.empty');
    if (empty) empty.remove();
    order.forEach((card, i) => {
      if (host.children[i] !== card) host.insertBefore(card, host.children[i] || null);
    });
    // Charts need the card's width, known once it is in the page.
    for (const n of nodes) drawChart(state.cards.get(n.id).querySelector('.chart-host'), n, data);
  }

  function fillCard(card, n, data) {
    const down = n.state === 'down';
    card.dataset.node = n.name;
    card.dataset.state = n.state;
    card.style.setProperty('--node-color', colorOf(n.name));
    const labels = Object.entries(n.labels || {}).map(([k, v]) => el('span', { cls: 'chip', text: k + '=' + v }));
    const head = el('div', { cls: 'node-head' },
      el('span', { cls: 'node-name', text: n.name }),
      el('span', { cls: 'pill ' + n.state, text: down ? 'down' : 'up' }),
      el('span', { cls: 'labels' }, ...labels));
    const meta = down
      ? el('div', { cls: 'node-reason', text: 'down: ' + n.reason + ' · ' + fmtAgo(data.now_ms - n.down_at_ms) })
      : el('div', { cls: 'node-meta', title: n.id,
        text: n.addr + ' · capacity ' + n.capacity + ' · report ' + fmtDuration(n.report_age_ms) + ' ago' });
    const h = state.hist.get(n.id) || [];
    const last = h.length ? h[h.length - 1] : null;
    const rate = last ? last[4] + last[5] : 0;
    const stats = el('div', { cls: 'stats' },
      stat('score', fmtScore(n.score), 'score'),
      stat('processes', fmtNum(n.procs), 'procs'),
      stat('cpu', down ? '–' : fmtNum(n.self_cpu), null, down ? '' : '%'),
      stat('msgs/s', down ? '–' : fmtNum(rate), null, '',
        n.traffic ? 'sent ' + fmtBytes(n.traffic.bytes_out) + ', received ' + fmtBytes(n.traffic.bytes_in) : ''));
    let host = card.querySelector('.chart-host');
    if (!host) host = el('div', { cls: 'chart-host' });
    card.replaceChildren(head, meta, stats, host);
  }

  function stat(k, v, tone, unit, title) {
    return el('div', { cls: 'stat', title: title || null },
      el('div', { cls: 'k', text: k }),
      el('div', { cls: 'v' + (tone ? ' ' + tone : '') }, v, unit ? el('small', { text: unit }) : null));
  }

  // Score as a filled area, processes as a line on their own scale, over
  // the chart window; gaps (no samples) break the lines.
  function drawChart(host, n, data) {
    const W = Math.max(200, Math.round(host.clientWidth || 300));
    const H = 84;
    const top = 14;
    const bottom = H - 14;
    const end = n.state === 'down' ? n.down_at_ms : data.now_ms;
    const t1 = data.now_ms;
    const t0 = t1 - state.span;
    const h = (state.hist.get(n.id) || []).filter((s) => s[0] >= t0 && s[0] <= end);
    const s = svg('svg', { cls: 'chart', viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img',
      'aria-label': n.name + ': score and processes over the last ' + fmtSpan(state.span) });
    const defs = svg('defs');
    const gradId = 'g-score-' + n.id;
    const grad = svg('linearGradient', { id: gradId, x1: 0, y1: 0, x2: 0, y2: 1 });
    grad.append(svg('stop', { offset: '0%', 'stop-color': '#2dd4bf', 'stop-opacity': 0.42 }),
      svg('stop', { offset: '100%', 'stop-color': '#2dd4bf', 'stop-opacity': 0.02 }));
    defs.append(grad);
    s.append(defs);
    for (const y of [top, (top + bottom) / 2, bottom]) {
      s.append(svg('line', { cls: 'grid', x1: 0, x2: W, y1: y, y2: y }));
    }
    const maxScore = Math.max(1, ...h.map((x) => x[1])) * 1.1;
    const maxProcs = Math.max(4, ...h.map((x) => x[2])) * 1.1;
    const x = (t) => ((t - t0) / (t1 - t0)) * W;
    const yScore = (v) => bottom - (v / maxScore) * (bottom - top);
    const yProcs = (v) => bottom - (v / maxProcs) * (bottom - top);
    if (h.length) {
      const gap = state.step * 3.5;
      const segments = [];
      let seg = [];
      for (let i = 0; i < h.length; i++) {
        if (i && h[i][0] - h[i - 1][0] > gap) { segments.push(seg); seg = []; }
        seg.push(h[i]);
      }
      segments.push(seg);
      for (const sg of segments) {
        const pts = sg.map((p) => [x(p[0]), yScore(p[1])]);
        if (sg.length === 1) pts.push([pts[0][0] + 2, pts[0][1]]);
        const line = pts.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join('');
        const area = line + 'L' + pts[pts.length - 1][0].toFixed(1) + ' ' + bottom + 'L' + pts[0][0].toFixed(1) + ' ' + bottom + 'Z';
        s.append(svg('path', { cls: 'area', d: area, fill: 'url(#' + gradId + ')' }),
          svg('path', { cls: 'score-line', d: line }));
        const pp = sg.map((p) => [x(p[0]), yProcs(p[2])]);
        if (sg.length === 1) pp.push([pp[0][0] + 2, pp[0][1]]);
        s.append(svg('path', { cls: 'procs-line', d: pp.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join('') }));
      }
    } else {
      const t = svg('text', { cls: 'nodata', x: W / 2, y: H / 2 + 4, 'text-anchor': 'middle' });
      t.textContent = 'collecting samples…';
      s.append(t);
    }
    const label = (text, xx, yy, anchor, fill) => {
      const t = svg('text', { cls: 'axis', x: xx, y: yy, 'text-anchor': anchor, fill: fill || null });
      t.textContent = text;
      s.append(t);
    };
    label('score ≤ ' + fmtScore(maxScore), 2, 10, 'start', '#5eead4');
    label('procs ≤ ' + fmtNum(maxProcs), W - 2, 10, 'end', '#c4b5fd');
    label('-' + fmtSpan(state.span), 2, H - 2, 'start');
    label('now', W - 2, H - 2, 'end');
    host.replaceChildren(s);
  }

  // ----- trees -----------------------------------------------------------------

  function renderTrees(data) {
    const host = byId('trees');
    const running = data.trees.filter((t) => t.status === 'running').length;
    byId('trees-count').textContent = data.trees.length
      ? running + ' of ' + data.trees.length + ' running' : '';
    if (!data.trees.length) {
      replaceChildren(host, [el('div', { cls: 'empty' }, 'No tree yet. Submit one with ',
        el('code', { text: 'poolctl tree start FILE' }), '.')]);
      return;
    }
    const down = new Set(data.nodes.filter((n) => n.state === 'down').map((n) => n.name));
    replaceChildren(host, data.trees.map((t) => treeCard(t, down)));
  }

  function treeCard(t, down) {
    const v = t.view;
    const head = el('div', { cls: 'tree-head' },
      el('span', { cls: 'tree-name', text: t.id }),
      el('span', { cls: 'pill ' + t.status, text: t.status }),
      t.stale ? el('span', { cls: 'pill stale', text: 'stale', title: 'the root\'s node did not answer; last known view' }) : null,
      el('span', { cls: 'meta' },
        t.node ? 'root on ' : 'no root running',
        t.node ? el('b', { text: t.node }) : null,
        v && v.strategy ? ' · ' + v.strategy : '',
        v ? ' · ' : '', v ? el('b', { text: String(v.restarts) }) : null, v ? ' restart' + (v.restarts === 1 ? '' : 's') : ''));
    const card = el('article', { cls: 'tree', 'data-tree': t.id, 'data-status': t.status }, head);
    if (t.reason) card.append(el('div', { cls: 'tree-reason', text: t.reason }));
    if (v) {
      const rows = el('div', { cls: 'rows' });
      walk(v, '', true, true, rows, t.id, down);
      card.append(el('div', { cls: 'rows-head' },
        el('span', { text: 'supervisor / child' }), el('span', { text: 'node' }),
        el('span', { text: 'pid' }), el('span', { text: 'restarts' })), rows);
    }
    return card;
  }

  // One row per supervisor and child, with tree guides.
  function walk(v, prefix, isLast, isRoot, rows, tree, down) {
    const sup = Array.isArray(v.children);
    const guide = isRoot ? '' : prefix + (isLast ? '└─ ' : '├─ ');
    const badge = v.node
      ? el('span', { cls: 'badge' + (down.has(v.node) ? ' gone' : ''), style: { '--badge-color': colorOf(v.node) } },
        el('i'), v.node + (down.has(v.node) ? ' (down)' : ''))
      : el('span', { cls: 'badge none', text: v.status === 'restarting' ? 'restarting' : 'not running' });
    rows.append(el('div', {
      cls: 'row' + (sup ? ' sup' : ''), 'data-tree': tree, 'data-child': v.id, 'data-node': v.node || '',
      'data-restarts': v.restarts, 'data-status': v.status,
    },
    el('span', { cls: 'who' },
      el('span', { cls: 'guide', text: guide }),
      el('span', { cls: 'sdot', title: v.status }),
      el('span', { cls: 'id', text: v.id }),
      sup && v.strategy ? el('span', { cls: 'strategy', text: v.strategy }) : null),
    el('span', {}, badge),
    el('span', { cls: 'pid', text: v.pid || '—' }),
    el('span', { cls: 'restarts' + (v.restarts > 0 ? ' hot' : ''), text: v.restarts > 0 ? '↻ ' + v.restarts : '0' })));
    if (sup) {
      const next = isRoot ? '' : prefix + (isLast ? '   ' : '│  ');
      v.children.forEach((c, i) => walk(c, next, i === v.children.length - 1, false, rows, tree, down));
    }
  }

  // ----- events ----------------------------------------------------------------

  // Newest first, each class within its own bound: alerts, placements and
  // the rest never push each other out.
  function keepEvents(all) {
    let alerts = 0, placements = 0, other = 0;
    return all.filter((e) => {
      if (ALERT_KINDS.includes(e.kind)) return ++alerts <= MAX_EVENTS_SHOWN;
      if (e.kind === 'placement') return ++placements <= MAX_PLACEMENTS_SHOWN;
      return ++other <= MAX_EVENTS_SHOWN;
    });
  }

  function renderFilter() {
    const host = byId('event-filter');
    if (host.children.length) return;
    replaceChildren(host, EVENT_KINDS.map(([kind, label]) => {
      const box = el('input', { type: 'checkbox', 'data-kind': kind });
      box.checked = state.shown.has(kind);
      box.addEventListener('change', () => {
        if (box.checked) state.shown.add(kind); else state.shown.delete(kind);
        renderEvents();
      });
      return el('label', { cls: 'kind', 'data-kind': kind }, box, el('span', { cls: 'icon', text: EVENT_ICONS[kind] }), label);
    }));
  }

  // Nodes down and trees failed or pending, with why: always in view.
  function renderAttention(data) {
    const items = [];
    for (const n of data.nodes) {
      if (n.state === 'down') items.push(el('li', { 'data-kind': 'node_down' }, el('b', { text: n.name }), ' down: ' + n.reason));
    }
    for (const t of data.trees) {
      if (t.status === 'failed' || t.status === 'pending') {
        items.push(el('li', { 'data-kind': 'app_' + t.status, 'data-tree': t.id },
          el('b', { text: t.id }), ' ' + t.status + (t.reason ? ': ' + t.reason : '')));
      }
    }
    byId('attention').hidden = !items.length;
    replaceChildren(byId('attention-list'), items);
  }

  function renderEvents() {
    renderFilter();
    const host = byId('events');
    const shown = state.events.filter((e) => state.shown.has(e.kind));
    byId('events-count').textContent = state.events.length
      ? (shown.length === state.events.length ? 'last ' + shown.length : shown.length + ' of ' + state.events.length) : '';
    if (!shown.length) {
      replaceChildren(host, [el('li', { cls: 'empty', text: state.events.length ? 'No event of the kinds chosen.' : 'Nothing has happened yet.' })]);
      return;
    }
    replaceChildren(host, shown.map((e) => el('li', {
      cls: e.fresh ? 'fresh' : null, 'data-kind': e.kind, 'data-seq': e.seq,
      title: new Date(e.t_ms).toLocaleString(),
    },
    el('span', { cls: 'time', text: fmtClock(e.t_ms) }),
    el('span', { cls: 'icon', text: EVENT_ICONS[e.kind] || '•' }),
    el('span', { cls: 'text', text: e.text }))));
  }

  window.spawnpoolDashboard = state;
  byId('procs-close').addEventListener('click', () => { state.procsNode = null; loadProcs(); });
  poll();
})();
