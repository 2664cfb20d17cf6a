// One message drawn as an <article>: its author, status, tool calls, text
// and what went wrong. Readable text with ``` fenced code blocks kept exactly
// as written; everything becomes text nodes, so the model's output is never
// parsed as HTML.
import { el, formatTime, icon, sentence } from './dom.js';

const STATUS_WORDS = {
  streaming: 'writing…',
  cancelled: 'stopped',
  failed: 'failed',
  interrupted: 'interrupted',
};

const ERROR_WORDS = {
  upstream_rate_limited: 'The model provider is limiting requests right now. Try again in a moment.',
  upstream_unavailable: 'The model server could not be reached or had a problem.',
  upstream_timeout: 'The model took too long to answer.',
  upstream_protocol_error: 'The model server sent a reply that could not be understood.',
  upstream_rejected: 'The model provider refused the request (check the API key, the model name and the message).',
  internal: 'Something went wrong on the server.',
};

/** Who wrote `message`, as its author label says. */
export function authorOf(message) {
  if (message.role === 'user') return 'You';
  return message.name || 'colloquy';
}

/**
 * Draws `message` into `view`. `waiting`: a reply of this turn that has not
 * begun, because an earlier one of the same turn is still being written.
 * `locked`: its actions are shown disabled (a reply is being written, or
 * another branch is being put on screen). `editor`: the form it is being
 * edited in, shown in place of its text.
 */
export function drawMessage(view, message, { waiting = false, locked = false, editor = null } = {}) {
  view.dataset.role = message.role;
  view.dataset.status = message.status;
  view.dataset.messageId = message.id;
  if (message.role === 'assistant' && message.name) view.dataset.assistantName = message.name;
  else delete view.dataset.assistantName;
  // Assistive technology waits for a reply to finish before reading it.
  view.setAttribute('aria-busy', String(message.status === 'streaming'));

  const head = el('div', 'message-head');
  const author = el('span', 'author', authorOf(message));
  if (message.name) author.classList.add('named');
  head.append(author);
  const badge = message.retrying ? 'retrying' : waiting ? 'waiting' : message.status;
  const words = { retrying: 'retrying…', waiting: 'waiting its turn…' }[badge] || STATUS_WORDS[badge];
  if (words) {
    const tag = el('span', 'badge', words);
    tag.dataset.badge = badge;
    head.append(tag);
  }
  const time = el('time', 'time', formatTime(message.created_at));
  time.dateTime = message.created_at || '';
  head.append(time);

  const body = el('div', 'message-body');
  renderText(body, message.content || '');
  if (message.status === 'streaming' && !waiting) {
    if (!message.content) body.append(typingDots());
    else body.classList.add('streaming');
  }

  const parts = [head];
  if (message.tool_calls && message.tool_calls.length) parts.push(toolCalls(message.tool_calls));
  parts.push(body);

  if (message.status === 'failed' || message.status === 'interrupted') {
    const problem = el('div', 'message-error');
    const code = message.error && message.error.code;
    const what =
      message.status === 'interrupted'
        ? 'The server stopped while this reply was being written; the text so far is kept.'
        : ERROR_WORDS[code] || 'The reply could not be completed.';
    problem.append(el('strong', null, what));
    if (message.error && message.error.message) problem.append(el('span', 'error-detail', sentence(message.error.message)));
    parts.push(problem);
  } else if (message.status === 'cancelled') {
    // The rest of a stopped turn ends cancelled before it said anything.
    const note = message.content ? 'Stopped. The text so far is kept.' : 'Stopped before it began.';
    parts.push(el('div', 'message-note', note));
  }
  if (editor) {
    body.hidden = true;
    parts.push(editor);
  } else {
    const actions = messageActions(message, locked);
    if (actions) parts.push(actions);
  }
  view.replaceChildren(...parts);
}

// What can be done with a message: regenerate a reply, edit a question, and
// go to another version of it (a sibling) when it has some. A reply being
// written can only show where it stands among its versions.
function messageActions(message, locked) {
  const row = el('div', 'message-actions');
  const siblings = message.siblings;
  if (siblings && Array.isArray(siblings.ids) && siblings.ids.length > 1) {
    row.append(siblingSwitcher(siblings, locked));
  }
  if (message.status !== 'streaming') {
    if (message.role === 'assistant') {
      row.append(actionButton('regenerate', 'regenerate', 'Regenerate', 'Ask for another reply; this one stays as an earlier version', locked));
    } else if (message.role === 'user') {
      row.append(actionButton('edit', 'pencil', 'Edit', 'Edit this message and ask again; the original stays as an earlier version', locked));
    }
  }
  return row.childElementCount > 0 ? row : null;
}

