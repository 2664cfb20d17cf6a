// Searching every chat: the field above the chat list, the messages that
// match (in place of the list while there is a query), and opening one of
// them: its chat, on the branch that holds it, scrolled to it.
import { API, api, sessionPath } from './api.js';
import { switchBranch } from './branches.js';
import { closeSidebar, select } from './chat.js';
import { el, els, formatTime, sentence, showError } from './dom.js';
import { reveal } from './messages.js';
import { findSession, putSession, titleOf } from './sessions.js';
import { state } from './state.js';

const HITS_PAGE = 20;
// Typing pauses this long before the search runs.
const TYPING_PAUSE_MS = 250;
// The server marks each matching word of a snippet «like this».
const MARKED = /«([^«»]*)»/g;

const search = {
  query: '', // what the hits shown were found for
  hits: [],
  hasMore: false,
  ticket: 0, // bumps with each search, so a stale answer is dropped
  timer: 0,
  opened: null, // the message of the hit opened last
};

export function initSearch() {
  els.search.addEventListener('input', () => {
    clearTimeout(search.timer);
    if (!els.search.value.trim()) {
      clearResults();
      return;
    }
    search.timer = setTimeout(() => run(false), TYPING_PAUSE_MS);
  });
  els.search.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      clearTimeout(search.timer);
      run(false);
    } else if (event.key === 'Escape' && els.search.value) {
      event.preventDefault();
      els.search.value = '';
      clearResults();
    } else if (event.key === 'ArrowDown') {
      const first = els.hitList.querySelector('[data-search-hit]');
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  els.hitList.addEventListener('click', (event) => {
    const hit = event.target.closest('[data-search-hit]');
    if (hit) openHit(hit.dataset.hitSession, hit.dataset.messageId);
  });
  els.hitList.addEventListener('keydown', (event) => {
    const hit = event.target.closest('[data-search-hit]');
    if (!hit) return;
    const hits = [...els.hitList.querySelectorAll('[data-search-hit]')];
    const at = hits.indexOf(hit);
    if (event.key === 'ArrowDown' && at < hits.length - 1) {
      event.preventDefault();
      hits[at + 1].focus();
    } else if (event.key === 'ArrowUp') {
      event.preventDefault();
      (at > 0 ? hits[at - 1] : els.search).focus();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      els.search.focus();
    }
  });
  els.moreHits.addEventListener('click', () => run(true));
}

function clearResults() {
  search.ticket += 1;
  search.query = '';
  search.hits = [];
  search.hasMore = false;
  els.sidebar.dataset.searching = 'false';
  els.searchResults.hidden = true;
  els.hitList.replaceChildren();
}

// Searches for what the field says; `more`: the next page of the same search.
async function run(more) {
  const query = more ? search.query : els.search.value.trim();
  if (!query) {
    clearResults();
    return;
  }
  const ticket = ++search.ticket;
  els.sidebar.dataset.searching = 'true';
  els.searchResults.hidden = false;
  els.searchResults.setAttribute('aria-busy', 'true');
  if (!more) els.searchStatus.textContent = 'Searching…';
  els.moreHits.disabled = true;
  const params = new URLSearchParams({ q: query, limit: String(HITS_PAGE) });
  const last = search.hits[search.hits.length - 1];
  if (more && last) params.set('after', last.message_id);
  let page;
  try {
    page = await api('GET', `${API}/search?${params}`);
  } catch (error) {
    if (ticket !== search.ticket) return;
    els.searchResults.removeAttribute('aria-busy');
    els.moreHits.disabled = false;
    // A query the server cannot take (too long, too many words) says why.
    els.searchStatus.textContent =
      error.status === 422 || error.status === 400 ? sentence(error.message) : `The search failed: ${sentence(error.message)}`;
    if (!more) {
      search.hits = [];
      renderHits();
    }
    return;
  }
  if (ticket !== search.ticket) return;
  search.query = query;
  search.hits = more ? search.hits.concat(page.data) : page.data;
  search.hasMore = page.has_more;
  els.searchResults.removeAttribute('aria-busy');
  els.moreHits.disabled = false;
  renderHits();
}

function renderHits() {
  const count = search.hits.length;
  els.searchStatus.textContent =
    count === 0
      ? `No message matches “${search.query}”.`
      : `${count}${search.hasMore ? '+' : ''} ${count === 1 ? 'message matches' : 'messages match'}`;
  els.hitList.replaceChildren(...search.hits.map(drawHit));
  els.moreHits.hidden = !search.hasMore;
}

function drawHit(hit) {
  const item = el('li');
  const button = el('button', 'hit');
  button.type = 'button';
  button.dataset.searchHit = '';
  button.dataset.messageId = hit.message_id;
  // Not `data-session-id`: that names the entries of the chat list.
  button.dataset.hitSession = hit.session_id;
  if (hit.message_id === search.opened) button.setAttribute('aria-current', 'true');
  const head = el('span', 'hit-head');
  const title = hit.session_title || titleOf(findSession(hit.session_id));
  head.append(el('span', 'hit-title', title));
  const who = hit.role === 'user' ? 'You' : 'Reply';
  head.append(el('span', 'hit-meta', `${who} · ${formatTime(hit.created_at)}`));
  const snippet = el('span', 'hit-snippet');
  markHits(snippet, hit.snippet || '');
  button.append(head, snippet);
  item.append(button);
  return item;
}

// The snippet as text, its «marked» words in <mark>: nothing in it is
// ever parsed as HTML.
function markHits(parent, snippet) {
  let last = 0;
  for (const match of snippet.matchAll(MARKED)) {
    if (match.index > last) parent.append(document.createTextNode(snippet.slice(last, match.index)));
    parent.append(el('mark', null, match[1]));
    last = match.index + match[0].length;
  }
  if (last < snippet.length) parent.append(document.createTextNode(snippet.slice(last)));
}

/**
 * Opens message `messageId` of session `sessionId`: selects the chat, puts
 * the branch holding the message on screen when it is not the one shown
 * (the session's active branch moves there), and scrolls to it.
 */
async function openHit(sessionId, messageId) {
  if (!findSession(sessionId)) {
    // An older chat than the list has loaded so far.
    try {
      putSession(await api('GET', sessionPath(sessionId)));
    } catch (error) {
      if (error.status === 404) showError('That chat no longer exists');
      else showError('That chat could not be opened', error);
      return;
    }
  }
  if (state.current !== sessionId) await select(sessionId);
  else closeSidebar();
  if (state.current !== sessionId || !state.ready) return; // it could not be loaded (and said so), or another was chosen
  if (!state.messages.has(messageId)) {
    let shown = false;
    try {
      shown = await switchBranch(messageId);
    } catch (error) {
      showError(error.status === 404 ? 'That message is no longer in its chat' : 'That message could not be opened', error.status === 404 ? undefined : error);
      return;
    }
    if (!shown) {
      showError('That message could not be shown: the chat changed meanwhile. Try again');
      return;
    }
  }
  search.opened = messageId;
  for (const hit of els.hitList.querySelectorAll('[data-search-hit]')) {
    if (hit.dataset.messageId === messageId) hit.setAttribute('aria-current', 'true');
    else hit.removeAttribute('aria-current');
  }
  reveal(messageId);
}
