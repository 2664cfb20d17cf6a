// The assistants: which of them answer the next message (the chips above the
// composer, in the order picked), and the dialog where they are created,
// edited and deleted. A server without assistants (an older one answers 404)
// shows none of this.
import { API, api, assistantPath } from './api.js';
import { el, els, icon, sentence } from './dom.js';

const ASSISTANTS_PAGE = 100;
const NAME_MAX_CHARS = 64;

const assistants = {
  offered: false, // the server has assistants at all
  list: [], // oldest first: the order they were created in
  picked: [], // ids, in the order picked: they answer in this order
  models: null, // ids from /models, once loaded
  editing: null, // the assistant in the form, null for a new one
  confirming: null, // the assistant whose deletion awaits confirmation
  changed: () => {}, // told when the picks or the list change
};

/** The ids of the assistants that answer next, in order; none for the chat's default voice. */
export const pickedAssistants = () => [...assistants.picked];

/** The server has assistants and this principal has at least one. */
export const assistantsOffered = () => assistants.offered && assistants.list.length > 0;

/** Names of `ids`, as a list a person reads. */
export function namesOf(ids) {
  const names = ids.map((id) => findAssistant(id)).filter(Boolean).map((assistant) => assistant.name);
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

const findAssistant = (id) => assistants.list.find((assistant) => assistant.id === id);

/** `changed()` is told whenever the picks or the list of assistants change. */
export function initAssistants(changed) {
  assistants.changed = changed;
  els.assistantChoices.addEventListener('click', (event) => {
    const chip = event.target.closest('[data-assistant-choice]');
    if (chip) togglePick(chip.dataset.assistantChoice);
  });
  els.manageAssistants.addEventListener('click', openManager);
  els.assistantsClose.addEventListener('click', () => els.assistantsDialog.close());
  // A click on the backdrop (the dialog itself, outside its card) closes it.
  els.assistantsDialog.addEventListener('click', (event) => {
    if (event.target === els.assistantsDialog) els.assistantsDialog.close();
  });
  els.assistantsDialog.addEventListener('close', () => {
    assistants.confirming = null;
    renderManager();
  });
  els.assistantList.addEventListener('click', (event) => {
    const button = event.target.closest('[data-action]');
    const item = event.target.closest('[data-assistant-id]');
    if (button && item) act(button.dataset.action, item.dataset.assistantId);
  });
  els.assistantForm.addEventListener('submit', (event) => {
    event.preventDefault();
    save();
  });
  els.assistantCancel.addEventListener('click', () => editInForm(null));
}

/** Reads the caller's assistants; quietly shows none when the server has no such thing. */
export async function loadAssistants() {
  let all = [];
  let after = '';
  try {
    for (;;) {
      const query = `limit=${ASSISTANTS_PAGE}${after ? `&after=${encodeURIComponent(after)}` : ''}`;
      const page = await api('GET', `${API}/assistants?${query}`);
      all = all.concat(page.data);
      if (!page.has_more || page.data.length === 0) break;
      after = page.data[page.data.length - 1].id;
    }
  } catch (error) {
    if (error.status === 404) {
      assistants.offered = false;
      assistants.list = [];
      assistants.picked = [];
      render();
      return;
    }
    throw error;
  }
  assistants.offered = true;
  // UUID v7 ids sort by creation time, whatever order the server lists them in.
  assistants.list = all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  assistants.picked = assistants.picked.filter((id) => findAssistant(id));
  render();
}

function put(assistant) {
  const index = assistants.list.findIndex((known) => known.id === assistant.id);
  if (index >= 0) assistants.list[index] = assistant;
  else assistants.list.push(assistant);
  assistants.list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  render();
}

function forget(id) {
  assistants.list = assistants.list.filter((assistant) => assistant.id !== id);
  assistants.picked = assistants.picked.filter((picked) => picked !== id);
  if (assistants.editing === id) editInForm(null);
  render();
}

function togglePick(id) {
  if (!findAssistant(id)) return;
  assistants.picked = assistants.picked.includes(id)
    ? assistants.picked.filter((picked) => picked !== id)
    : assistants.picked.concat(id);
  render();
}

function render() {
  renderChoices();
  renderManager();
  assistants.changed();
}

// ------------------------------------------------------------- the chips

const ORDINALS = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth'];

function renderChoices() {
  els.voices.hidden = !assistants.offered;
  const chips = assistants.list.map((assistant) => {
    const place = assistants.picked.indexOf(assistant.id);
    const chip = el('button', 'chip');
    chip.type = 'button';
    chip.dataset.assistantChoice = assistant.id;
    chip.setAttribute('aria-pressed', String(place >= 0));
    if (place >= 0) {
      chip.append(el('span', 'chip-order', String(place + 1)));
      chip.title = `${assistant.name} answers ${ORDINALS[place] || `as number ${place + 1}`}; click to leave it out`;
    } else {
      chip.title = `Have ${assistant.name} answer`;
    }
    chip.append(el('span', 'chip-name', assistant.name));
    return chip;
  });
  els.assistantChoices.replaceChildren(...chips);
  els.voicesHint.textContent =
    assistants.list.length === 0
      ? 'No assistants yet'
      : assistants.picked.length === 0
        ? 'None picked: the chat’s usual voice answers'
        : '';
}

// ------------------------------------------------------------ the dialog

async function openManager() {
  showListProblem('');
  renderManager();
  if (!els.assistantsDialog.open) els.assistantsDialog.showModal();
  if (!assistants.editing) els.assistantName.focus();
  await Promise.all([
    loadAssistants().catch((error) => showListProblem(`The assistants could not be loaded: ${sentence(error.message)}`)),
    loadModels(),
  ]);
}

async function loadModels() {
  if (assistants.models) return;
  try {
    assistants.models = (await api('GET', `${API}/models`)).data.map((model) => model.id);
  } catch {
    // The server's default model, whatever it is, is still a choice.
    assistants.models = [];
  }
  fillModels(assistants.editing ? findAssistant(assistants.editing)?.model : '');
}

// The models an assistant may use; `current`, the one it has, stays a
// choice even when the server no longer lists it.
function fillModels(current) {
  const models = [...(assistants.models || [])];
  if (current && !models.includes(current)) models.push(current);
  const options = models.map((model) => {
    const option = el('option', null, model);
    option.value = model;
    return option;
  });
  if (options.length === 0) {
    const option = el('option', null, 'The server’s default model');
    option.value = '';
    options.push(option);
  }
  els.assistantModel.replaceChildren(...options);
  els.assistantModel.value = current && models.includes(current) ? current : options[0].value;
}

function renderManager() {
  els.assistantsEmpty.hidden = assistants.list.length > 0;
  const items = assistants.list.map((assistant) => {
    const item = el('li', 'assistant');
    item.dataset.assistantId = assistant.id;
    if (assistant.id === assistants.editing) item.classList.add('editing');
    if (assistants.confirming === assistant.id) {
      item.dataset.mode = 'confirming';
      const yes = el('button', 'button danger small', 'Delete');
      yes.type = 'button';
      yes.dataset.action = 'confirm-delete-assistant';
      const no = el('button', 'button subtle small', 'Cancel');
      no.type = 'button';
      no.dataset.action = 'cancel-delete-assistant';
      item.append(el('span', 'confirm-text', `Delete “${assistant.name}”? Its messages keep its name.`), yes, no);
      return item;
    }
    const info = el('div', 'assistant-info');
    info.append(el('span', 'assistant-name', assistant.name));
    info.append(el('span', 'assistant-meta', assistant.model));
    if (assistant.instructions) info.append(el('span', 'assistant-instructions', assistant.instructions));
    const edit = el('button', 'icon-button');
    edit.type = 'button';
    edit.dataset.action = 'edit-assistant';
    edit.title = 'Edit';
    edit.setAttribute('aria-label', `Edit “${assistant.name}”`);
    edit.append(icon('pencil'));
    const remove = el('button', 'icon-button');
    remove.type = 'button';
    remove.dataset.action = 'delete-assistant';
    remove.title = 'Delete';
    remove.setAttribute('aria-label', `Delete “${assistant.name}”`);
    remove.append(icon('trash'));
    const actions = el('span', 'assistant-actions');
    actions.append(edit, remove);
    item.append(info, actions);
    return item;
  });
  els.assistantList.replaceChildren(...items);
  if (assistants.confirming) els.assistantList.querySelector('[data-action="cancel-delete-assistant"]')?.focus();
}

function act(action, id) {
  switch (action) {
    case 'edit-assistant':
      assistants.confirming = null;
      editInForm(id);
      break;
    case 'delete-assistant':
      assistants.confirming = id;
      renderManager();
      break;
    case 'cancel-delete-assistant':
      assistants.confirming = null;
      renderManager();
      break;
    case 'confirm-delete-assistant':
      remove(id);
      break;
    default:
      break;
  }
}

// Puts assistant `id` in the form to be changed, or (null) a new one.
function editInForm(id) {
  const assistant = id ? findAssistant(id) : null;
  assistants.editing = assistant ? assistant.id : null;
  els.assistantFormTitle.textContent = assistant ? `Edit “${assistant.name}”` : 'New assistant';
  els.assistantSave.textContent = assistant ? 'Save changes' : 'Create assistant';
  els.assistantCancel.hidden = !assistant;
  els.assistantName.value = assistant ? assistant.name : '';
  els.assistantInstructions.value = assistant ? assistant.instructions || '' : '';
  fillModels(assistant ? assistant.model : '');
  showFormProblem('');
  renderManager();
  els.assistantName.focus();
}

// What the form says, as the API takes it; a string when it cannot be sent.
function formBody() {
  const name = els.assistantName.value.trim();
  if (!name) return 'Give the assistant a name.';
  const length = [...name].length;
  if (length > NAME_MAX_CHARS) return `A name has at most ${NAME_MAX_CHARS} characters; this one has ${length}.`;
  if (/[\p{Cc}]/u.test(name)) return 'A name is a single line of text.';
  const instructions = els.assistantInstructions.value.trim() ? els.assistantInstructions.value : null;
  const body = { name, instructions };
  if (els.assistantModel.value) body.model = els.assistantModel.value;
  return body;
}

async function save() {
  const body = formBody();
  if (typeof body === 'string') {
    showFormProblem(body);
    els.assistantName.focus();
    return;
  }
  const editing = assistants.editing;
  const before = editing ? findAssistant(editing) : null;
  if (before) {
    // Only what changed is sent: a model the server has stopped offering, or
    // the assistant's own name, is no reason to refuse another change.
    for (const field of Object.keys(body)) {
      if (body[field] === (before[field] ?? null)) delete body[field];
    }
    if (Object.keys(body).length === 0) {
      editInForm(null);
      return;
    }
  } else if (body.instructions === null) {
    // A new assistant without instructions simply has none.
    delete body.instructions;
  }
  els.assistantSave.disabled = true;
  try {
    const saved = editing
      ? await api('PATCH', assistantPath(editing), body)
      : await api('POST', `${API}/assistants`, body);
    put(saved);
    editInForm(null);
  } catch (error) {
    if (error.status === 404 && editing) {
      forget(editing);
      showFormProblem('That assistant no longer exists (it was deleted elsewhere); the form now makes a new one.');
    } else {
      showFormProblem(saveProblem(error, body.name ?? before?.name));
    }
  } finally {
    els.assistantSave.disabled = false;
  }
}

function saveProblem(error, name) {
  switch (error.status) {
    case 409:
      return `You already have an assistant named “${name}”. Choose another name.`;
    case 422:
      return `That cannot be saved: ${sentence(error.message)}`;
    case 0:
      return sentence(error.message);
    default:
      return `The assistant was not saved: ${sentence(error.message)}`;
  }
}

async function remove(id) {
  assistants.confirming = null;
  showListProblem('');
  try {
    await api('DELETE', assistantPath(id));
  } catch (error) {
    if (error.status !== 404) {
      renderManager();
      showListProblem(`The assistant was not deleted: ${sentence(error.message)}`);
      return;
    }
  }
  forget(id);
}

function showFormProblem(text) {
  els.assistantProblem.textContent = text;
  els.assistantProblem.hidden = !text;
}

function showListProblem(text) {
  els.assistantsProblem.textContent = text;
  els.assistantsProblem.hidden = !text;
}
