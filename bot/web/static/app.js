// c2bot console: renders the channel transcript and sends commands and clicks.
//
// Every piece of message text is put into the page with textContent, never
// parsed as HTML.
//
// Stable hooks for browser tests (data-testid unless noted):
//   title           the page heading "c2bot console — sandbox tenant"
//   user-switch     <select> of simulated users; option values are user ids
//                   (also ?user=<id> in the URL). Changing it reconnects.
//   command-input   the command box; send — the Send button (Enter works too)
//   suggestion      quick-command chips (data-command="/c2 diagnose", …)
//   connection      live-update indicator, data-state="connecting|live|reconnecting"
//   error           error bar, shown with the server's error sentence
//   acting-as       the name of the current user beside the input
//   transcript      the list of messages; empty — the empty-channel note
//   message         one message: data-id="m-3", data-kind="bot|user|action",
//                   data-version (grows on every update), data-thread (parent id
//                   or ""), data-ephemeral="true" for "only visible to you",
//                   data-author (user id or "c2bot"), data-text (the message as
//                   plain text; "applied"/"reverted" appear here when reported)
//   message-title, message-text, message-footer   parts of a bot message
//   section         one section, data-severity="blocker|warning|info|ok|"
//   severity        the severity badge of a section
//   fact            one row of a facts table (th = name, td = value)
//   button          a message button: data-label="Approve" (exact label),
//                   data-command="approve r-1", data-index, data-message (id)
//   thread          the container of a message's thread replies
//   in-thread       the "↳ in thread" marker on a reply
//   edited          "updated" marker on a message updated in place
//   failed          note on a person's command the bot could not take
'use strict';

