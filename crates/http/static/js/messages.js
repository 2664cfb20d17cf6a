// The selected chat's messages: the branch on screen, drawn in order, and
// kept up to date by the events that concern them.
//
// A session's messages form a tree; the page shows one branch of it, a
// chain from the first message to a leaf, each message under the one
// before. A message that joins under another than the last one shown (a
// regenerated reply, an edited question) starts a new branch there: what
// followed that point leaves the screen, and the new message is the next
// version of the one it replaced (its siblings, "2 / 2").
import { api, sessionPath } from './api.js';
import { els, el } from './dom.js';
import { drawMessage } from './render.js';
import { bumpCount } from './sessions.js';
import { state } from './state.js';

const HISTORY_PAGE = 1000;

const waitingShown = new Set(); // ids drawn as waiting their turn
let lockedShown = false; // the message actions are drawn disabled

export function clearMessages() {
  state.messages.clear();
  state.views.clear();
  waitingShown.clear();
  state.editingMessage = null;
  els.messageList.replaceChildren();
}

/**
 * Every message of session `id`'s active branch, oldest first; with `leaf`,
 * of the branch ending at that message.
 */
export async function loadHistory(id, leaf) {
  let all = [];
  let after = '';
  for (;;) {
    const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
    if (after) query.set('after', after);
    if (leaf) query.set('leaf', leaf);
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

// Regenerating, editing and switching versions wait while a reply is being
// written (the server takes one turn at a time) or another is being asked for.
const actionsLocked = () => isStreaming() || state.sending || state.switching || !state.ready;

/** Draws the message actions enabled or disabled, as the chat's state now allows. */
export function lockActions() {
  const locked = actionsLocked();
  if (locked === lockedShown) return;
  lockedShown = locked;
  for (const button of els.messageList.querySelectorAll('[data-lockable]')) {
    button.disabled = locked || button.dataset.end === 'true';
  }
}

// A reply that has not begun while an earlier one of its turn is written.
function isWaiting(message, replies) {
  return message.status === 'streaming' && !message.content && replies[0] && replies[0].id < message.id;
}

function draw(message, replies) {
  const waiting = Boolean(isWaiting(message, replies));
  if (waiting) waitingShown.add(message.id);
  else waitingShown.delete(message.id);
  const editing = state.editingMessage && state.editingMessage.id === message.id;
  drawMessage(state.views.get(message.id), message, {
    waiting,
    locked: lockedShown,
    editor: editing ? state.editingMessage.editor : null,
  });
}

/** Redraws message `id` as it is known (to open or close its editor, say). */
export function redraw(id) {
  const message = state.messages.get(id);
  if (message) draw(message, streamingReplies());
}

/** Stores `message` and draws it, replacing what was known of it; true when it is new. */
export function putMessage(message) {
  const known = state.messages.get(message.id);
  // Events carry a message without its siblings: what the history said stays.
  if (known && known.siblings && !message.siblings) message.siblings = known.siblings;
  state.messages.set(message.id, message);
  if (!state.views.has(message.id)) {
    const view = el('article', 'message');
    // UUID v7 ids sort by creation time, and a message comes after the one
    // it follows: keep the list in that order.
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
  return !known;
}

function dropMessage(id) {
  const view = state.views.get(id);
  if (view) view.remove();
  state.views.delete(id);
  state.messages.delete(id);
  waitingShown.delete(id);
  if (state.editingMessage && state.editingMessage.id === id) state.editingMessage = null;
}

/** The ids of the branch on screen, oldest first. */
function shownBranch() {
  return [...state.messages.keys()].sort();
}

/** The last message on screen: the leaf of the branch shown. */
export function shownLeaf() {
  const ids = shownBranch();
  return ids.length > 0 ? ids[ids.length - 1] : null;
}

/**
 * Puts a message that was just made (by an event or a send's answer) where
 * it belongs: `'known'` when it was on screen already (it is updated),
 * `'joined'` when it now ends the branch shown (after its parent, starting a
 * new branch there if something followed), `'unplaced'` when its parent is
 * not on screen (the session has moved to a branch this page does not show).
 */
export function joinBranch(message) {
  if (state.messages.has(message.id)) {
    putMessage(message);
    return 'known';
  }
  // A server without branches: every message follows the one before.
  if (message.parent_id === undefined) {
    putMessage(message);
    return 'joined';
  }
  const branch = shownBranch();
  const at = message.parent_id === null ? -1 : branch.indexOf(message.parent_id);
  if (message.parent_id !== null && at < 0) return 'unplaced';
  const displaced = branch.slice(at + 1);
  if (displaced.length > 0) {
    // The new message is the newest version of the one it takes the place of.
    const beside = state.messages.get(displaced[0]);
    if (!message.siblings) {
      const ids = (beside.siblings ? beside.siblings.ids : [beside.id]).filter((id) => id !== message.id).concat(message.id);
      message.siblings = { ids, index: ids.length - 1 };
    }
    for (const id of displaced) dropMessage(id);
  }
  putMessage(message);
  return 'joined';
}

/**
 * Shows `messages` (a branch, oldest first, as the history has it) in place
 * of the one on screen. `keepStreamed`: a reply shown streaming keeps the
 * text its events brought, which the store only catches up with every
 * second; otherwise the stored text wins (events were missed).
 */
export function showBranch(messages, keepStreamed) {
  const wanted = new Set(messages.map((message) => message.id));
  for (const id of [...state.messages.keys()]) {
    if (!wanted.has(id)) dropMessage(id);
  }
  for (const stored of messages) {
    const shown = state.messages.get(stored.id);
    if (keepStreamed && shown && shown.status === 'streaming' && stored.status === 'streaming') {
      stored.content = shown.content;
      stored.tool_calls = shown.tool_calls;
      stored.retrying = shown.retrying;
    }
    putMessage(stored);
  }
  els.welcome.hidden = state.messages.size > 0;
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

/**
 * Puts the messages a send, a discussion, a regeneration or an edit was
 * answered with (its 202) on screen, if its chat is still shown: the user
 * message (none for a discussion or a regeneration), then one assistant
 * message per answering voice.
 */
export function showAccepted(id, accepted) {
  if (id !== state.current || !state.ready) return;
  state.stickToEnd = true;
  const replies = accepted.assistant_messages || [accepted.assistant_message];
  for (const message of [accepted.user_message, ...replies].filter(Boolean)) {
    if (!state.messages.has(message.id) && joinBranch(message) === 'joined') bumpCount(id);
  }
  scrollToEnd(true);
}

/** Scrolls message `id` into view and marks it, as the one asked for; false when it is not shown. */
export function reveal(id) {
  const view = state.views.get(id);
  if (!view) return false;
  for (const other of els.messageList.querySelectorAll('.message.highlighted')) other.classList.remove('highlighted');
  void view.offsetWidth; // restarts the highlight's animation when it is the same message again
  view.classList.add('highlighted');
  view.tabIndex = -1;
  view.scrollIntoView({ block: 'center' });
  view.focus({ preventScroll: true });
  return true;
}
