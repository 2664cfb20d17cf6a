// The composer: the next message, who answers it, and the Send, Discuss and
// Stop buttons.
import { api, sessionPath } from './api.js';
import { assistantsOffered, loadAssistants, namesOf, pickedAssistants } from './assistants.js';
import { els, hideBanner, showError } from './dom.js';
import { opened } from './events.js';
import { isStreaming, lockActions, showAccepted } from './messages.js';
import { state } from './state.js';

const PLACEHOLDER = 'Message colloquy…';

// Creates and selects a chat, resolving to it, when a message is sent with
// none on screen; given by `initComposer` (the chat module needs this one).
let startChat = null;

export function initComposer(startNewChat) {
  startChat = startNewChat;
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
  els.discuss.addEventListener('click', discuss);
}

export function updateComposer() {
  const streaming = isStreaming();
  const picked = pickedAssistants();
  const names = namesOf(picked);
  els.stop.hidden = !streaming;
  els.send.hidden = streaming;
  els.send.disabled = state.sending;
  els.discuss.hidden = streaming || !assistantsOffered();
  els.discuss.disabled = state.sending || picked.length === 0 || !state.current;
  els.discuss.title = !state.current
    ? 'Open a chat first: the assistants discuss what it says'
    : picked.length === 0
      ? 'Pick the assistants who should talk'
      : `${names} speak next, without a new message from you`;
  els.composer.placeholder = names ? `Message ${names}…` : PLACEHOLDER;
  els.welcome.hidden = state.messages.size > 0;
  lockActions();
}

function autosize() {
  const box = els.composer;
  box.style.height = 'auto';
  box.style.height = `${Math.min(box.scrollHeight, 240)}px`;
}

// An assistant named in a request that failed may be gone (deleted in
// another tab): the chips are brought up to date.
function refreshIfAssistantsNamed(error, assistantIds) {
  if (assistantIds.length > 0 && (error.status === 404 || error.status === 422)) loadAssistants().catch(() => {});
}

/**
 * Runs `work` (which asks for a turn) unless one is being asked for or a
 * reply is still being written (the server takes one turn at a time): the
 * buttons say so meanwhile. Resolves to false when `work` did not run.
 */
export async function whileSending(work) {
  if (state.sending) return false;
  if (isStreaming()) {
    showError('A reply is still being written: wait for it, or stop it first');
    return false;
  }
  state.sending = true;
  updateComposer();
  try {
    await work();
    return true;
  } finally {
    state.sending = false;
    updateComposer();
  }
}

/**
 * Asks session `id` for a turn (a send, a discussion, a regeneration, an
 * edit): POSTs `body` to `path` once the chat's events flow, then shows the
 * messages the turn was answered with; they stream in over the events.
 * Throws the server's refusal.
 */
export async function requestTurn(id, path, body) {
  // Make sure the events are flowing before the reply starts.
  await opened();
  const accepted = await api('POST', path, body);
  hideBanner();
  showAccepted(id, accepted);
}

async function submit() {
  const content = els.composer.value;
  if (!content.trim()) return;
  const assistantIds = pickedAssistants();
  const body = assistantIds.length > 0 ? { content, assistant_ids: assistantIds } : { content };
  await whileSending(async () => {
    try {
      const id = state.current || (await startChat()).id;
      await requestTurn(id, `${sessionPath(id)}/messages`, body);
      if (els.composer.value === content) {
        els.composer.value = '';
        autosize();
      }
    } catch (error) {
      showError('Your message was not sent', error);
      refreshIfAssistantsNamed(error, assistantIds);
    }
  });
}

// The picked assistants speak next, with no new message: a discussion.
async function discuss() {
  const id = state.current;
  const assistantIds = pickedAssistants();
  if (!id || assistantIds.length === 0) return;
  await whileSending(async () => {
    try {
      await requestTurn(id, `${sessionPath(id)}/replies`, { assistant_ids: assistantIds });
    } catch (error) {
      showError('The discussion did not start', error);
      refreshIfAssistantsNamed(error, assistantIds);
    }
  });
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
