// The list of chats in the sidebar, and the selected chat's title.
import { API, api } from './api.js';
import { el, els, formatTime, icon, showError } from './dom.js';
import { state } from './state.js';

const SESSIONS_PAGE = 50;

export const titleOf = (session) => (session && session.title) || 'New chat';

export function findSession(id) {
  return state.sessions.find((session) => session.id === id);
}

export function putSession(session) {
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

/** Takes session `id` off the list: its place in it before, -1 if it was not listed. */
export function dropSession(id) {
  const index = state.sessions.findIndex((session) => session.id === id);
  state.sessions = state.sessions.filter((session) => session.id !== id);
  renderSessions();
  return index;
}

export async function loadSessions() {
  const page = await api('GET', `${API}/sessions?limit=${SESSIONS_PAGE}`);
  const older = state.sessions.slice(page.data.length).filter((s) => !page.data.some((p) => p.id === s.id));
  state.sessions = page.data.concat(state.hasMoreSessions ? older : []);
  if (!state.hasMoreSessions || older.length === 0) state.hasMoreSessions = page.has_more;
  renderSessions();
  renderTitle();
}

export async function loadMoreSessions() {
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

/** A message was added to session `id`: its entry says so. */
export function bumpCount(id) {
  const session = findSession(id);
  if (!session) return;
  session.message_count += 1;
  session.updated_at = new Date().toISOString();
  renderSessions();
}

const sessionItems = new Map(); // id -> <li>

export function renderSessions() {
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

export function renderTitle() {
  const session = findSession(state.current);
  const title = state.current ? titleOf(session) : 'colloquy';
  els.title.textContent = title;
  els.model.textContent = session ? session.model : '';
  els.model.title = session ? `New messages use the model ${session.model}` : '';
  els.exportBox.hidden = !state.current;
  document.title = state.current ? `${title} · colloquy` : 'colloquy';
}
