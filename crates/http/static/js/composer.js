// The composer: the next message, who answers it, and the Send, Discuss and
// Stop buttons.
import { api, sessionPath } from './api.js';
import { assistantsOffered, loadAssistants, namesOf, pickedAssistants } from './assistants.js';
import { els, hideBanner, showError } from './dom.js';
import { opened } from './events.js';
import { isStreaming, showAccepted } from './messages.js';
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
}

function autosize() {
  const box = els.composer;
  box.style.height = 'auto';
  box.style.height = `${Math.min(box.scrollHeight, 240)}px`;
}

// The messages a send or a discussion was answered with: the user message
// (none for a discussion), then one assistant message per answering voice.
function answeredWith(accepted) {
  const replies = accepted.assistant_messages || [accepted.assistant_message];
  return [accepted.user_message, ...replies].filter(Boolean);
}

// An assistant named in a request that failed may be gone (deleted in
// another tab): the chips are brought up to date.
function refreshIfAssistantsNamed(error, assistantIds) {
  if (assistantIds.length > 0 && (error.status === 404 || error.status === 422)) loadAssistants().catch(() => {});
}

async function submit() {
  const content = els.composer.value;
  if (state.sending || !content.trim()) return;
  if (isStreaming()) {
    showError('A reply is still being written: wait for it, or stop it first');
    return;
  }
  const assistantIds = pickedAssistants();
  state.sending = true;
  updateComposer();
  try {
    let id = state.current;
    if (!id) {
      id = (await startChat()).id;
    }
    // Make sure the events are flowing before the reply starts.
    await opened();
    const body = assistantIds.length > 0 ? { content, assistant_ids: assistantIds } : { content };
    const accepted = await api('POST', `${sessionPath(id)}/messages`, body);
    if (els.composer.value === content) {
      els.composer.value = '';
      autosize();
    }
    hideBanner();
    showAccepted(id, answeredWith(accepted));
  } catch (error) {
    showError('Your message was not sent', error);
    refreshIfAssistantsNamed(error, assistantIds);
  } finally {
    state.sending = false;
    updateComposer();
  }
}

// The picked assistants speak next, with no new message: a discussion.
async function discuss() {
  const id = state.current;
  const assistantIds = pickedAssistants();
  if (state.sending || !id || assistantIds.length === 0) return;
  if (isStreaming()) {
    showError('A reply is still being written: wait for it, or stop it first');
    return;
  }
  state.sending = true;
  updateComposer();
  try {
    await opened();
    const accepted = await api('POST', `${sessionPath(id)}/replies`, { assistant_ids: assistantIds });
    hideBanner();
    showAccepted(id, answeredWith(accepted));
  } catch (error) {
    showError('The discussion did not start', error);
    refreshIfAssistantsNamed(error, assistantIds);
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