// "2 / 3" between buttons to the previous and the next version.
function siblingSwitcher({ ids, index }, locked) {
  const place = `${index + 1} / ${ids.length}`;
  const nav = el('nav', 'siblings');
  nav.dataset.siblings = place;
  nav.setAttribute('aria-label', `Version ${index + 1} of ${ids.length}`);
  const prev = switchButton('prev', 'left', 'Previous version', index <= 0, locked);
  const next = switchButton('next', 'right', 'Next version', index >= ids.length - 1, locked);
  nav.append(prev, el('span', 'siblings-place', place), next);
  return nav;
}

function switchButton(action, iconName, label, atEnd, locked) {
  const button = el('button', 'icon-button small');
  button.type = 'button';
  button.dataset.action = action;
  button.dataset.lockable = '';
  if (atEnd) button.dataset.end = 'true';
  button.disabled = atEnd || locked;
  button.title = label;
  button.setAttribute('aria-label', label);
  button.append(icon(iconName));
  return button;
}

function actionButton(action, iconName, text, title, locked) {
  const button = el('button', 'message-action');
  button.type = 'button';
  button.dataset.action = action;
  button.dataset.lockable = '';
  button.disabled = locked;
  button.title = title;
  button.append(icon(iconName), el('span', null, text));
  return button;
}

function typingDots() {
  const dots = el('span', 'typing');
  dots.setAttribute('aria-label', 'writing');
  dots.append(el('span'), el('span'), el('span'));
  return dots;
}

function toolCalls(calls) {
  const box = el('div', 'tool-calls');
  for (const call of calls) {
    const details = el('details', 'tool-call');
    const failed = Boolean(call.error);
    details.append(el('summary', null, `${failed ? 'Tool failed' : 'Used tool'}: ${call.name}`));
    const lines = [`arguments: ${JSON.stringify(call.arguments, null, 2)}`];
    if (call.result !== null && call.result !== undefined) lines.push(`result: ${JSON.stringify(call.result, null, 2)}`);
    if (failed) lines.push(`error: ${call.error}`);
    details.append(el('pre', null, lines.join('\n')));
    box.append(details);
  }
  return box;
}

function renderText(container, text) {
  const lines = text.split('\n');
  let paragraph = [];
  let code = null;
  const flush = () => {
    if (paragraph.length === 0) return;
    const p = el('p');
    inline(p, paragraph.join('\n'));
    container.append(p);
    paragraph = [];
  };
  for (const line of lines) {
    if (code) {
      const closing = line.match(/^\s*(`{3,}|~{3,})\s*$/);
      if (closing && closing[1][0] === code.fence[0] && closing[1].length >= code.fence.length) {
        container.append(codeBlock(code.language, code.lines.join('\n')));
        code = null;
      } else {
        code.lines.push(line);
      }
      continue;
    }
    const opening = line.match(/^\s{0,3}(`{3,}|~{3,})\s*([^`\s]*)/);
    if (opening) {
      flush();
      code = { fence: opening[1], language: opening[2], lines: [] };
    } else if (line.trim() === '') {
      flush();
    } else {
      paragraph.push(line);
    }
  }
  flush();
  // A block still being written (or never closed) shows as code all the same.
  if (code) container.append(codeBlock(code.language, code.lines.join('\n')));
}

// `code` spans and **bold**, the rest as it is (line breaks kept by CSS).
function inline(parent, text) {
  const pattern = /`([^`\n]+)`|\*\*([^*\n]+)\*\*/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    parent.append(match[1] !== undefined ? el('code', null, match[1]) : el('strong', null, match[2]));
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function codeBlock(language, source) {
  const block = el('div', 'code-block');
  const head = el('div', 'code-head');
  head.append(el('span', 'code-language', language || 'code'));
  const copy = el('button', 'copy', 'Copy');
  copy.type = 'button';
  copy.dataset.action = 'copy';
  copy.prepend(icon('copy'));
  head.append(copy);
  const pre = el('pre');
  pre.append(el('code', null, source));
  block.append(head, pre);
  return block;
}

/** Copies a code block's text for its Copy button, and says how that went. */
export async function copyCode(button) {
  const code = button.closest('.code-block').querySelector('code').textContent;
  try {
    await navigator.clipboard.writeText(code);
    button.lastChild.textContent = 'Copied';
  } catch {
    button.lastChild.textContent = 'Copy failed';
  }
  setTimeout(() => {
    button.lastChild.textContent = 'Copy';
  }, 1500);
}
