// Reworking the conversation on screen: a reply regenerated, a question
// edited in place, and going from one version of a message to another.
// Nothing is lost either way: the earlier versions stay on branches of
// their own (the server keeps every one), reached with "‹ 1 / 2 ›".
import { api, messagePath, sessionPath } from './api.js';
import { pickedAssistants } from './assistants.js';
import { followHead } from './chat.js';
import { requestTurn, updateComposer, whileSending } from './composer.js';
import { el, els, sentence, showError } from './dom.js';
import { redraw } from './messages.js';
import { putSession } from './sessions.js';
import { state } from './state.js';

export function initBranches() {
  els.messageList.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    const view = event.target.closest('article[data-message-id]');
    if (!button || !view || button.disabled) return;
    const id = view.dataset.messageId;
    switch (button.dataset.action) {
      case 'regenerate':
        regenerate(id);
        break;
      case 'edit':
        startEditing(id);
        break;
      case 'prev':
        showSibling(id, -1, 'prev');
        break;
      case 'next':
        showSibling(id, 1, 'next');
        break;
      case 'save-edit':
        saveEdit();
        break;
      case 'cancel-edit':
        stopEditing();
        break;
      default:
        break;
    }
  });
}

/**
 * Makes message `target` (of the chat on screen) part of the active branch
 * (the server goes on to the newest message below it) and shows that
 * branch. Resolves to whether `target` is on screen then; throws the
 * server's refusal.
 */
export async function switchBranch(target) {
  const id = state.current;
  if (!id) return false;
  state.switching = true;
  updateComposer();
  try {
    const session = await api('PATCH', sessionPath(id), { head_message_id: target });
    putSession(session);
    // The branch ending at the head the server chose, whatever has
    // happened since: this is what the switch showed.
    await followHead(id, session.head_message_id || target);
    return state.messages.has(target);
  } finally {
    state.switching = false;
    updateComposer();
  }
}

// The previous (`step` -1) or next (+1) version of message `id`. The
// button pressed keeps the focus, on the version now shown.
async function showSibling(id, step, action) {
  const message = state.messages.get(id);
  const siblings = message && message.siblings;
  const target = siblings && siblings.ids[siblings.index + step];
  if (!target) return;
  let shown = false;
  try {
    shown = await switchBranch(target);
  } catch (error) {
    showError('That version could not be shown', error);
    return;
  }
  const view = shown && state.views.get(target);
  if (!view) return;
  const same = view.querySelector(`[data-action="${action}"]`);
  const focus = same && !same.disabled ? same : view.querySelector('.siblings button:not(:disabled)');
  if (focus) focus.focus();
}

async function regenerate(id) {
  const session = state.current;
  if (!session) return;
  await whileSending(async () => {
    try {
      await requestTurn(session, `${messagePath(session, id)}/regenerate`);
      // The reply asked again replaces the one whose button was pressed.
      els.composer.focus();
    } catch (error) {
      showError('No new reply could be asked for', error);
    }
  });
}

// ------------------------------------------------------ editing in place

function startEditing(id) {
  const message = state.messages.get(id);
  if (!message || message.role !== 'user') return;
  if (state.editingMessage) stopEditing();

  const editor = el('div', 'message-editor');
  const label = el('label', 'visually-hidden', 'Edit your message');
  const box = el('textarea', 'editor-text');
  box.id = `edit-${id}`;
  label.htmlFor = box.id;
  box.value = message.content;
  box.rows = 2;
  box.setAttribute('enterkeyhint', 'send');
  const problem = el('p', 'form-problem');
  problem.setAttribute('role', 'alert');
  problem.hidden = true;
  const cancel = el('button', 'button subtle small', 'Cancel');
  cancel.type = 'button';
  cancel.dataset.action = 'cancel-edit';
  const save = el('button', 'button primary small', 'Save and ask again');
  save.type = 'button';
  save.dataset.action = 'save-edit';
  const actions = el('div', 'editor-actions');
  actions.append(el('span', 'editor-hint', 'Enter saves · Shift+Enter adds a line · Esc cancels'), cancel, save);
  editor.append(label, box, problem, actions);

  box.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      saveEdit();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      stopEditing();
    }
  });
  box.addEventListener('input', () => fit(box));

  state.editingMessage = { id, editor, box, problem, save };
  redraw(id);
  fit(box);
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}

// The editor grows with its text, up to a point.
function fit(box) {
  box.style.height = 'auto';
  box.style.height = `${Math.min(box.scrollHeight + 2, 320)}px`;
}

// Closes the editor, keeping the message as it was.
function stopEditing() {
  const editing = state.editingMessage;
  if (!editing) return;
  state.editingMessage = null;
  redraw(editing.id);
  const button = state.views.get(editing.id)?.querySelector('[data-action="edit"]');
  if (button) button.focus();
}

function showEditProblem(editing, text) {
  editing.problem.textContent = text;
  editing.problem.hidden = !text;
}

async function saveEdit() {
  const editing = state.editingMessage;
  const session = state.current;
  if (!editing || !session || editing.save.disabled) return;
  const content = editing.box.value;
  if (!content.trim()) {
    showEditProblem(editing, 'Write something first: a message cannot be empty.');
    editing.box.focus();
    return;
  }
  if (content === state.messages.get(editing.id)?.content) {
    // Nothing changed: nothing to ask again (a reply can be regenerated).
    stopEditing();
    return;
  }
  showEditProblem(editing, '');
  // The question asked anew is answered as a new one would be: by the
  // assistants picked above the composer, if any.
  const assistantIds = pickedAssistants();
  const body = assistantIds.length > 0 ? { content, assistant_ids: assistantIds } : { content };
  editing.save.disabled = true;
  try {
    await whileSending(async () => {
      try {
        await requestTurn(session, `${messagePath(session, editing.id)}/edit`, body);
        // The edited question took the old one's place, editor and all.
        if (state.editingMessage === editing) {
          state.editingMessage = null;
          redraw(editing.id);
        }
        els.composer.focus();
      } catch (error) {
        showEditProblem(editing, editProblem(error));
        editing.box.focus();
      }
    });
  } finally {
    editing.save.disabled = false;
  }
}

function editProblem(error) {
  switch (error.status) {
    case 404:
      return 'That message is no longer in this chat.';
    case 409:
      return 'A reply is still being written: wait for it, or stop it first.';
    case 422:
      return `That cannot be sent: ${sentence(error.message)}`;
    case 0:
      return sentence(error.message);
    default:
      return `Your edit was not sent: ${sentence(error.message)}`;
  }
}
