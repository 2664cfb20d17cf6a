// The composer: the next message, the Send and Stop buttons.
import { api, sessionPath } from './api.js';
import { els, hideBanner, showError } from './dom.js';
import { opened } from './events.js';
import { isStreaming, showAccepted } from './messages.js';
import { state } from './state.js';

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
}

export function updateComposer() {
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
      id = (await startChat()).id;
    }
    // Make sure the events are flowing before the reply starts.
    await opened();
    const accepted = await api('POST', `${sessionPath(id)}/messages`, { content });
    if (els.composer.value === content) {
      els.composer.value = '';
      autosize();
    }
    hideBanner();
    showAccepted(id, [accepted.user_message, accepted.assistant_message]);
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
