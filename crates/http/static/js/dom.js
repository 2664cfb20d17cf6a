// The page's fixed elements, and the small helpers every module draws with.
// Text from the server always goes into the DOM as text nodes: nothing here
// parses HTML.

const $ = (id) => document.getElementById(id);

export const els = {
  layout: $('layout'),
  sidebar: $('sidebar'),
  scrim: $('scrim'),
  toggleSidebar: $('toggle-sidebar'),
  newSession: $('new-session'),
  sessionList: $('session-list'),
  sessionsEmpty: $('sessions-empty'),
  moreSessions: $('more-sessions'),
  title: $('chat-title'),
  model: $('chat-model'),
  connection: $('connection'),
  banner: $('banner'),
  bannerText: $('banner-text'),
  bannerClose: $('banner-close'),
  messages: $('messages'),
  welcome: $('welcome'),
  messageList: $('message-list'),
  form: $('composer-form'),
  composer: $('composer'),
  send: $('send'),
  stop: $('stop'),
  discuss: $('discuss'),
  voices: $('voices'),
  voicesHint: $('voices-hint'),
  assistantChoices: $('assistant-choices'),
  manageAssistants: $('manage-assistants'),
  assistantsDialog: $('assistants'),
  assistantsClose: $('assistants-close'),
  assistantsEmpty: $('assistants-empty'),
  assistantsProblem: $('assistants-problem'),
  assistantList: $('assistant-list'),
  assistantForm: $('assistant-form'),
  assistantFormTitle: $('assistant-form-title'),
  assistantName: $('assistant-name'),
  assistantInstructions: $('assistant-instructions'),
  assistantModel: $('assistant-model'),
  assistantProblem: $('assistant-problem'),
  assistantSave: $('assistant-save'),
  assistantCancel: $('assistant-cancel'),
  keyGate: $('key-gate'),
  keyForm: $('key-form'),
  keyTitle: $('key-title'),
  apiKey: $('api-key'),
  keyProblem: $('key-problem'),
  keySave: $('key-save'),
  keyStatus: $('key-status'),
  forgetKey: $('forget-key'),
};

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const ICONS = {
  pencil: 'M4 20h4L19 9l-4-4L4 16v4zM14 6l4 4',
  trash: 'M5 7h14M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
  copy: 'M9 9h11v11H9zM5 15H4V4h11v1',
};

export function icon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

// Problem details come with `field` names in backticks: say them plainly.
export function sentence(text) {
  const plain = String(text).replace(/`/g, '').trim();
  if (!plain) return '';
  const capital = plain[0].toUpperCase() + plain.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

let bannerTimer = 0;

export function showError(what, error) {
  const detail = error ? sentence(error.message || String(error)) : '';
  els.bannerText.textContent = detail ? `${what}: ${detail}` : sentence(what);
  els.banner.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(hideBanner, 12000);
}

export function hideBanner() {
  clearTimeout(bannerTimer);
  els.banner.hidden = true;
}

export function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
    : date.toLocaleDateString([], { month: 'short', day: 'numeric' });
}
