// The one event stream of the page, on the selected chat's events.
//
// The page opens every event stream itself, and reopens it itself. An
// EventSource cannot send `Authorization`, so each connection first asks for
// a stream token with the page's credentials and opens
// `…/events?token=…&last_event_id=…`. A server that authenticates nobody
// hands out tokens as well and ignores them, so the page does the same
// everywhere. When a stream errors, the page closes it rather than let the
// browser reconnect: the browser would reuse the old URL, whose token has
// expired after COLLOQUY_STREAM_TOKEN_SECS (the server then refuses it and
// the browser gives up) or means nothing to a restarted server.
import { api, sessionPath } from './api.js';
import { els } from './dom.js';

const EVENT_NAMES = [
  'message.created',
  'message.delta',
  'message.completed',
  'message.failed',
  'message.reset',
  'message.tool_call',
  'session.updated',
  'stream.resync',
];
// Waits before reopening an event stream that dropped: the first, and the
// longest after failures in a row.
const RECONNECT_FIRST = 1000;
const RECONNECT_LAST = 15000;

const stream = {
  id: null, // the session whose events these are
  handlers: null, // what to do with them (see `openEvents`)
  source: null, // the EventSource
  lastEventId: '',
  opened: Promise.resolve(), // settles when the event stream is open
  attempt: 0, // bumps with each connection, so a late stream token is dropped
  reconnectTimer: 0,
  reconnectDelay: RECONNECT_FIRST,
};

/** Settles once the stream is open (or has failed to open, or after 5 s). */
export const opened = () => stream.opened;

function setConnection(connection) {
  els.connection.dataset.state = connection;
  els.connection.textContent = { live: 'live', reconnecting: 'reconnecting…', offline: 'offline', idle: '' }[connection];
  els.connection.title = {
    live: 'Receiving this chat’s events',
    reconnecting: 'The connection dropped; reconnecting',
    offline: 'Not connected; retrying',
    idle: '',
  }[connection];
}

export function closeEvents() {
  clearTimeout(stream.reconnectTimer);
  stream.attempt += 1; // a connection still getting its token is dropped
  if (stream.source) stream.source.close();
  stream.source = null;
  stream.id = null;
  stream.lastEventId = '';
  setConnection('idle');
}

/**
 * Listens to session `id`'s events from now on, until `closeEvents`:
 * - `handlers.event(name, data)` for each event but `stream.resync`;
 * - `handlers.resync()` when the server no longer keeps events this page missed;
 * - `handlers.reconnected()` when a stream that dropped is open again: the
 *   stored history may know what the events could not tell;
 * - `handlers.gone(resumed)` when the server knows no such session (`resumed`:
 *   it was known before the stream dropped).
 */
export function openEvents(id, handlers) {
  closeEvents();
  stream.id = id;
  stream.handlers = handlers;
  connect(false);
}

// Opens the stream from the last event seen (none for a session just
// selected). `resumed`: this replaces a stream that dropped.
async function connect(resumed) {
  clearTimeout(stream.reconnectTimer);
  const attempt = ++stream.attempt;
  const { id, handlers } = stream;
  let settle;
  stream.opened = new Promise((resolve) => {
    settle = resolve;
    setTimeout(resolve, 5000);
  });
  let token;
  try {
    ({ token } = await api('POST', `${sessionPath(id)}/stream-token`));
  } catch (error) {
    if (attempt !== stream.attempt) return;
    settle();
    if (error.status === 404) {
      handlers.gone(resumed);
    } else {
      setConnection('offline');
      reconnectLater();
    }
    return;
  }
  if (attempt !== stream.attempt) return;

  const query = new URLSearchParams({ token });
  if (stream.lastEventId) query.set('last_event_id', stream.lastEventId);
  const source = new EventSource(`${sessionPath(id)}/events?${query}`);
  stream.source = source;
  let open = false;
  source.addEventListener('open', () => {
    if (stream.source !== source) return;
    open = true;
    setConnection('live');
    stream.reconnectDelay = RECONNECT_FIRST;
    settle();
    if (resumed) handlers.reconnected();
  });
  source.addEventListener('error', () => {
    if (stream.source !== source) return;
    source.close();
    stream.source = null;
    settle();
    // Dropped after it was live, or refused outright (a restarting server,
    // a token it no longer knows, a chat that is gone).
    setConnection(open ? 'reconnecting' : 'offline');
    reconnectLater();
  });
  for (const name of EVENT_NAMES) {
    source.addEventListener(name, (event) => {
      if (stream.source !== source) return;
      if (event.lastEventId) stream.lastEventId = event.lastEventId;
      if (name === 'stream.resync') {
        handlers.resync();
        return;
      }
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      handlers.event(name, data);
    });
  }
}

// Waits, longer after each failure in a row (with jitter, so the tabs of a
// restarted server do not all come back at once), then connects anew.
function reconnectLater() {
  clearTimeout(stream.reconnectTimer);
  const delay = stream.reconnectDelay;
  stream.reconnectDelay = Math.min(delay * 2, RECONNECT_LAST);
  stream.reconnectTimer = setTimeout(() => connect(true), delay * (0.75 + Math.random() / 2));
}
