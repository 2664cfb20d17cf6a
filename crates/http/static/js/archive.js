// Taking chats out and bringing them in: the selected chat exported as JSON
// (colloquy's own format, every branch, to import again) or Markdown (the
// branch on screen, to read), and a JSON file imported as a new chat: a
// colloquy export, one conversation of a ChatGPT data export, or the whole
// `conversations.json` of one (each conversation becomes a chat).
import { API, api, sessionPath } from './api.js';
import { select } from './chat.js';
import { els, showError } from './dom.js';
import { findSession, putSession, titleOf } from './sessions.js';
import { state } from './state.js';

const FORMATS = {
  json: { extension: 'json', what: 'JSON' },
  markdown: { extension: 'md', what: 'Markdown' },
};

export function initArchive() {
  els.exportToggle.addEventListener('click', () => showExportMenu(els.exportMenu.hidden));
  els.exportMenu.addEventListener('click', (event) => {
    const item = event.target.closest('[data-format]');
    if (item) download(item.dataset.format);
  });
  els.exportMenu.addEventListener('keydown', (event) => {
    const items = [...els.exportMenu.querySelectorAll('[data-format]')];
    const at = items.indexOf(document.activeElement);
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const step = event.key === 'ArrowDown' ? 1 : -1;
      items[(at + step + items.length) % items.length].focus();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      showExportMenu(false);
      els.exportToggle.focus();
    }
  });
  // A click anywhere else, or the focus leaving it, closes the menu.
  document.addEventListener('click', (event) => {
    if (!els.exportMenu.hidden && !els.exportBox.contains(event.target)) showExportMenu(false);
  });
  els.exportBox.addEventListener('focusout', (event) => {
    if (!els.exportBox.contains(event.relatedTarget)) showExportMenu(false);
  });

  els.importButton.addEventListener('click', () => {
    els.importFile.value = ''; // the same file can be picked again
    els.importFile.click();
  });
  els.importFile.addEventListener('change', () => {
    const [file] = els.importFile.files;
    if (file) importFile(file);
  });
}

function showExportMenu(open) {
  els.exportMenu.hidden = !open;
  els.exportToggle.setAttribute('aria-expanded', String(open));
  if (open) els.exportMenu.querySelector('[data-format]').focus();
}

// ----------------------------------------------------------------- export

async function download(format) {
  showExportMenu(false);
  const id = state.current;
  if (!id) return;
  const { extension, what } = FORMATS[format];
  els.exportToggle.disabled = true;
  try {
    const { blob, filename } = await api('GET', `${sessionPath(id)}/export?format=${format}`, undefined, { as: 'file' });
    save(blob, safeName(filename) || `${slug(titleOf(findSession(id)))}.${extension}`);
  } catch (error) {
    showError(`The chat could not be exported as ${what}`, error);
  } finally {
    els.exportToggle.disabled = false;
    els.exportToggle.focus();
  }
}

// Hands `blob` to the browser as a download named `name`.
function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The browser has what it needs once the download began.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// A file name that is only a name: no folders, no control characters.
function safeName(name) {
  return (name || '').replace(/[\u0000-\u001f\u007f/\\]+/g, '').replace(/^\.+/, '').trim();
}

// A chat's title as a file name: "Weekend trip to Lisbon" → "Weekend-trip-to-Lisbon".
function slug(title) {
  const words = title.replace(/[^\p{L}\p{N}]+/gu, '-').replace(/^-+|-+$/g, '');
  return [...words].slice(0, 80).join('') || 'chat';
}

// ----------------------------------------------------------------- import

async function importFile(file) {
  const name = `“${file.name}”`;
  if (file.size === 0) {
    showError(`${name} is empty: choose the JSON file of an exported chat`);
    return;
  }
  let parsed;
  try {
    parsed = JSON.parse(await file.text());
  } catch {
    showError(`${name} is not a JSON file: choose a chat exported from colloquy as JSON, or a ChatGPT export's conversations.json`);
    return;
  }
  // A ChatGPT data export's conversations.json holds every conversation:
  // each is imported as a chat of its own.
  const conversations = Array.isArray(parsed) ? parsed : [parsed];
  if (conversations.length === 0) {
    showError(`${name} holds no conversation to import`);
    return;
  }
  els.importButton.disabled = true;
  const imported = [];
  let failure = null;
  try {
    for (const [index, conversation] of conversations.entries()) {
      if (conversations.length > 1) els.importLabel.textContent = `Importing ${index + 1} of ${conversations.length}…`;
      else els.importLabel.textContent = 'Importing…';
      try {
        const session = await api('POST', `${API}/sessions/import`, conversation);
        putSession(session);
        imported.push(session);
      } catch (error) {
        failure = failure || error;
        // Nothing else would be imported either when the server cannot be reached.
        if (error.status === 0) break;
      }
    }
  } finally {
    els.importButton.disabled = false;
    els.importLabel.textContent = 'Import a chat…';
  }
  if (imported.length > 0) await select(imported[0].id);
  if (!failure) return;
  if (conversations.length === 1) {
    showError(importProblem(name, failure), failure.status === 413 ? undefined : failure);
  } else {
    const missed = conversations.length - imported.length;
    showError(`${missed} of the ${conversations.length} conversations in ${name} ${missed === 1 ? 'was' : 'were'} not imported`, failure);
  }
}

function importProblem(name, error) {
  switch (error.status) {
    case 413:
      return `${name} is too large to import`;
    case 400:
    case 422:
      return `${name} is not an export colloquy can read`;
    default:
      return `${name} was not imported`;
  }
}