(function () {
  const body = document.body;
  const transcript = document.getElementById('transcript');
  const emptyNote = document.getElementById('empty');
  const userSwitch = document.getElementById('user-switch');
  const input = document.getElementById('command-input');
  const sendButton = document.getElementById('send');
  const form = document.getElementById('composer');
  const errorBar = document.getElementById('error');
  const connection = document.querySelector('[data-testid="connection"]');
  const actingAs = document.getElementById('as');

  const api = '/console/api/';
  const entries = new Map(); // id -> entry as last rendered
  const elements = new Map(); // id -> <article>
  const cmdHistory = [];
  let historyPos = 0;
  let source = null;
  let user = pickUser();

  // ---- users -------------------------------------------------------------

  function userIDs() {
    return Array.from(userSwitch.options, (o) => o.value);
  }

  function pickUser() {
    const ids = userIDs();
    const fromURL = new URLSearchParams(location.search).get('user');
    if (fromURL && ids.includes(fromURL)) return fromURL;
    let stored = null;
    try { stored = localStorage.getItem('c2bot.console.user'); } catch (e) { /* private mode */ }
    if (stored && ids.includes(stored)) return stored;
    return body.dataset.defaultUser || ids[0];
  }

  function userLabel(id) {
    const opt = Array.from(userSwitch.options).find((o) => o.value === id);
    return opt ? opt.textContent : id;
  }

  function setUser(id) {
    user = id;
    userSwitch.value = id;
    actingAs.textContent = userLabel(id);
    actingAs.className = 'as ' + colorClass(id);
    try { localStorage.setItem('c2bot.console.user', id); } catch (e) { /* private mode */ }
    const url = new URL(location.href);
    url.searchParams.set('user', id);
    window.history.replaceState(null, '', url);
    hideError();
    connect();
  }

  userSwitch.addEventListener('change', () => setUser(userSwitch.value));

  // ---- live updates --------------------------------------------------------

  function setConnection(state, label) {
    connection.dataset.state = state;
    connection.textContent = label;
  }

  function connect() {
    if (source) source.close();
    setConnection('connecting', 'connecting…');
    const es = new EventSource(api + 'events?user=' + encodeURIComponent(user));
    source = es;
    es.addEventListener('open', () => { if (source === es) setConnection('live', 'live'); });
    es.addEventListener('error', () => { if (source === es) setConnection('reconnecting', 'reconnecting…'); });
    es.addEventListener('snapshot', (ev) => {
      if (source !== es) return;
      setConnection('live', 'live');
      const snap = JSON.parse(ev.data);
      renderAll(snap.messages || []);
    });
    es.addEventListener('message', (ev) => {
      if (source !== es) return;
      upsert(JSON.parse(ev.data));
    });
  }

  // ---- rendering -----------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null && text !== '') node.textContent = text;
    return node;
  }

  function colorClass(id) {
    if (id === 'c2bot') return 'c-bot';
    let h = 0;
    for (const ch of id) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return 'c-' + (h % 6);
  }

  function initials(name) {
    const parts = String(name).trim().split(/\s+/).filter(Boolean);
    if (parts.length === 0) return '?';
    const first = parts[0][0] || '';
    const second = parts.length > 1 ? parts[parts.length - 1][0] : '';
    return (first + second).toUpperCase();
  }

  function formatTime(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function nearBottom() {
    return transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
  }

  function scrollToBottom() {
    transcript.scrollTop = transcript.scrollHeight;
  }

  function renderAll(list) {
    for (const node of elements.values()) node.remove();
    entries.clear();
    elements.clear();
    for (const e of list) place(e);
    updateEmpty();
    scrollToBottom();
  }

  function upsert(e) {
    const old = entries.get(e.id);
    if (old && old.version >= e.version) return;
    const stick = nearBottom();
    place(e);
    updateEmpty();
    if (!old && (stick || e.author.id === user)) scrollToBottom();
  }

  // place renders e and puts it where it belongs: in place of its previous
  // version, under its thread parent, or at the end of the transcript.
  function place(e) {
    const node = renderEntry(e);
    const old = elements.get(e.id);
    if (old) {
      // keep the thread replies rendered under the old version
      const oldReplies = old.querySelector(':scope > .body > .replies');
      const newReplies = node.querySelector(':scope > .body > .replies');
      if (oldReplies && newReplies) {
        while (oldReplies.firstChild) newReplies.appendChild(oldReplies.firstChild);
        newReplies.hidden = !newReplies.firstChild;
      }
      old.replaceWith(node);
    } else {
      const parent = e.thread ? elements.get(e.thread) : null;
      const replies = parent ? parent.querySelector(':scope > .body > .replies') : null;
      if (replies) {
        replies.appendChild(node);
        replies.hidden = false;
      } else {
        transcript.appendChild(node);
      }
    }
    entries.set(e.id, e);
    elements.set(e.id, node);
  }

  function updateEmpty() {
    emptyNote.hidden = elements.size > 0;
  }

  function renderEntry(e) {
    const m = e.message || {};
    const art = el('article', 'msg msg-' + e.kind);
    art.setAttribute('data-testid', 'message');
    art.dataset.id = e.id;
    art.dataset.kind = e.kind;
    art.dataset.version = String(e.version);
    art.dataset.thread = e.thread || '';
    art.dataset.author = e.author.id;
    art.dataset.text = e.plain || '';
    if (e.to) {
      art.dataset.ephemeral = 'true';
      art.classList.add('ephemeral');
    }
    if (e.thread) art.classList.add('reply');

    if (e.kind === 'action') {
      art.appendChild(el('div', 'action-dot ' + colorClass(e.author.id)));
      const line = el('div', 'action-line');
      line.appendChild(el('span', 'author', e.author.name || e.author.id));
      line.appendChild(document.createTextNode(' ' + (m.text || '')));
      line.appendChild(el('time', 'time', formatTime(e.time)));
      if (e.thread) line.appendChild(threadMarker());
      art.appendChild(line);
      appendFailed(art, e);
      return art;
    }

    const avatar = el('div', 'avatar ' + colorClass(e.author.id), e.kind === 'bot' ? 'c2' : initials(e.author.name || e.author.id));
    avatar.setAttribute('aria-hidden', 'true');
    art.appendChild(avatar);

    const main = el('div', 'body');
    const meta = el('div', 'meta');
    meta.appendChild(el('span', 'author', e.author.name || e.author.id));
    if (e.kind === 'bot') meta.appendChild(el('span', 'app-badge', 'APP'));
    const time = el('time', 'time', formatTime(e.time));
    time.dateTime = e.time;
    meta.appendChild(time);
    if (e.thread) meta.appendChild(threadMarker());
    if (e.version > 1 && e.kind === 'bot') {
      const edited = el('span', 'edited', 'updated');
      edited.setAttribute('data-testid', 'edited');
      if (e.updated) edited.title = 'Updated ' + new Date(e.updated).toLocaleString();
      meta.appendChild(edited);
    }
    if (e.to) meta.appendChild(el('span', 'only-you', 'Only visible to you'));
    main.appendChild(meta);

    if (e.kind === 'user') {
      main.appendChild(el('div', 'typed', m.text || ''));
      appendFailed(main, e);
    } else {
      main.appendChild(renderCard(e, m));
    }

    const replies = el('div', 'replies');
    replies.setAttribute('data-testid', 'thread');
    replies.hidden = true;
    main.appendChild(replies);
    art.appendChild(main);
    return art;
  }

  function threadMarker() {
    const t = el('span', 'in-thread', '↳ in thread');
    t.setAttribute('data-testid', 'in-thread');
    return t;
  }

  function appendFailed(parent, e) {
    if (!e.failed) return;
    const f = el('div', 'failed', e.failed);
    f.setAttribute('data-testid', 'failed');
    parent.appendChild(f);
  }

  function renderCard(e, m) {
    const card = el('div', 'card');
    const worst = (m.sections || []).reduce((acc, s) => Math.max(acc, rank(s.severity)), 0);
    if (worst > 0) card.classList.add('card-' + ['', 'ok', 'info', 'warning', 'blocker'][worst]);
    if (m.title) {
      const t = el('div', 'title', m.title);
      t.setAttribute('data-testid', 'message-title');
      card.appendChild(t);
    }
    if (m.text) {
      const t = el('div', 'text', m.text);
      t.setAttribute('data-testid', 'message-text');
      card.appendChild(t);
    }
    for (const s of m.sections || []) card.appendChild(renderSection(s));
    if (m.buttons && m.buttons.length) {
      const row = el('div', 'actions');
      m.buttons.forEach((b, i) => row.appendChild(renderButton(e, b, i)));
      card.appendChild(row);
    }
    if (m.footer) {
      const f = el('div', 'footer', m.footer);
      f.setAttribute('data-testid', 'message-footer');
      card.appendChild(f);
    }
    return card;
  }

  function rank(sev) {
    return { ok: 1, info: 2, warning: 3, blocker: 4 }[sev] || 0;
  }

  function renderSection(s) {
    const sec = el('section', 'section sev-' + (s.severity || 'none'));
    sec.setAttribute('data-testid', 'section');
    sec.dataset.severity = s.severity || '';
    if (s.title || s.severity) {
      const head = el('div', 'section-head');
      if (s.severity) {
        const badge = el('span', 'sev sev-' + s.severity, s.severity);
        badge.setAttribute('data-testid', 'severity');
        head.appendChild(badge);
      }
      if (s.title) head.appendChild(el('span', 'section-title', s.title));
      sec.appendChild(head);
    }
    if (s.text) sec.appendChild(el('div', 'section-text', s.text));
    if (s.facts && s.facts.length) {
      const table = el('table', 'facts');
      const tbody = el('tbody');
      for (const f of s.facts) {
        const tr = el('tr');
        tr.setAttribute('data-testid', 'fact');
        tr.appendChild(el('th', '', f.name));
        tr.appendChild(el('td', '', f.value));
        tbody.appendChild(tr);
      }
      table.appendChild(tbody);
      sec.appendChild(table);
    }
    return sec;
  }

  function renderButton(e, b, i) {
    const btn = el('button', 'btn btn-' + (b.style || 'default'), b.label);
    btn.type = 'button';
    btn.setAttribute('data-testid', 'button');
    btn.dataset.label = b.label;
    btn.dataset.command = b.command;
    btn.dataset.index = String(i);
    btn.dataset.message = e.id;
    btn.title = b.command;
    btn.addEventListener('click', () => click(btn, e.id, i));
    return btn;
  }

  // ---- sending -------------------------------------------------------------

  function showError(text) {
    errorBar.textContent = text;
    errorBar.hidden = false;
  }

  function hideError() {
    errorBar.hidden = true;
    errorBar.textContent = '';
  }

  async function post(path, payload) {
    let res;
    try {
      res = await fetch(api + path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(payload),
      });
    } catch (err) {
      showError('Cannot reach c2bot: ' + err.message);
      return false;
    }
    if (res.ok) {
      hideError();
      return true;
    }
    let text = res.status + ' ' + res.statusText;
    try {
      const b = await res.json();
      if (b && b.error) text = b.error;
    } catch (err) { /* not JSON */ }
    showError(text);
    return false;
  }

  async function send() {
    const text = input.value.trim();
    if (!text) {
      input.focus();
      return;
    }
    sendButton.disabled = true;
    const ok = await post('command', { user: user, text: text });
    sendButton.disabled = false;
    if (ok) {
      if (cmdHistory[cmdHistory.length - 1] !== text) cmdHistory.push(text);
      historyPos = cmdHistory.length;
      input.value = '';
    }
    input.focus();
  }

  async function click(btn, messageID, index) {
    btn.classList.add('busy');
    await post('click', { user: user, message: messageID, button: index });
    btn.classList.remove('busy');
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send();
  });

  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowUp' && historyPos > 0) {
      historyPos--;
      input.value = cmdHistory[historyPos];
      ev.preventDefault();
    } else if (ev.key === 'ArrowDown' && historyPos < cmdHistory.length) {
      historyPos++;
      input.value = historyPos < cmdHistory.length ? cmdHistory[historyPos] : '';
      ev.preventDefault();
    } else if (ev.key === 'Escape') {
      hideError();
    }
  });

  for (const chip of document.querySelectorAll('[data-testid="suggestion"]')) {
    chip.addEventListener('click', () => {
      input.value = chip.dataset.command;
      input.focus();
    });
  }

  setUser(user);
  input.focus();
})();
