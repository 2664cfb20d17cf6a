// The chat on screen: selecting one, keeping it in step with its events,
// and what happens when one is created, renamed or deleted.
import { API, api, sessionPath } from './api.js';
import { els, showError } from './dom.js';
import { updateComposer } from './composer.js';
import { closeEvents, openEvents } from './events.js';
import { applyChange, clearMessages, joinBranch, loadHistory, nearEnd, putMessage, scrollToEnd, showBranch, shownLeaf } from './messages.js';
import { bumpCount, dropSession, findSession, putSession, renderSessions, renderTitle } from './sessions.js';
import { state } from './state.js';

function leave() {
  closeEvents();
  state.ready = false;
  state.queue = [];
}

export function showNoSession() {
  leave();
  state.current = null;
  clearMessages();
  history.replaceState(null, '', location.pathname);
  renderSessions();
  renderTitle();
  updateComposer();
}

export function closeSidebar() {
  els.layout.dataset.sidebar = 'closed';
  els.scrim.hidden = true;
}

export async function select(id) {
  const ticket = ++state.selecting;
  leave();
  state.current = id;
  clearMessages();
  state.editing = null;
  state.confirming = null;
  if (location.hash !== `#${id}`) history.replaceState(null, '', `#${id}`);
  closeSidebar();
  renderSessions();
  renderTitle();
  updateComposer();

  // Listen first, then read the history: events that arrive meanwhile wait
  // in the queue and are applied on top of it, so nothing falls in between.
  openEvents(id, {
    event: receive,
    resync: () => reloadAfterResync(id),
    reconnected: resync,
    gone: (resumed) => {
      // A chat just selected reports its own 404 when its history fails to
      // load; one that was on screen is gone now.
      if (!resumed && !state.ready) return;
      showError('This chat was deleted');
      forgetSession(id, true);
    },
  });
  let messages;
  try {
    messages = await loadHistory(id);
  } catch (error) {
    if (ticket !== state.selecting) return;
    if (error.status === 404) {
      showError('That chat no longer exists');
      forgetSession(id, true);
    } else {
      showError('The chat could not be loaded', error);
    }
    return;
  }
  if (ticket !== state.selecting) return;
  for (const message of messages) putMessage(message);
  state.ready = true;
  replayQueue();
  scrollToEnd(true);
  updateComposer();
}

function receive(name, data) {
  if (state.ready) apply(name, data, false);
  else state.queue.push([name, data]);
}

// Applies the events that waited while the history was read, in order,
// until one of them has another branch read (`followHead`): the rest wait
// for that. An event that asked for its branch is applied again once that
// is shown (`requeued`), and cannot ask again.
function replayQueue() {
  while (state.ready && state.queue.length > 0) {
    const [name, data, requeued] = state.queue.shift();
    apply(name, data, Boolean(requeued));
  }
}

function apply(name, data, replayed) {
  if (name === 'session.updated') {
    putSession(data);
    // The session moved to another branch (switched in another tab, say):
    // this one follows it. A head is always a leaf, so one on screen
    // already is where this page is.
    const head = data.head_message_id;
    if (data.id === state.current && head && !state.messages.has(head)) followHead(data.id, head);
    return;
  }
  state.stickToEnd = nearEnd();
  if (name === 'message.created') {
    if (data.session_id !== state.current) return;
    const placed = joinBranch(data);
    if (placed === 'joined') bumpCount(data.session_id);
    if (placed === 'unplaced' && !replayed) {
      // It follows a message this page does not show: the branch ending at
      // it is read, and this event applied again on top of it.
      followHead(data.session_id, data.id);
      state.queue.unshift([name, data, true]);
    }
  } else if (name === 'message.completed' || name === 'message.failed') {
    if (data.session_id !== state.current) return;
    // A reply on a branch this page does not show stays off screen.
    if (state.messages.has(data.id) || data.parent_id === undefined || data.parent_id === shownLeaf()) joinBranch(data);
  } else {
    applyChange(name, data);
  }
  scrollToEnd(false);
  state.stickToEnd = false;
  updateComposer();
}

let following = null; // the branch being put on screen: { id, ticket, leaf, again, running }

/**
 * Puts on screen the branch of session `id` ending at message `leaf` (the
 * active branch with none), and settles once it is shown. The events that
 * arrive meanwhile wait, and are applied on top of it, as when a chat is
 * selected. Asked again while a branch is read, the newest wish wins.
 */
export function followHead(id, leaf) {
  if (id !== state.current) return Promise.resolve();
  if (following && following.id === id && following.ticket === state.selecting) {
    following.leaf = leaf;
    following.again = true;
    state.ready = false;
    return following.running;
  }
  // The chat's history is being read already (it was just selected, or
  // events were missed): that read finds the session as it is now.
  if (!state.ready) return Promise.resolve();
  const current = { id, ticket: state.selecting, leaf, again: true };
  following = current;
  state.ready = false;
  updateComposer();
  current.running = readBranches(current).finally(() => {
    if (following === current) following = null;
  });
  return current.running;
}

async function readBranches(current) {
  while (current.again) {
    current.again = false;
    let messages = null;
    try {
      messages = await loadHistory(current.id, current.leaf);
    } catch (error) {
      showError('The chat could not be brought up to date', error);
    }
    if (current.ticket !== state.selecting) return; // another chat was selected: its own load goes on
    if (current.again) continue; // a newer wish came meanwhile: only its answer counts
    state.stickToEnd = nearEnd();
    if (messages) showBranch(messages, true);
    state.ready = true;
    replayQueue();
    scrollToEnd(false);
    state.stickToEnd = false;
    updateComposer();
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
  const stored = new Set(messages.map((message) => message.id));
  const leaf = messages.length > 0 ? messages[messages.length - 1].id : '';
  // A message missing on either side (only newer ones may be missing from
  // a read made a moment ago): the session is on another branch now, or
  // events were lost with the server. The branch is read again, events
  // held back meanwhile.
  const moved =
    messages.some((message) => !state.messages.has(message.id)) ||
    [...state.messages.keys()].some((shownId) => shownId < leaf && !stored.has(shownId));
  if (moved) {
    followHead(id);
    return;
  }
  for (const message of messages) {
    // A reply this page saw streaming but the store has settled (the server
    // stopped meanwhile, say) takes the stored state; the rest is as shown.
    if (state.messages.get(message.id).status === 'streaming' && message.status !== 'streaming') putMessage(message);
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
  if (messages.length > 0) showBranch(messages, false);
  state.ready = true;
  replayQueue();
  scrollToEnd(false);
  updateComposer();
}

export async function createSession() {
  const session = await api('POST', `${API}/sessions`, {});
  putSession(session);
  await select(session.id);
  return session;
}

export async function renameSession(id, raw) {
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

export async function deleteSession(id) {
  state.confirming = null;
  const wasCurrent = id === state.current;
  try {
    if (wasCurrent) leave();
    await api('DELETE', sessionPath(id));
  } catch (error) {
    if (error.status !== 404) {
      showError('The chat was not deleted', error);
      if (wasCurrent) select(id);
      else renderSessions();
      return;
    }
  }
  forgetSession(id, wasCurrent);
}

// A session that is gone (deleted here or elsewhere) leaves the list; if it
// was on screen, its neighbour takes its place.
function forgetSession(id, wasCurrent) {
  const index = dropSession(id);
  if (!wasCurrent) return;
  const next = state.sessions[Math.min(Math.max(index, 0), state.sessions.length - 1)];
  if (next) {
    select(next.id);
  } else {
    showNoSession();
  }
}
