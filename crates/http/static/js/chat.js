// The chat on screen: selecting one, keeping it in step with its events,
// and what happens when one is created, renamed or deleted.
import { API, api, sessionPath } from './api.js';
import { els, showError } from './dom.js';
import { updateComposer } from './composer.js';
import { closeEvents, openEvents } from './events.js';
import { applyChange, clearMessages, loadHistory, nearEnd, putMessage, scrollToEnd } from './messages.js';
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
  for (const [name, data] of state.queue.splice(0)) apply(name, data);
  scrollToEnd(true);
  updateComposer();
}

function receive(name, data) {
  if (state.ready) apply(name, data);
  else state.queue.push([name, data]);
}

function apply(name, data) {
  if (name === 'session.updated') {
    putSession(data);
    return;
  }
  state.stickToEnd = nearEnd();
  if (name === 'message.created' || name === 'message.completed' || name === 'message.failed') {
    if (data.session_id !== state.current) return;
    const isNew = putMessage(data);
    if (isNew && name === 'message.created') bumpCount(data.session_id);
  } else {
    applyChange(name, data);
  }
  scrollToEnd(false);
  state.stickToEnd = false;
  updateComposer();
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
