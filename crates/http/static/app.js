// colloquy's web chat page. Plain JavaScript, no build step, no dependency.
//
// One EventSource per page, on the selected session's events: replies are
// rendered from message.created / message.delta / message.completed /
// message.failed / message.reset / message.tool_call / session.updated; a
// stream.resync (events the server no longer keeps) reloads the history.
// Messages are sent with a plain fetch that gets the 202. A server with
// authentication on gets the API key the page asks for when it answers 401
// (kept for the tab); the event stream opens with a stream token. Every
// piece of text from the server (model output included) goes into the DOM as
// text nodes: this file never parses HTML.
'use strict';

(() => {
  const API = '/api/v1';
  const SESSIONS_PAGE = 50;
  const HISTORY_PAGE = 1000;
  const EVENT_NAMES = [
    'message.created',
    'message.delta',
    'message.completed',
    'message.failed',
    'message.reset',
    'message.tool_call',
    'session.updated',
    'stream.resync',
  ];
  // Waits before reopening an event stream that dropped: the first, and the
  // longest after failures in a row.
  const RECONNECT_FIRST = 1000;
  const RECONNECT_LAST = 15000;
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  const $ = (id) => document.getElementById(id);
  const els = {
    layout: $('layout'),
    sidebar: $('sidebar'),
    scrim: $('scrim'),
    toggleSidebar: $('toggle-sidebar'),
    newSession: $('new-session'),
    sessionList: $('session-list'),
    sessionsEmpty: $('sessions-empty'),
    moreSessions: $('more-sessions'),
    title: $('chat-title'),
    model: $('chat-model'),
    connection: $('connection'),
    banner: $('banner'),
    bannerText: $('banner-text'),
    bannerClose: $('banner-close'),
    messages: $('messages'),
    welcome: $('welcome'),
    messageList: $('message-list'),
    form: $('composer-form'),
    composer: $('composer'),
    send: $('send'),
    stop: $('stop'),
    keyGate: $('key-gate'),
    keyForm: $('key-form'),
    keyTitle: $('key-title'),
    apiKey: $('api-key'),
    keyProblem: $('key-problem'),
    keySave: $('key-save'),
    keyStatus: $('key-status'),
    forgetKey: $('forget-key'),
  };

  const state = {
    sessions: [], // newest first, as the API lists them
    hasMoreSessions: false,
    current: null, // the selected session's id
    messages: new Map(), // id -> Message, of the selected session
    views: new Map(), // id -> its <article>
    source: null, // the one EventSource
    lastEventId: '',
    ready: false, // the history is on screen; events before that wait in `queue`
    queue: [],
    opened: null, // a promise that settles when the event stream is open
    streamAttempt: 0, // bumps with each connection, so a late stream token is dropped
    reconnectTimer: 0,
    reconnectDelay: RECONNECT_FIRST,
    selecting: 0, // bumps with each selection, so stale answers are dropped
    sending: false,
    editing: null, // the session being renamed
    confirming: null, // the session whose deletion awaits confirmation
  };

  // ---------------------------------------------------------------- the API

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  // One request with `key` as its bearer credential ('' for none).
  async function request(method, path, body, key) {
    const init = { method, headers: { Accept: 'application/json' } };
    if (key) init.headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, 'the colloquy server cannot be reached; check that it is running');
    }
    const text = response.status === 204 ? '' : await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const detail = (data && (data.detail || data.title)) || `the server answered ${response.status} ${response.statusText}`;
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  // A request with the key this tab keeps. A 401 asks for a key (see `keyAccepted`)
  // and then sends the very same request again, so whatever was under way when
  // the server asked (loading the chats, sending a message) carries on.
  async function api(method, path, body) {
    for (;;) {
      const sent = apiKey.kept;
      try {
        return await request(method, path, body, sent);
      } catch (error) {
        if (error.status !== 401) throw error;
        await keyAccepted(sent, error.message);
      }
    }
  }

  // ------------------------------------------------------------ the API key

  // A server with authentication on answers 401 until the page sends
  // `Authorization: Bearer <key>`. The key is asked for in #api-key, checked
  // against the server before it is kept, then kept in sessionStorage: this
  // tab keeps it across reloads, other tabs never see it, and closing the tab
  // forgets it. A server that authenticates nobody never answers 401, so the
  // page never asks there.
  const KEY_STORAGE = 'colloquy.api-key';

  const apiKey = {
    kept: readKey(),
    asking: null, // a promise that settles when a key is accepted
    accepted: null, // settles `asking`
  };

  function readKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || '';
    } catch {
      return ''; // Storage switched off: the key lives as long as the page.
    }
  }

  function keepKey(key) {
    apiKey.kept = key;
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // Storage switched off: the key lives as long as the page.
    }
    els.keyStatus.hidden = !key;
  }

  // Settles once a key the server accepts is kept. `refused` is the key the
  // refused request carried ('' for none); `detail` is what the server said.
  function keyAccepted(refused, detail) {
    // A key accepted while that request was under way: retry with it.
    if (apiKey.kept && apiKey.kept !== refused) return Promise.resolve();
    if (!apiKey.asking) {
      // A refused key is no use to a later reload either.
      if (refused) keepKey('');
      apiKey.asking = new Promise((resolve) => {
        apiKey.accepted = resolve;
      });
      askForKey(refused ? detail : '');
    }
    return apiKey.asking;
  }

  function askForKey(refusedDetail) {
    els.keyTitle.textContent = refusedDetail ? 'Your API key was refused' : 'This server asks for an API key';
    showKeyProblem(refusedDetail ? 'The server refused the key' : '', refusedDetail);
    els.apiKey.value = '';
    els.apiKey.disabled = false;
    els.keySave.disabled = false;
    els.keySave.textContent = 'Use this key';
    // The chat behind is out of reach until a key is accepted: nothing there
    // works without one.
    els.layout.inert = true;
    els.keyGate.hidden = false;
    els.apiKey.focus();
  }

  function showKeyProblem(what, detail) {
    els.keyProblem.replaceChildren();
    if (!what) {
      els.keyProblem.hidden = true;
      return;
    }
    els.keyProblem.append(el('strong', null, sentence(what)));
    if (detail) els.keyProblem.append(' ', el('span', null, sentence(detail)));
    els.keyProblem.hidden = false;
  }

  // A bearer credential is visible ASCII without spaces; anything else could
  // not even be put in a header.
  const PLAUSIBLE_KEY = /^[\x21-\x7e]+$/;

  async function tryKey() {
    const key = els.apiKey.value.trim();
    if (!key) {
      showKeyProblem('Paste a key first');
      return;
    }
    if (!PLAUSIBLE_KEY.test(key)) {
      showKeyProblem('That is not a key', 'a key has no spaces and only plain letters, digits and punctuation; check what was pasted');
      return;
    }
    els.apiKey.disabled = true;
    els.keySave.disabled = true;
    els.keySave.textContent = 'Checking…';
    let problem = null;
    try {
      await request('GET', `${API}/me`, undefined, key);
    } catch (error) {
      problem = error;
    }
    els.apiKey.disabled = false;
    els.keySave.disabled = false;
    els.keySave.textContent = 'Use this key';
    if (problem) {
      showKeyProblem(problem.status === 401 ? 'The server refused that key' : 'The key could not be checked', problem.message);
      els.apiKey.focus();
      els.apiKey.select();
      return;
    }
    keepKey(key);
    els.apiKey.value = '';
    els.keyGate.hidden = true;
    els.layout.inert = false;
    const accepted = apiKey.accepted;
    apiKey.asking = null;
    apiKey.accepted = null;
    if (accepted) accepted();
    els.composer.focus();
  }

  // Forgetting the key also forgets everything it showed: the page starts
  // over, and the server asks for a key again.
  function forgetKey() {
    keepKey('');
    location.replace(location.pathname);
  }

  const sessionPath = (id) => `${API}/sessions/${encodeURIComponent(id)}`;

  // ------------------------------------------------------------- small bits

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const ICONS = {
    pencil: 'M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4',
    trash: 'M5 7h14M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
    copy: 'M9 9h11v11H9zM5 15H4V4h11v1',
  };

  function icon(name) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('class', 'icon');
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', ICONS[name]);
    svg.append(path);
    return svg;
  }

  // Problem details come with `field` names in backticks: say them plainly.
  function sentence(text) {
    const plain = String(text).replace(/`/g, '').trim();
    if (!plain) return '';
    const capital = plain[0].toUpperCase() + plain.slice(1);
    return /[.!?]$/.test(capital) ? capital : `${capital}.`;
  }

  let bannerTimer = 0;
  function showError(what, error) {
    const detail = error ? sentence(error.message || String(error)) : '';
    els.bannerText.textContent = detail ? `${what}: ${detail}` : sentence(what);
    els.banner.hidden = false;
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(hideBanner, 12000);
  }

  function hideBanner() {
    clearTimeout(bannerTimer);
    els.banner.hidden = true;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return '';
    const now = new Date();
    const sameDay = date.toDateString() === now.toDateString();
    return sameDay
      ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : date.toLocaleDateString([], { month: 'short', day: 'numeric' });
  }

  const titleOf = (session) => (session && session.title) || 'New chat';

  // ---------------------------------------------------------- the sessions

  function findSession(id) {
    return state.sessions.find((session) => session.id === id);
  }

  function putSession(session) {
    const index = state.sessions.findIndex((known) => known.id === session.id);
    if (index >= 0) {
      state.sessions[index] = session;
    } else {
      state.sessions.push(session);
      // Ids are UUID v7: newest first is the reverse of their order.
      state.sessions.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    }
    renderSessions();
    if (session.id === state.current) renderTitle();
  }

  async function loadSessions() {
    const page = await api('GET', `${API}/sessions?limit=${SESSIONS_PAGE}`);
    const older = state.sessions.slice(page.data.length).filter((s) => !page.data.some((p) => p.id === s.id));
    state.sessions = page.data.concat(state.hasMoreSessions ? older : []);
    if (!state.hasMoreSessions || older.length === 0) state.hasMoreSessions = page.has_more;
    renderSessions();
    renderTitle();
  }

  async function loadMoreSessions() {
    const last = state.sessions[state.sessions.length - 1];
    if (!last) return;
    try {
      const page = await api('GET', `${API}/sessions?limit=${SESSIONS_PAGE}&after=${encodeURIComponent(last.id)}`);
      for (const session of page.data) {
        if (!findSession(session.id)) state.sessions.push(session);
      }
      state.hasMoreSessions = page.has_more;
      renderSessions();
    } catch (error) {
      showError('Older chats could not be loaded', error);
    }
  }

  const sessionItems = new Map(); // id -> <li>

  function renderSessions() {
    const seen = new Set();
    for (const session of state.sessions) {
      seen.add(session.id);
      let item = sessionItems.get(session.id);
      if (!item) {
        item = el('li', 'session');
        item.dataset.sessionId = session.id;
        sessionItems.set(session.id, item);
      }
      fillSessionItem(item, session);
      els.sessionList.append(item); // moves it into order
    }
    for (const [id, item] of sessionItems) {
      if (!seen.has(id)) {
        item.remove();
        sessionItems.delete(id);
      }
    }
    els.sessionsEmpty.hidden = state.sessions.length > 0;
    els.moreSessions.hidden = !state.hasMoreSessions;
  }

  function fillSessionItem(item, session) {
    const selected = session.id === state.current;
    item.classList.toggle('selected', selected);
    if (selected) item.setAttribute('aria-current', 'true');
    else item.removeAttribute('aria-current');

    const mode = state.editing === session.id ? 'editing' : state.confirming === session.id ? 'confirming' : 'normal';
    // Leave a rename in progress alone: its input holds what is being typed.
    if (mode === 'editing' && item.dataset.mode === 'editing') return;
    item.dataset.mode = mode;
    item.replaceChildren();

    if (mode === 'editing') {
      const input = el('input', 'rename-input');
      input.type = 'text';
      input.value = session.title || '';
      input.maxLength = 200;
      input.placeholder = 'New chat';
      input.setAttribute('aria-label', 'Chat name');
      item.append(input);
      requestAnimationFrame(() => {
        input.focus();
        input.select();
      });
      return;
    }

    if (mode === 'confirming') {
      const question = el('span', 'confirm-text', `Delete “${titleOf(session)}”?`);
      const yes = el('button', 'button danger small', 'Delete');
      yes.type = 'button';
      yes.dataset.action = 'confirm-delete';
      const no = el('button', 'button subtle small', 'Cancel');
      no.type = 'button';
      no.dataset.action = 'cancel-delete';
      item.append(question, yes, no);
      requestAnimationFrame(() => no.focus());
      return;
    }

    const open = el('button', 'session-open');
    open.type = 'button';
    open.dataset.action = 'select';
    const count = session.message_count === 1 ? '1 message' : `${session.message_count} messages`;
    open.append(el('span', 'session-title', titleOf(session)), el('span', 'session-meta', `${count} · ${formatTime(session.updated_at)}`));
    const actions = el('span', 'session-actions');
    const rename = el('button', 'icon-button');
    rename.type = 'button';
    rename.dataset.action = 'rename';
    rename.title = 'Rename';
    rename.setAttribute('aria-label', `Rename “${titleOf(session)}”`);
    rename.append(icon('pencil'));
    const remove = el('button', 'icon-button');
    remove.type = 'button';
    remove.dataset.action = 'delete';
    remove.title = 'Delete';
    remove.setAttribute('aria-label', `Delete “${titleOf(session)}”`);
    remove.append(icon('trash'));
    actions.append(rename, remove);
    item.append(open, actions);
  }

  function renderTitle() {
    const session = findSession(state.current);
    const title = state.current ? titleOf(session) : 'colloquy';
    els.title.textContent = title;
    els.model.textContent = session ? session.model : '';
    els.model.title = session ? `New messages use the model ${session.model}` : '';
    document.title = state.current ? `${title} · colloquy` : 'colloquy';
  }

  async function createSession() {
    const session = await api('POST', `${API}/sessions`, {});
    putSession(session);
    await select(session.id);
    return session;
  }

  async function renameSession(id, raw) {
    const session = findSession(id);
    const title = raw.trim();
    state.editing = null;
    if (!session || title === (session.title || '')) {
      renderSessions();
      return;
    }
    try {
      putSession(await api('PATCH', sessionPath(id), { title: title || null }));
    } catch (error) {
      renderSessions();
      showError('The chat was not renamed', error);
    }
  }

  async function deleteSession(id) {
    state.confirming = null;
    const wasCurrent = id === state.current;
    const index = state.sessions.findIndex((session) => session.id === id);
    try {
      if (wasCurrent) closeEvents();
      await api('DELETE', sessionPath(id));
    } catch (error) {
      if (error.status !== 404) {
        showError('The chat was not deleted', error);
        if (wasCurrent) select(id);
        else renderSessions();
        return;
      }
    }
    forgetSession(id, index, wasCurrent);
  }

  // A session that is gone (deleted here or elsewhere) leaves the list; if it
  // was on screen, its neighbour takes its place.
  function forgetSession(id, index, wasCurrent) {
    state.sessions = state.sessions.filter((session) => session.id !== id);
    renderSessions();
    if (!wasCurrent) return;
    const next = state.sessions[Math.min(Math.max(index, 0), state.sessions.length - 1)];
    if (next) {
      select(next.id);
    } else {
      showNoSession();
    }
  }

  // ---------------------------------------------------------- the messages

  function showNoSession() {
    closeEvents();
    state.current = null;
    state.messages.clear();
    state.views.clear();
    els.messageList.replaceChildren();
    history.replaceState(null, '', location.pathname);
    renderSessions();
    renderTitle();
    updateComposer();
  }

  async function select(id) {
    const ticket = ++state.selecting;
    closeEvents();
    state.current = id;
    state.messages.clear();
    state.views.clear();
    els.messageList.replaceChildren();
    state.editing = null;
    state.confirming = null;
    if (location.hash !== `#${id}`) history.replaceState(null, '', `#${id}`);
    els.layout.dataset.sidebar = 'closed';
    els.scrim.hidden = true;
    renderSessions();
    renderTitle();
    updateComposer();

    // Listen first, then read the history: events that arrive meanwhile wait
    // in the queue and are applied on top of it, so nothing falls in between.
    connectEvents(id, false);
    let messages;
    try {
      messages = await loadHistory(id);
    } catch (error) {
      if (ticket !== state.selecting) return;
      if (error.status === 404) {
        showError('That chat no longer exists');
        forgetSession(id, state.sessions.findIndex((s) => s.id === id), true);
      } else {
        showError('The chat could not be loaded', error);
      }
      return;
    }
    if (ticket !== state.selecting) return;
    for (const message of messages) putMessage(message);
    state.ready = true;
    for (const [name, data] of state.queue.splice(0)) apply(name, data);
    scrollToEnd(true);
    updateComposer();
  }

  async function loadHistory(id) {
    let all = [];
    let after = '';
    for (;;) {
      const query = `limit=${HISTORY_PAGE}${after ? `&after=${encodeURIComponent(after)}` : ''}`;
      const page = await api('GET', `${sessionPath(id)}/messages?${query}`);
      all = all.concat(page.data);
      if (!page.has_more || page.data.length === 0) return all;
      after = page.data[page.data.length - 1].id;
    }
  }

  // After a reconnection the server may have restarted (a reply it was
  // writing is now `interrupted`): the stored history settles what the
  // events could not tell.
  async function resync() {
    const id = state.current;
    if (!id || !state.ready) return;
    let messages;
    try {
      messages = await loadHistory(id);
    } catch {
      return;
    }
    if (id !== state.current) return;
    for (const stored of messages) {
      const shown = state.messages.get(stored.id);
      // A reply this page saw streaming but the store has settled (the server
      // stopped meanwhile, say) takes the stored state; the rest is as shown.
      if (!shown || (shown.status === 'streaming' && stored.status !== 'streaming')) putMessage(stored);
    }
    updateComposer();
  }

  // The server no longer keeps events this page missed: the stored history
  // replaces what is shown, and the events that follow (held back meanwhile)
  // carry on from there.
  async function reloadAfterResync(id) {
    if (!state.ready || id !== state.current) return; // a load is under way anyway
    state.ready = false;
    let messages = [];
    try {
      messages = await loadHistory(id);
    } catch {
      // Keep what is shown; the next resync or reconnection tries again.
    }
    if (id !== state.current) return;
    for (const stored of messages) putMessage(stored);
    state.ready = true;
    for (const [name, data] of state.queue.splice(0)) apply(name, data);
    scrollToEnd(false);
    updateComposer();
  }

  function isStreaming() {
    for (const message of state.messages.values()) {
      if (message.role === 'assistant' && message.status === 'streaming') return true;
    }
    return false;
  }

  function nearEnd() {
    const box = els.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  }

  function scrollToEnd(force) {
    if (force || state.stickToEnd) els.messages.scrollTop = els.messages.scrollHeight;
  }

  // Stores `message` and draws it, replacing what was known of it.
  function putMessage(message) {
    const isNew = !state.messages.has(message.id);
    state.messages.set(message.id, message);
    let view = state.views.get(message.id);
    if (!view) {
      view = el('article', 'message');
      state.views.set(message.id, view);
      // UUID v7 ids sort by creation time: keep the list in that order.
      let before = null;
      for (const [otherId, other] of state.views) {
        if (otherId > message.id && (!before || otherId < before.dataset.messageId)) before = other;
      }
      els.messageList.insertBefore(view, before);
    }
    drawMessage(view, message);
    els.welcome.hidden = state.messages.size > 0;
    return isNew;
  }

  const STATUS_WORDS = {
    streaming: 'writing…',
    cancelled: 'stopped',
    failed: 'failed',
    interrupted: 'interrupted',
  };

  const ERROR_WORDS = {
    upstream_rate_limited: 'The model provider is limiting requests right now. Try again in a moment.',
    upstream_unavailable: 'The model server could not be reached or had a problem.',
    upstream_timeout: 'The model took too long to answer.',
    upstream_protocol_error: 'The model server sent a reply that could not be understood.',
    upstream_rejected: 'The model provider refused the request (check the API key, the model name and the message).',
    internal: 'Something went wrong on the server.',
  };

  function drawMessage(view, message) {
    view.dataset.role = message.role;
    view.dataset.status = message.status;
    view.dataset.messageId = message.id;
    // Assistive technology waits for a reply to finish before reading it.
    view.setAttribute('aria-busy', String(message.status === 'streaming'));

    const head = el('div', 'message-head');
    head.append(el('span', 'author', message.role === 'user' ? 'You' : 'colloquy'));
    const badge = message.retrying ? 'retrying…' : STATUS_WORDS[message.status];
    if (badge) {
      const tag = el('span', 'badge', badge);
      tag.dataset.badge = message.retrying ? 'retrying' : message.status;
      head.append(tag);
    }
    const time = el('time', 'time', formatTime(message.created_at));
    time.dateTime = message.created_at || '';
    head.append(time);

    const body = el('div', 'message-body');
    renderText(body, message.content || '');
    if (message.status === 'streaming') {
      if (!message.content) body.append(typingDots());
      else body.classList.add('streaming');
    }

    const parts = [head];
    if (message.tool_calls && message.tool_calls.length) parts.push(toolCalls(message.tool_calls));
    parts.push(body);

    if (message.status === 'failed' || message.status === 'interrupted') {
      const problem = el('div', 'message-error');
      const code = message.error && message.error.code;
      const words =
        message.status === 'interrupted'
          ? 'The server stopped while this reply was being written; the text so far is kept.'
          : ERROR_WORDS[code] || 'The reply could not be completed.';
      problem.append(el('strong', null, words));
      if (message.error && message.error.message) problem.append(el('span', 'error-detail', sentence(message.error.message)));
      parts.push(problem);
    } else if (message.status === 'cancelled') {
      parts.push(el('div', 'message-note', 'Stopped. The text so far is kept.'));
    }
    view.replaceChildren(...parts);
  }

  function typingDots() {
    const dots = el('span', 'typing');
    dots.setAttribute('aria-label', 'writing');
    dots.append(el('span'), el('span'), el('span'));
    return dots;
  }

  function toolCalls(calls) {
    const box = el('div', 'tool-calls');
    for (const call of calls) {
      const details = el('details', 'tool-call');
      const failed = Boolean(call.error);
      details.append(el('summary', null, `${failed ? 'Tool failed' : 'Used tool'}: ${call.name}`));
      const lines = [`arguments: ${JSON.stringify(call.arguments, null, 2)}`];
      if (call.result !== null && call.result !== undefined) lines.push(`result: ${JSON.stringify(call.result, null, 2)}`);
      if (failed) lines.push(`error: ${call.error}`);
      details.append(el('pre', null, lines.join('\n')));
      box.append(details);
    }
    return box;
  }

  // Readable text with ``` fenced code blocks kept exactly as written.
  // Everything becomes text nodes: the model's output is never parsed as HTML.
  function renderText(container, text) {
    const lines = text.split('\n');
    let paragraph = [];
    let code = null;
    const flush = () => {
      if (paragraph.length === 0) return;
      const p = el('p');
      inline(p, paragraph.join('\n'));
      container.append(p);
      paragraph = [];
    };
    for (const line of lines) {
      if (code) {
        const closing = line.match(/^\s*(`{3,}|~{3,})\s*$/);
        if (closing && closing[1][0] === code.fence[0] && closing[1].length >= code.fence.length) {
          container.append(codeBlock(code.language, code.lines.join('\n')));
          code = null;
        } else {
          code.lines.push(line);
        }
        continue;
      }
      const opening = line.match(/^\s{0,3}(`{3,}|~{3,})\s*([^`\s]*)/);
      if (opening) {
        flush();
        code = { fence: opening[1], language: opening[2], lines: [] };
      } else if (line.trim() === '') {
        flush();
      } else {
        paragraph.push(line);
      }
    }
    flush();
    // A block still being written (or never closed) shows as code all the same.
    if (code) container.append(codeBlock(code.language, code.lines.join('\n')));
  }

  // `code` spans and **bold**, the rest as it is (line breaks kept by CSS).
  function inline(parent, text) {
    const pattern = /`([^`\n]+)`|\*\*([^*\n]+)\*\*/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
      parent.append(match[1] !== undefined ? el('code', null, match[1]) : el('strong', null, match[2]));
      last = match.index + match[0].length;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
  }

  function codeBlock(language, source) {
    const block = el('div', 'code-block');
    const head = el('div', 'code-head');
    head.append(el('span', 'code-language', language || 'code'));
    const copy = el('button', 'copy', 'Copy');
    copy.type = 'button';
    copy.dataset.action = 'copy';
    copy.prepend(icon('copy'));
    head.append(copy);
    const pre = el('pre');
    pre.append(el('code', null, source));
    block.append(head, pre);
    return block;
  }

  // ------------------------------------------------------------- the events

  function setConnection(connection) {
    els.connection.dataset.state = connection;
    els.connection.textContent = { live: 'live', reconnecting: 'reconnecting…', offline: 'offline', idle: '' }[connection];
    els.connection.title = {
      live: 'Receiving this chat’s events',
      reconnecting: 'The connection dropped; reconnecting',
      offline: 'Not connected; retrying',
      idle: '',
    }[connection];
  }

  // The page opens every event stream itself, and reopens it itself. An
  // EventSource cannot send `Authorization`, so each connection first asks
  // for a stream token with the page's credentials and opens
  // `…/events?token=…&last_event_id=…`. A server that authenticates nobody
  // hands out tokens as well and ignores them, so the page does the same
  // everywhere. When a stream errors, the page closes it rather than let the
  // browser reconnect: the browser would reuse the old URL, whose token has
  // expired after COLLOQUY_STREAM_TOKEN_SECS (the server then refuses it and
  // the browser gives up) or means nothing to a restarted server.
  function closeEvents() {
    clearTimeout(state.reconnectTimer);
    state.streamAttempt += 1; // a connection still getting its token is dropped
    if (state.source) state.source.close();
    state.source = null;
    state.ready = false;
    state.queue = [];
    state.lastEventId = '';
    setConnection('idle');
  }

  // Opens `id`'s event stream from the last event seen (none for a session
  // just selected). `resumed`: this replaces a stream that dropped, so the
  // stored history may know what the events could not tell.
  async function connectEvents(id, resumed) {
    clearTimeout(state.reconnectTimer);
    const attempt = ++state.streamAttempt;
    let settle;
    state.opened = new Promise((resolve) => {
      settle = resolve;
      setTimeout(resolve, 5000);
    });
    let token;
    try {
      ({ token } = await api('POST', `${sessionPath(id)}/stream-token`));
    } catch (error) {
      if (attempt !== state.streamAttempt) return;
      settle();
      // A chat just selected reports its own 404 when its history fails to
      // load; one that was on screen is gone now.
      if (error.status === 404 && (resumed || state.ready)) {
        showError('This chat was deleted');
        forgetSession(id, state.sessions.findIndex((s) => s.id === id), true);
      } else if (error.status !== 404) {
        setConnection('offline');
        reconnectLater(id);
      }
      return;
    }
    if (attempt !== state.streamAttempt) return;

    const query = new URLSearchParams({ token });
    if (state.lastEventId) query.set('last_event_id', state.lastEventId);
    const source = new EventSource(`${sessionPath(id)}/events?${query}`);
    state.source = source;
    let open = false;
    source.addEventListener('open', () => {
      if (state.source !== source) return;
      open = true;
      setConnection('live');
      state.reconnectDelay = RECONNECT_FIRST;
      settle();
      if (resumed) resync();
    });
    source.addEventListener('error', () => {
      if (state.source !== source) return;
      source.close();
      state.source = null;
      settle();
      // Dropped after it was live, or refused outright (a restarting server,
      // a token it no longer knows, a chat that is gone).
      setConnection(open ? 'reconnecting' : 'offline');
      reconnectLater(id);
    });
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (event) => {
        if (state.source !== source) return;
        if (event.lastEventId) state.lastEventId = event.lastEventId;
        if (name === 'stream.resync') {
          reloadAfterResync(id);
          return;
        }
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        if (state.ready) apply(name, data);
        else state.queue.push([name, data]);
      });
    }
  }

  // Waits, longer after each failure in a row (with jitter, so the tabs of a
  // restarted server do not all come back at once), then connects anew.
  function reconnectLater(id) {
    clearTimeout(state.reconnectTimer);
    const delay = state.reconnectDelay;
    state.reconnectDelay = Math.min(delay * 2, RECONNECT_LAST);
    state.reconnectTimer = setTimeout(() => {
      if (id === state.current) connectEvents(id, true);
    }, delay * (0.75 + Math.random() / 2));
  }

  function apply(name, data) {
    if (name === 'session.updated') {
      putSession(data);
      return;
    }
    const stick = nearEnd();
    state.stickToEnd = stick;
    if (name === 'message.created' || name === 'message.completed' || name === 'message.failed') {
      if (data.session_id !== state.current) return;
      const isNew = putMessage(data);
      if (isNew && name === 'message.created') bumpCount(data.session_id);
    } else if (name === 'message.delta') {
      const message = state.messages.get(data.message_id);
      if (!message) return;
      message.content = (message.content || '') + data.delta;
      message.retrying = false;
      putMessage(message);
    } else if (name === 'message.reset') {
      const message = state.messages.get(data.message_id);
      if (!message) return;
      message.content = '';
      message.retrying = true;
      putMessage(message);
    } else if (name === 'message.tool_call') {
      const message = state.messages.get(data.message_id);
      if (!message) return;
      const calls = (message.tool_calls || []).filter((call) => call.id !== data.tool_call.id);
      calls.push(data.tool_call);
      message.tool_calls = calls;
      putMessage(message);
    }
    scrollToEnd(false);
    state.stickToEnd = false;
    updateComposer();
  }

  function bumpCount(id) {
    const session = findSession(id);
    if (!session) return;
    session.message_count += 1;
    session.updated_at = new Date().toISOString();
    renderSessions();
  }

  // ------------------------------------------------------------ the composer

  function updateComposer() {
    const streaming = isStreaming();
    els.stop.hidden = !streaming;
    els.send.hidden = streaming;
    els.send.disabled = state.sending;
    els.welcome.hidden = state.messages.size > 0;
  }

  function autosize() {
    const box = els.composer;
    box.style.height = 'auto';
    box.style.height = `${Math.min(box.scrollHeight, 240)}px`;
  }

  async function submit() {
    const content = els.composer.value;
    if (state.sending || !content.trim()) return;
    if (isStreaming()) {
      showError('A reply is still being written: wait for it, or stop it first');
      return;
    }
    state.sending = true;
    updateComposer();
    try {
      let id = state.current;
      if (!id) {
        id = (await createSession()).id;
      }
      // Make sure the events are flowing before the reply starts.
      await state.opened;
      const accepted = await api('POST', `${sessionPath(id)}/messages`, { content });
      if (els.composer.value === content) {
        els.composer.value = '';
        autosize();
      }
      hideBanner();
      if (id === state.current && state.ready) {
        state.stickToEnd = true;
        for (const message of [accepted.user_message, accepted.assistant_message]) {
          if (!state.messages.has(message.id)) {
            putMessage(message);
            bumpCount(id);
          }
        }
        scrollToEnd(true);
      }
    } catch (error) {
      showError('Your message was not sent', error);
    } finally {
      state.sending = false;
      updateComposer();
    }
  }

  async function stopReply() {
    const id = state.current;
    if (!id) return;
    els.stop.disabled = true;
    try {
      await api('POST', `${sessionPath(id)}/cancel`);
    } catch (error) {
      showError('The reply could not be stopped', error);
    } finally {
      els.stop.disabled = false;
    }
  }

  // ---------------------------------------------------------------- wiring

  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });

  els.composer.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      submit();
    }
  });
  els.composer.addEventListener('input', autosize);

  els.stop.addEventListener('click', stopReply);

  els.newSession.addEventListener('click', async () => {
    els.newSession.disabled = true;
    try {
      await createSession();
      els.composer.focus();
    } catch (error) {
      showError('A new chat could not be started', error);
    } finally {
      els.newSession.disabled = false;
    }
  });

  els.keyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    tryKey();
  });
  els.forgetKey.addEventListener('click', forgetKey);

  els.moreSessions.addEventListener('click', loadMoreSessions);
  els.bannerClose.addEventListener('click', hideBanner);

  els.toggleSidebar.addEventListener('click', () => {
    const open = els.layout.dataset.sidebar !== 'open';
    els.layout.dataset.sidebar = open ? 'open' : 'closed';
    els.scrim.hidden = !open;
  });
  els.scrim.addEventListener('click', () => {
    els.layout.dataset.sidebar = 'closed';
    els.scrim.hidden = true;
  });

  els.sessionList.addEventListener('click', (event) => {
    const button = event.target.closest('[data-action]');
    const item = event.target.closest('[data-session-id]');
    if (!button || !item) return;
    const id = item.dataset.sessionId;
    switch (button.dataset.action) {
      case 'select':
        if (id !== state.current) select(id);
        else {
          els.layout.dataset.sidebar = 'closed';
          els.scrim.hidden = true;
        }
        break;
      case 'rename':
        state.editing = id;
        state.confirming = null;
        renderSessions();
        break;
      case 'delete':
        state.confirming = id;
        state.editing = null;
        renderSessions();
        break;
      case 'confirm-delete':
        deleteSession(id);
        break;
      case 'cancel-delete':
        state.confirming = null;
        renderSessions();
        break;
      default:
        break;
    }
  });

  els.sessionList.addEventListener('keydown', (event) => {
    if (!event.target.classList.contains('rename-input')) return;
    const id = event.target.closest('[data-session-id]').dataset.sessionId;
    if (event.key === 'Enter') {
      event.preventDefault();
      renameSession(id, event.target.value);
    } else if (event.key === 'Escape') {
      state.editing = null;
      renderSessions();
    }
  });

  els.sessionList.addEventListener('focusout', (event) => {
    if (!event.target.classList.contains('rename-input')) return;
    const id = event.target.closest('[data-session-id]').dataset.sessionId;
    if (state.editing === id) renameSession(id, event.target.value);
  });

  els.messageList.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-action="copy"]');
    if (!button) return;
    const code = button.closest('.code-block').querySelector('code').textContent;
    try {
      await navigator.clipboard.writeText(code);
      button.lastChild.textContent = 'Copied';
    } catch {
      button.lastChild.textContent = 'Copy failed';
    }
    setTimeout(() => {
      button.lastChild.textContent = 'Copy';
    }, 1500);
  });

  window.addEventListener('hashchange', () => {
    const id = location.hash.slice(1);
    if (UUID.test(id) && id !== state.current) select(id);
  });

  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') loadSessions().catch(() => {});
  });

  // ----------------------------------------------------------------- start

  async function start() {
    try {
      await loadSessions();
    } catch (error) {
      showError('The chats could not be loaded', error);
      setTimeout(start, 3000);
      return;
    }
    const wanted = location.hash.slice(1);
    if (UUID.test(wanted)) {
      if (!findSession(wanted)) {
        try {
          putSession(await api('GET', sessionPath(wanted)));
        } catch (error) {
          showError('That chat could not be opened', error);
        }
      }
      if (findSession(wanted)) {
        await select(wanted);
        return;
      }
    }
    if (state.sessions.length > 0) await select(state.sessions[0].id);
    else showNoSession();
    els.composer.focus();
  }

  els.keyStatus.hidden = !apiKey.kept;
  updateComposer();
  start();
})();
