// InetKit dashboard: the host live, from the event stream and the JSON API of the same host.
// Everything shown came from a peer and is treated as text: nothing is parsed as HTML, links go only to
// this host's own API, captured HTML only in a sandboxed frame whose response forbids scripts.
'use strict';
(function () {
  const base = document.querySelector('meta[name="inetkit-base"]').content;
  const query = new URLSearchParams(location.search);
  let token = query.get('token') || '';

  const MAX_EVENTS = 5000;      // kept for the feed
  const MAX_ROWS = 500;         // feed rows drawn
  const MAX_CONNECTIONS = 300;  // connections whose events are kept for their transcript
  const MAX_CONNECTION_EVENTS = 2000;
  const MAX_DNS = 2000;

  const events = [];
  const byConnection = new Map();
  const dnsLog = [];
  // Connections that asked for the dashboard or its API: hidden from the feed unless asked for.
  const ownConnections = new Set();
  let selected = null;     // {type: 'conn', id} | {type: 'event', event}
  let lagged = 0;
  let received = 0;

  // --- helpers ---------------------------------------------------------------------------
  function url(path, params) {
    const q = new URLSearchParams(params || {});
    if (token) q.set('token', token);
    const s = q.toString();
    return base + path + (s ? '?' + s : '');
  }

  async function getJSON(path, params) {
    const response = await fetch(url(path, params), { cache: 'no-store' });
    if (response.status === 401) { askToken(); throw new Error('a token is needed'); }
    if (!response.ok) throw new Error(path + ': HTTP ' + response.status);
    return response.json();
  }

  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = String(v);
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, String(v));
      }
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(typeof c === 'string' ? c : c);
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function $(id) { return document.getElementById(id); }
  function text(v) { return v === undefined || v === null ? '' : Array.isArray(v) ? v.join(', ') : String(v); }
  function clock(iso) {
    const t = text(iso);
    const i = t.indexOf('T');
    return i >= 0 ? t.slice(i + 1, i + 13) : t;
  }
  function when(iso) { return text(iso).replace('T', ' ').slice(0, 19); }
  function bytes(n) {
    n = Number(n) || 0;
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }
  function later(fn, ms) {
    let timer = null;
    return function () {
      if (timer !== null) return;
      timer = setTimeout(function () { timer = null; fn(); }, ms);
    };
  }
  function showError(where, error) {
    const node = $(where);
    if (node) { node.textContent = String(error.message || error); node.hidden = false; }
  }

  // --- what an event says, in one line ----------------------------------------------------
  function summary(e) {
    switch (e.kind) {
      case 'connection.open': return 'open ' + text(e.transport) + ' from ' + text(e.peer) + ' to port ' + text(e.port);
      case 'connection.close': return 'closed after ' + text(e.duration_ms) + ' ms, ' + text(e.bytes_in) + ' B in, ' + text(e.bytes_out) + ' B out (' + text(e.outcome) + ')';
      case 'connection.refused': return 'refused ' + text(e.peer) + ': ' + text(e.outcome);
      case 'line': return text(e.dir) + ': ' + text(e.text);
      case 'http.request': return text(e.method) + ' ' + text(e.target) + ' ' + text(e.version) + ' → ' + text(e.status) + ' (' + text(e.bytes_out) + ' B)';
      case 'http.error': return text(e.status) + ' ' + text(e.reason || e.error || '');
      case 'dns.query': return text(e.qname) + ' ' + text(e.qtype) + ' → ' + text(e.rcode) + ', ' + text(e.answers) + ' answers (' + text(e.answered_from) + ')';
      case 'smtp.message': return 'message ' + text(e.queue_id) + ' from <' + text(e.from) + '> to ' + text(e.to) + ', ' + text(e.size) + ' B';
      case 'ftp.transfer': case 'tftp.transfer':
        return text(e.direction) + ' ' + text(e.file) + (e.user ? ' by ' + text(e.user) : '') + ', ' + text(e.bytes) + ' B' + (e.sha256 ? ' sha256 ' + text(e.sha256).slice(0, 16) + '…' : '');
      case 'ftp.login': case 'pop3.login':
        return 'login ' + text(e.user) + (e.ok === false ? ' refused' : ' accepted') + (e.anonymous ? ' (anonymous)' : '') + (e.method ? ' by ' + text(e.method) : '');
      case 'pop3.retr': case 'pop3.top': case 'pop3.dele':
        return text(e.kind).slice(5).toUpperCase() + ' ' + text(e.message) + ' (' + text(e.uid) + ')' + (e.size ? ', ' + text(e.size) + ' B' : '');
      case 'pop3.update': return 'UPDATE: ' + text(e.deleted) + ' deleted';
      case 'snmp.request': return text(e.version) + ' ' + text(e.pdu) + ' ' + text(e.oids) + (e.community_ok === false ? ' (community refused)' : '');
      case 'ntp.request':
        return 'NTPv' + text(e.version) + ' ' + text(e.mode) + (e.refused ? ': refused, ' + text(e.refused) : ' → stratum ' + text(e.stratum) + ', leap ' + text(e.leap) + ', ref ' + text(e.reference));
      case 'syslog.message':
        return text(e.facility) + '.' + text(e.severity) + ' ' + (e.hostname ? text(e.hostname) + ' ' : '') + (e.app ? text(e.app) + ': ' : '') + text(e.message);
      case 'finger.query':
        return (e.verbose ? '/W ' : '') + (e.user !== undefined ? text(e.user) : '(everyone)') + ' → ' + text(e.outcome);
      case 'ident.query':
        return (e.server_port !== undefined ? text(e.server_port) + ' , ' + text(e.client_port) + ' → ' : '') + text(e.answer) + (e.user ? ' ' + text(e.user) : '');
      case 'datagram': return text(e.bytes_in) + ' B in, ' + text(e.bytes_out) + ' B out';
      case 'exchange':
        return (e.bytes_in !== undefined ? 'first ' + text(e.bytes_in) + ' B in' : '') + (e.bytes_in !== undefined && e.bytes_out !== undefined ? ', ' : '')
          + (e.bytes_out !== undefined ? 'first ' + text(e.bytes_out) + ' B out' : '') + (e.text_out ? ': ' + text(e.text_out).trim() : '');
      default: {
        const skip = new Set(['id', 'time', 'service', 'kind', 'conn', 'transport', 'peer']);
        return Object.keys(e).filter(function (k) { return !skip.has(k); }).sort().map(function (k) { return k + '=' + text(e[k]); }).join(' ');
      }
    }
  }

  // --- the stream -------------------------------------------------------------------------
  function setLive(on, message) {
    const node = $('live-state');
    node.textContent = message || (on ? 'live' : 'reconnecting…');
    node.className = on ? 'on' : 'off';
  }

  function connect(since) {
    const params = since !== null ? { since: String(since) } : {};
    const source = new EventSource(url('/events', params));
    source.onopen = function () { setLive(true); };
    source.onerror = function () { setLive(false); };
    source.onmessage = function (message) {
      let event;
      try { event = JSON.parse(message.data); } catch (_) { return; }
      if (!event || typeof event !== 'object') return;
      if (event.kind === 'stream.lagged') { lagged += Number(event.lost) || 0; scheduleFeed(); return; }
      receive(event);
    };
  }

  function receive(e) {
    received += 1;
    if (e.kind === 'http.request' && e.conn && text(e.target).startsWith(base + '/')) {
      ownConnections.add(e.conn);
      if (ownConnections.size > 10000) ownConnections.delete(ownConnections.values().next().value);
    }
    events.push(e);
    if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
    if (e.conn) {
      let list = byConnection.get(e.conn);
      if (!list) {
        list = [];
        byConnection.set(e.conn, list);
        if (byConnection.size > MAX_CONNECTIONS) byConnection.delete(byConnection.keys().next().value);
      }
      if (list.length < MAX_CONNECTION_EVENTS) list.push(e);
      if (selected && selected.type === 'conn' && selected.id === e.conn) scheduleDetail();
    }
    if (e.kind === 'dns.query') {
      dnsLog.push(e);
      if (dnsLog.length > MAX_DNS) dnsLog.splice(0, dnsLog.length - MAX_DNS);
      scheduleDNS();
    }
    if (e.kind === 'connection.open' || e.kind === 'connection.close') scheduleConnections();
    if (e.kind === 'smtp.message' || e.kind === 'pop3.dele' || e.kind === 'pop3.update') scheduleMail();
    if ((e.kind === 'ftp.transfer' || e.kind === 'tftp.transfer') && e.direction === 'upload') scheduleUploads();
    if (e.service && !knownServices.has(e.service)) { knownServices.add(e.service); fillServiceFilter(); }
    scheduleFeed();
  }

  // --- services and connections -----------------------------------------------------------
  const knownServices = new Set();

  async function refreshServices() {
    try {
      const data = await getJSON('/api/v1/services');
      $('uptime').textContent = 'up ' + duration(data.uptime_seconds);
      const body = $('services').tBodies[0];
      clear(body);
      for (const s of data.services) {
        if (!knownServices.has(s.name)) { knownServices.add(s.name); fillServiceFilter(); }
        for (const c of s.counters) {
          const listeners = s.listeners.filter(function (l) { return l.transport === c.transport; }).map(function (l) { return l.address; });
          const traffic = c.transport === 'tcp'
            ? c.connections + ' connections (' + c.active_connections + ' open, ' + c.refused_connections + ' refused)'
            : c.datagrams_in + ' in, ' + c.datagrams_out + ' out, ' + c.datagrams_dropped + ' dropped';
          body.append(el('tr', { class: s.state === 'running' ? '' : 'dim' },
            el('td', { text: s.name }), el('td', { text: s.state }), el('td', { text: c.transport }),
            el('td', { text: listeners.length ? listeners.join('  ') : 'not running' }),
            el('td', { text: traffic }), el('td', { class: 'n', text: bytes(c.bytes_in) }), el('td', { class: 'n', text: bytes(c.bytes_out) }),
            el('td', { class: 'n', text: c.errors }), el('td', { class: 'n', text: s.restarts })));
        }
      }
    } catch (error) { showError('error', error); }
  }

  function duration(seconds) {
    seconds = Number(seconds) || 0;
    const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    return (h ? h + ' h ' : '') + (h || m ? m + ' min ' : '') + s + ' s';
  }

  async function refreshConnections() {
    try {
      const data = await getJSON('/api/v1/connections');
      const body = $('connections').tBodies[0];
      clear(body);
      const now = Date.now();
      for (const c of data.connections) {
        const age = Math.max(0, Math.round((now - Date.parse(c.started)) / 1000));
        body.append(el('tr', { class: 'click', 'data-conn': c.id, onclick: function () { openConnection(c.id); } },
          el('td', { class: 'n', text: '#' + c.id }), el('td', { text: c.service }), el('td', { text: c.peer }),
          el('td', { class: 'n', text: c.port }), el('td', { class: 'n', text: duration(age) })));
      }
      $('connections-empty').hidden = data.connections.length > 0;
      $('count-connections').textContent = String(data.connections.length);
    } catch (error) { showError('error', error); }
  }
  const scheduleConnections = later(refreshConnections, 300);

  // --- the feed ---------------------------------------------------------------------------
  function fillServiceFilter() {
    const select = $('filter-service');
    const current = select.value;
    clear(select);
    select.append(el('option', { value: '', text: 'all services' }));
    for (const name of Array.from(knownServices).sort()) select.append(el('option', { value: name, text: name }));
    select.value = current;
  }

  function matches(e, service, peer, words, lines, own) {
    if (!lines && e.kind === 'line') return false;
    if (!own && e.conn && ownConnections.has(e.conn)) return false;
    if (service && e.service !== service) return false;
    if (peer && text(e.peer).indexOf(peer) < 0) return false;
    if (words && JSON.stringify(e).toLowerCase().indexOf(words) < 0) return false;
    return true;
  }

  function drawFeed() {
    if ($('filter-pause').checked) return;
    const service = $('filter-service').value;
    const peer = $('filter-peer').value.trim();
    const words = $('filter-text').value.trim().toLowerCase();
    const lines = $('filter-lines').checked;
    const own = $('filter-own').checked;
    const body = $('feed').tBodies[0];
    clear(body);
    let drawn = 0;
    for (let i = events.length - 1; i >= 0 && drawn < MAX_ROWS; i--) {
      const e = events[i];
      if (!matches(e, service, peer, words, lines, own)) continue;
      drawn += 1;
      body.append(el('tr', { class: 'click kind-' + text(e.kind).replace(/[^a-z0-9]/gi, '-'), 'data-id': e.id, onclick: function () { openEvent(e); } },
        el('td', { class: 'n', text: e.id }), el('td', { text: clock(e.time) }), el('td', { text: e.service }),
        el('td', { text: e.kind }), el('td', { text: e.conn ? '#' + e.conn : '' }), el('td', { text: e.peer }),
        el('td', { class: 'summary', text: summary(e) })));
    }
    $('feed-state').textContent = received + ' events received' + (lagged ? ', ' + lagged + ' missed (the ring moved on)' : '');
  }
  const scheduleFeed = later(drawFeed, 150);

  // --- details: a connection's transcript, an event's fields, a datagram's bytes -----------
  function openConnection(id) {
    selected = { type: 'conn', id: id };
    $('detail').hidden = false;
    $('detail-title').textContent = 'Connection #' + id;
    drawDetail();
    // What came before the dashboard opened is in the ring: fetch it once.
    getJSON('/api/v1/events', { conn: String(id), since: String(Math.max(0, id - 1)), limit: '1000' }).then(function (page) {
      const known = byConnection.get(id) || [];
      const ids = new Set(known.map(function (e) { return e.id; }));
      const merged = page.events.filter(function (e) { return !ids.has(e.id); }).concat(known);
      merged.sort(function (a, b) { return a.id - b.id; });
      byConnection.set(id, merged.slice(0, MAX_CONNECTION_EVENTS));
      drawDetail();
    }).catch(function (error) { showError('error', error); });
  }

  function openEvent(e) {
    if (e.conn) return openConnection(e.conn);
    selected = { type: 'event', event: e };
    $('detail').hidden = false;
    $('detail-title').textContent = text(e.service) + ' ' + text(e.kind) + ' #' + e.id;
    drawDetail();
  }

  function hexDump(hex) {
    const lines = [];
    for (let offset = 0; offset * 2 < hex.length; offset += 16) {
      const chunk = hex.slice(offset * 2, offset * 2 + 32);
      const pairs = chunk.match(/../g) || [];
      const ascii = pairs.map(function (p) { const b = parseInt(p, 16); return b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'; }).join('');
      lines.push(offset.toString(16).padStart(4, '0') + '  ' + pairs.join(' ').padEnd(48) + '  ' + ascii);
    }
    return lines.join('\n');
  }

  function drawDetail() {
    const body = $('detail-body');
    clear(body);
    if (!selected) return;
    if (selected.type === 'conn') {
      const list = byConnection.get(selected.id) || [];
      const transcript = el('pre', { id: 'transcript', class: 'transcript' });
      for (const e of list) {
        if (e.kind === 'line') {
          transcript.append(el('span', { class: e.dir === 'C' ? 'c' : 's', text: text(e.dir) + ': ' + text(e.text) }), '\n');
        } else {
          transcript.append(el('span', { class: 'ev', text: '* ' + clock(e.time) + ' ' + text(e.kind) + ' ' + summary(e) }), '\n');
          if (e.hex_in) transcript.append(el('span', { class: 'c', text: hexDump(text(e.hex_in)) }), '\n');
          if (e.hex_out) transcript.append(el('span', { class: 's', text: hexDump(text(e.hex_out)) }), '\n');
        }
      }
      if (!list.length) transcript.append('No events of this connection are left in the ring.');
      body.append(transcript);
      return;
    }
    const e = selected.event;
    if (e.hex_in || e.hex_out) {
      if (e.hex_in) body.append(el('h3', { text: 'From ' + text(e.peer) + ' (' + text(e.bytes_in) + ' B)' }), el('pre', { class: 'hex', id: 'hex-in', text: hexDump(text(e.hex_in)) }));
      if (e.hex_out) body.append(el('h3', { text: 'Answer (' + text(e.bytes_out) + ' B)' }), el('pre', { class: 'hex', id: 'hex-out', text: hexDump(text(e.hex_out)) }));
    }
    body.append(el('h3', { text: 'Fields' }), el('pre', { class: 'json', text: JSON.stringify(e, null, 2) }));
  }
  const scheduleDetail = later(drawDetail, 150);

  // --- mail -------------------------------------------------------------------------------
  let mailSelected = null;

  async function refreshMail() {
    try {
      const data = await getJSON('/api/v1/messages', { limit: '200' });
      const list = $('mail-list');
      clear(list);
      for (const m of data.messages) {
        list.append(el('li', { class: 'click' + (m.id === mailSelected ? ' selected' : ''), 'data-id': m.id, onclick: function () { openMessage(m.id); } },
          el('div', { class: 'subject', text: m.subject || '(no subject)' }),
          el('div', { class: 'meta', text: 'From ' + (m.from || '?') + ' to ' + (m.to || m.mailbox) }),
          el('div', { class: 'meta', text: when(m.received) + ' UTC · ' + bytes(m.size) })));
      }
      $('mail-empty').hidden = data.messages.length > 0;
      $('count-mail').textContent = String(data.messages.length);
    } catch (error) { showError('error', error); }
  }
  const scheduleMail = later(refreshMail, 200);

  async function openMessage(id) {
    mailSelected = id;
    for (const li of $('mail-list').children) li.classList.toggle('selected', li.getAttribute('data-id') === id);
    const view = $('message-view');
    clear(view);
    let m;
    try { m = await getJSON('/api/v1/messages/' + encodeURIComponent(id)); } catch (error) { view.append(el('p', { class: 'error', text: String(error.message) })); return; }
    const path = '/api/v1/messages/' + encodeURIComponent(id);
    view.append(el('h2', { id: 'message-subject', text: m.subject || '(no subject)' }));
    const actions = el('p', { class: 'actions' },
      el('a', { href: url(path + '/raw'), download: '', id: 'message-raw', text: 'Download .eml' }), ' ',
      el('button', { id: 'message-delete', type: 'button', onclick: function () { deleteMessage(id); }, text: 'Delete' }));
    view.append(actions);
    const headers = el('table', { class: 'headers', id: 'message-headers' });
    for (const [name, value] of m.headers) headers.append(el('tr', {}, el('th', { text: name }), el('td', { text: value })));
    view.append(headers);
    if (m.text !== null) view.append(el('h3', { text: 'Text' }), el('pre', { id: 'message-text', class: 'body', text: m.text }));
    if (m.html !== null) {
      view.append(el('h3', { text: 'HTML (sandboxed: no scripts, nothing loaded from elsewhere)' }),
        el('iframe', { id: 'message-html', sandbox: '', referrerpolicy: 'no-referrer', src: url(path + '/html'), title: 'HTML part' }));
    }
    if (m.attachments.length) {
      const list = el('ul', { id: 'message-attachments' });
      for (const a of m.attachments) list.append(el('li', { text: a.filename + ' (' + a.content_type + ', ' + bytes(a.size) + ')' }));
      view.append(el('h3', { text: 'Attachments' }), list);
    }
  }

  async function deleteMessage(id) {
    const response = await fetch(url('/api/v1/messages/' + encodeURIComponent(id)), { method: 'DELETE' });
    if (response.status === 204 || response.status === 404) {
      mailSelected = null;
      clear($('message-view'));
      refreshMail();
    }
  }

  // --- DNS --------------------------------------------------------------------------------
  function drawDNS() {
    const body = $('dns').tBodies[0];
    const filter = $('dns-filter').value.trim().toLowerCase();
    clear(body);
    let drawn = 0;
    for (let i = dnsLog.length - 1; i >= 0 && drawn < MAX_ROWS; i--) {
      const e = dnsLog[i];
      if (filter && text(e.qname).toLowerCase().indexOf(filter) < 0 && text(e.peer).indexOf(filter) < 0) continue;
      drawn += 1;
      body.append(el('tr', { class: e.rcode === 'NOERROR' ? '' : 'warn' },
        el('td', { text: clock(e.time) }), el('td', { text: e.peer }), el('td', { text: e.transport }),
        el('td', { class: 'name', text: e.qname }), el('td', { text: e.qtype }), el('td', { text: e.rcode }),
        el('td', { class: 'n', text: e.answers }), el('td', { text: e.answered_from })));
    }
    $('count-dns').textContent = String(dnsLog.length);
  }
  const scheduleDNS = later(drawDNS, 200);

  // --- uploads ----------------------------------------------------------------------------
  async function refreshUploads() {
    try {
      const data = await getJSON('/api/v1/uploads', { limit: '500' });
      const body = $('uploads').tBodies[0];
      clear(body);
      for (const u of data.uploads) {
        const link = u.available
          ? el('a', { href: url('/api/v1/uploads/' + u.id), download: u.name, text: 'download' })
          : el('span', { class: 'dim', text: 'gone or changed' });
        body.append(el('tr', {},
          el('td', { text: when(u.time) }), el('td', { text: u.service }), el('td', { text: u.peer }), el('td', { text: u.user || '' }),
          el('td', { class: 'name', text: u.file }), el('td', { class: 'n', text: bytes(u.bytes) }),
          el('td', { class: 'hash', text: u.sha256 || '' }), el('td', {}, link)));
      }
      $('uploads-empty').hidden = data.uploads.length > 0;
      $('count-uploads').textContent = String(data.uploads.length);
    } catch (error) { showError('error', error); }
  }
  const scheduleUploads = later(refreshUploads, 300);

  // --- tabs and the token -----------------------------------------------------------------
  function showTab() {
    const name = (location.hash || '#overview').slice(1);
    for (const tab of document.querySelectorAll('section.tab')) tab.hidden = tab.id !== 'tab-' + name;
    for (const link of document.querySelectorAll('nav a')) link.classList.toggle('current', link.getAttribute('href') === '#' + name);
  }

  let asked = false;
  function askToken() {
    if (asked) return;
    asked = true;
    $('token-box').hidden = false;
    setLive(false, 'token needed');
  }

  function useToken() {
    const value = $('token-input').value.trim();
    if (!value) return;
    const next = new URL(location.href);
    next.searchParams.set('token', value);
    location.replace(next.toString());
  }

  async function start() {
    window.addEventListener('hashchange', showTab);
    showTab();
    $('detail-close').addEventListener('click', function () { selected = null; $('detail').hidden = true; });
    $('token-use').addEventListener('click', useToken);
    for (const id of ['filter-service', 'filter-peer', 'filter-text', 'filter-lines', 'filter-own', 'filter-pause']) {
      $(id).addEventListener('input', drawFeed);
      $(id).addEventListener('change', drawFeed);
    }
    $('dns-filter').addEventListener('input', drawDNS);
    let since = null;
    try {
      // The oldest event the ring holds, and the newest: the feed starts up to 1000 back.
      const page = await getJSON('/api/v1/events', { limit: '1' });
      if (page.enabled === false) { setLive(false, 'events are off (events.enabled: false)'); }
      else {
        const oldest = page.events.length ? Number(page.events[0].id) - 1 : Number(page.last_id) || 0;
        since = Math.max(oldest, (Number(page.last_id) || 0) - 1000);
      }
    } catch (error) { showError('error', error); return; }
    if (since !== null) connect(since);
    refreshServices();
    refreshConnections();
    refreshMail();
    refreshUploads();
    setInterval(refreshServices, 2000);
    setInterval(refreshConnections, 5000);
  }

  document.addEventListener('DOMContentLoaded', start);
})();
