// colloquy's web chat page: plain JavaScript modules, no build step, no
// dependency. This one wires the page's controls to the modules that do the
// work, and starts it.
//
// A session's messages form a tree: the page shows one branch, where a
// reply can be regenerated, a question edited, and each message's versions
// stepped through (branches.js, messages.js). Every chat can be searched
// (search.js), exported and imported (archive.js).
//
// One EventSource per page, on the selected session's events (events.js):
// replies are rendered from message.created / message.delta /
// message.completed / message.failed / message.reset / message.tool_call /
// session.updated; a stream.resync (events the server no longer keeps)
// reloads the history (chat.js). Messages are sent with a plain fetch that
// gets the 202 (composer.js), answered by the chat's usual voice or by the
// assistants picked above the composer (assistants.js), each its own message.
// A server with authentication on gets the API key the page asks for when it
// answers 401 (auth.js); the event stream opens with a stream token.
import { api, sessionPath } from './api.js';
import { initArchive } from './archive.js';
import { initAssistants, loadAssistants } from './assistants.js';
import { forgetKey, showKeyStatus, tryKey } from './auth.js';
import { initBranches } from './branches.js';
import { closeSidebar, createSession, deleteSession, renameSession, select, showNoSession } from './chat.js';
import { initComposer, updateComposer } from './composer.js';
import { els, hideBanner, showError } from './dom.js';
import { copyCode } from './render.js';
import { initSearch } from './search.js';
import { findSession, loadMoreSessions, loadSessions, putSession, renderSessions } from './sessions.js';
import { state } from './state.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

initComposer(createSession);
initAssistants(updateComposer);
initBranches();
initSearch();
initArchive();

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
els.scrim.addEventListener('click', closeSidebar);

els.sessionList.addEventListener('click', (event) => {
  const button = event.target.closest('[data-action]');
  const item = event.target.closest('[data-session-id]');
  if (!button || !item) return;
  const id = item.dataset.sessionId;
  switch (button.dataset.action) {
    case 'select':
      if (id !== state.current) select(id);
      else closeSidebar();
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

els.messageList.addEventListener('click', (event) => {
  const button = event.target.closest('[data-action="copy"]');
  if (button) copyCode(button);
});

window.addEventListener('hashchange', () => {
  const id = location.hash.slice(1);
  if (UUID.test(id) && id !== state.current) select(id);
});

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible') return;
  loadSessions().catch(() => {});
  loadAssistants().catch(() => {});
});

async function start() {
  try {
    await loadSessions();
  } catch (error) {
    showError('The chats could not be loaded', error);
    setTimeout(start, 3000);
    return;
  }
  loadAssistants().catch((error) => showError('The assistants could not be loaded', error));
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

showKeyStatus();
updateComposer();
start();
