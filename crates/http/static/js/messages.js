// The selected chat's messages: what is known of each, drawn in order, and
// kept up to date by the events that concern them.
import { api, sessionPath } from './api.js';
import { els, el } from './dom.js';
import { drawMessage } from './render.js';
import { bumpCount } from './sessions.js';
import { state } from './state.js';

const HISTORY_PAGE = 1000;

const waitingShown = new Set(); // ids drawn as waiting their turn

export function clearMessages() {
  state.messages.clear();
  state.views.clear();
  waitingShown.clear();
  els.messageList.replaceChildren();
}

/** Every message of session `id`'s active branch, oldest first. */
export async function loadHistory(id) {
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

// The assistant messages being written, oldest first. One turn runs at a
// time in a session, so these are all of one turn, answering in this order.
function streamingReplies() {
  return [...state.messages.values()]
    .filter((message) => message.role === 'assistant' && message.status === 'streaming')
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

export function isStreaming() {
  return streamingReplies().length > 0;
}

// A reply that has not begun while an earlier one of its turn is written.
function isWaiting(message, replies) {
  return message.status === 'streaming' && !message.content && replies[0] && replies[0].id < message.id;
}

function draw(message, replies) {
  const waiting = Boolean(isWaiting(message, replies));
  if (waiting) waitingShown.add(message.id);
  else waitingShown.delete(message.id);
  drawMessage(state.views.get(message.id), message, waiting);
}

/** Stores `message` and draws it, replacing what was known of it; true when it is new. */
export function putMessage(message) {
  const isNew = !state.messages.has(message.id);
  state.messages.set(message.id, message);
  if (!state.views.has(message.id)) {
    const view = el('article', 'message');
    // UUID v7 ids sort by creation time: keep the list in that order.
    let before = null;
    for (const [otherId, other] of state.views) {
      if (otherId > message.id && (!before || otherId < before.dataset.messageId)) before = other;
    }
    state.views.set(message.id, view);
    els.messageList.insertBefore(view, before);
  }
  const replies = streamingReplies();
  draw(message, replies);
  // The reply that finished hands the turn to the next one.
  for (const other of replies) {
    if (other.id !== message.id && waitingShown.has(other.id) !== Boolean(isWaiting(other, replies))) draw(other, replies);
  }
  els.welcome.hidden = state.messages.size > 0;
  return isNew;
}

/** Applies a `message.*` event (not `message.created`) to the message it names. */
export function applyChange(name, data) {
  const message = state.messages.get(data.message_id);
  if (!message) return;
  if (name === 'message.delta') {
    message.content = (message.content || '') + data.delta;
    message.retrying = false;
  } else if (name === 'message.reset') {
    message.content = '';
    message.retrying = true;
  } else if (name === 'message.tool_call') {
    const calls = (message.tool_calls || []).filter((call) => call.id !== data.tool_call.id);
    calls.push(data.tool_call);
    message.tool_calls = calls;
  }
  putMessage(message);
}

export function nearEnd() {
  const box = els.messages;
  return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}

export function scrollToEnd(force) {
  if (force || state.stickToEnd) els.messages.scrollTop = els.messages.scrollHeight;
}

/** Puts messages a send or a discussion was answered with on screen, if its chat is still shown. */
export function showAccepted(id, messages) {
  if (id !== state.current || !state.ready) return;
  state.stickToEnd = true;
  for (const message of messages) {
    if (!state.messages.has(message.id)) {
      putMessage(message);
      bumpCount(id);
    }
  }
  scrollToEnd(true);
}
