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
  search: $('search'),
  searchResults: $('search-results'),
  searchStatus: $('search-status'),
  hitList: $('hit-list'),
  moreHits: $('more-hits'),
  importButton: $('import'),
  importLabel: $('import-label'),
  importFile: $('import-file'),
  sessionList: $('session-list'),
  sessionsEmpty: $('sessions-empty'),
  moreSessions: $('more-sessions'),
  title: $('chat-title'),
  model: $('chat-model'),
  connection: $('connection'),
  exportBox: $('export'),
  exportToggle: $('export-toggle'),
  exportMenu: $('export-menu'),
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
  regenerate: 'M20 12a8 8 0 1 1-2.34-5.66M20 4v5h-5',
  left: 'M15 6l-6 6 6 6',
  right: 'M9 6l6 6-6 6',
  download: 'M12 4v11M7 10l5 5 5-5M5 20h14',
  upload: 'M12 20V9M7 14l5-5 5 5M5 4h14',
  search: 'M11 18a7 7 0 1 1 0-14 7 7 0 0 1 0 14zM16 16l4 4',
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
