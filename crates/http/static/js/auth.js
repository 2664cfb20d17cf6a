// The API key. A server with authentication on answers 401 until the page
// sends `Authorization: Bearer <key>`. The key is asked for in #api-key,
// checked against the server before it is kept, then kept in sessionStorage:
// this tab keeps it across reloads, other tabs never see it, and closing the
// tab forgets it. A server that authenticates nobody never answers 401, so
// the page never asks there.
import { el, els, sentence } from './dom.js';
import { API, request } from './http.js';

const KEY_STORAGE = 'colloquy.api-key';
// A bearer credential is visible ASCII without spaces; anything else could
// not even be put in a header.
const PLAUSIBLE_KEY = /^[\x21-\x7e]+$/;

const apiKey = {
  kept: readKey(),
  asking: null, // a promise that settles when a key is accepted
  accepted: null, // settles `asking`
};

/** The key this tab keeps ('' for none). */
export const keptKey = () => apiKey.kept;

function readKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return ''; // Storage switched off: the key lives as long as the page.
  }
}

function keepKey(key) {
  apiKey.kept = key;
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage switched off: the key lives as long as the page.
  }
  showKeyStatus();
}

export function showKeyStatus() {
  els.keyStatus.hidden = !apiKey.kept;
}

/**
 * Settles once a key the server accepts is kept. `refused` is the key the
 * refused request carried ('' for none); `detail` is what the server said.
 */
export function keyAccepted(refused, detail) {
  // A key accepted while that request was under way: retry with it.
  if (apiKey.kept && apiKey.kept !== refused) return Promise.resolve();
  if (!apiKey.asking) {
    // A refused key is no use to a later reload either.
    if (refused) keepKey('');
    apiKey.asking = new Promise((resolve) => {
      apiKey.accepted = resolve;
    });
    askForKey(refused ? detail : '');
  }
  return apiKey.asking;
}

function askForKey(refusedDetail) {
  els.keyTitle.textContent = refusedDetail ? 'Your API key was refused' : 'This server asks for an API key';
  showKeyProblem(refusedDetail ? 'The server refused the key' : '', refusedDetail);
  els.apiKey.value = '';
  els.apiKey.disabled = false;
  els.keySave.disabled = false;
  els.keySave.textContent = 'Use this key';
  // A modal dialog would keep the key field out of reach: the request that
  // needs the key carries on once it is given.
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  // The chat behind is out of reach until a key is accepted: nothing there
  // works without one.
  els.layout.inert = true;
  els.keyGate.hidden = false;
  els.apiKey.focus();
}

function showKeyProblem(what, detail) {
  els.keyProblem.replaceChildren();
  if (!what) {
    els.keyProblem.hidden = true;
    return;
  }
  els.keyProblem.append(el('strong', null, sentence(what)));
  if (detail) els.keyProblem.append(' ', el('span', null, sentence(detail)));
  els.keyProblem.hidden = false;
}

export async function tryKey() {
  const key = els.apiKey.value.trim();
  if (!key) {
    showKeyProblem('Paste a key first');
    return;
  }
  if (!PLAUSIBLE_KEY.test(key)) {
    showKeyProblem('That is not a key', 'a key has no spaces and only plain letters, digits and punctuation; check what was pasted');
    return;
  }
  els.apiKey.disabled = true;
  els.keySave.disabled = true;
  els.keySave.textContent = 'Checking…';
  let problem = null;
  try {
    await request('GET', `${API}/me`, undefined, key);
  } catch (error) {
    problem = error;
  }
  els.apiKey.disabled = false;
  els.keySave.disabled = false;
  els.keySave.textContent = 'Use this key';
  if (problem) {
    showKeyProblem(problem.status === 401 ? 'The server refused that key' : 'The key could not be checked', problem.message);
    els.apiKey.focus();
    els.apiKey.select();
    return;
  }
  keepKey(key);
  els.apiKey.value = '';
  els.keyGate.hidden = true;
  els.layout.inert = false;
  const accepted = apiKey.accepted;
  apiKey.asking = null;
  apiKey.accepted = null;
  if (accepted) accepted();
  els.composer.focus();
}

// Forgetting the key also forgets everything it showed: the page starts
// over, and the server asks for a key again.
export function forgetKey() {
  keepKey('');
  location.replace(location.pathname);
}
