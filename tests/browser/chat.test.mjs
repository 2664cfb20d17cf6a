// The web chat page, driven the way a person uses it: Debian's Chromium
// (through playwright-core) against the real `colloquy` binary, serving a
// fresh SQLite file with the built-in offline model, which streams its reply
// word by word at a pace a person can watch (about two seconds a reply).
// Four times: against a server that authenticates nobody, against one with
// API keys (`COLLOQUY_AUTH=keys`, keys made with `colloquy keys create`),
// against one where the user makes assistants and has them answer in turn,
// and against one where a conversation branches (a reply regenerated, a
// question edited, versions stepped through) and chats are searched,
// exported and imported.
//
//   node --test chat.test.mjs
//
// COLLOQUY_BIN (default target/debug/colloquy), CHROMIUM (default
// /usr/bin/chromium) and SCREENSHOT (default tests/browser/output/screenshot.png)
// can be set. The servers' logs (server-anonymous.log, server-keys.log,
// server-assistants.log, server-branches.log) and the screenshots are kept in
// tests/browser/output/.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, 'target');
const BIN = process.env.COLLOQUY_BIN || join(targetDir, 'debug', 'colloquy');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUTPUT = join(here, 'output');
const SCREENSHOT = process.env.SCREENSHOT ? resolve(process.env.SCREENSHOT) : join(OUTPUT, 'screenshot.png');
const MAX_CHARS = 2000;
// The offline model ends every reply with these words.
const REPLY_END = 'LM Studio.';
// Stream tokens of the keyed server die after this: shorter than a reply, so
// the test sees a stream outlive its token.
const STREAM_TOKEN_SECS = 1;

mkdirSync(OUTPUT, { recursive: true });
for (const name of readdirSync(OUTPUT)) {
  if (name.startsWith('failure')) rmSync(join(OUTPUT, name), { force: true });
}
const work = mkdtempSync(join(tmpdir(), 'colloquy-browser-'));
after(() => rmSync(work, { recursive: true, force: true }));

async function until(check, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}${last ? ` (${last.message})` : ''}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

/**
 * The real binary on a free port and a fresh database of its own,
 * restartable in place. `env` adds to the server's environment; `key`, when
 * set, is sent as the bearer credential of `api()`.
 */
class Server {
  constructor(port, { name, env = {} }) {
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.env = env;
    this.database = join(work, `${name}.db`);
    this.logPath = join(OUTPUT, `server-${name}.log`);
    this.log = createWriteStream(this.logPath);
    this.key = '';
  }

  environment() {
    const env = { ...process.env };
    for (const name of Object.keys(env)) {
      if (name.startsWith('OPENAI_') || name.startsWith('COLLOQUY_')) delete env[name];
    }
    return Object.assign(env, {
      COLLOQUY_LLM: 'offline',
      DATABASE_URL: this.database,
      COLLOQUY_MAX_MESSAGE_CHARS: String(MAX_CHARS),
      // A stop stores a running reply `interrupted` at once.
      COLLOQUY_SHUTDOWN_GRACE_SECS: '0',
      RUST_LOG: 'info',
      ...this.env,
    });
  }

  async start() {
    // The work directory as the current one: no stray .env is read.
    this.child = spawn(BIN, ['serve', '--addr', `127.0.0.1:${this.port}`], {
      cwd: work,
      env: this.environment(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout.pipe(this.log, { end: false });
    this.child.stderr.pipe(this.log, { end: false });
    // `close` comes after the output is read to its end.
    this.exited = new Promise((done) => this.child.once('close', (code, signal) => done({ code, signal })));
    const spawned = await Promise.race([
      until(async () => (await fetch(`${this.url}/healthz`)).ok, 'the server answers /healthz', 30_000),
      this.exited.then(({ code }) => {
        throw new Error(`${BIN} exited with ${code}; see ${this.logPath}`);
      }),
    ]);
    return spawned;
  }

  async stop(signal = 'SIGTERM') {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await this.exited;
  }

  /** What the server has logged so far (all of it, once it has stopped). */
  async logText() {
    await new Promise((done) => this.log.write('', done));
    return readFileSync(this.logPath, 'utf8');
  }

  /** `colloquy ARGS…` on this server's database, as an operator runs it: its output. */
  async colloquy(...args) {
    const { stdout } = await promisify(execFile)(BIN, args, { cwd: work, env: this.environment() });
    return stdout;
  }

  /** A new API key for `principal`, from `colloquy keys create`: the key alone is its last line. */
  async createKey(principal, label) {
    const lines = (await this.colloquy('keys', 'create', '--principal', principal, '--label', label)).trim().split('\n');
    return lines[lines.length - 1].trim();
  }

  async keyId(label) {
    const keys = JSON.parse(await this.colloquy('keys', 'list', '--json'));
    return keys.find((key) => key.label === label).id;
  }

  async api(method, path, body) {
    const headers = body === undefined ? {} : { 'Content-Type': 'application/json' };
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  async history(sessionId) {
    const { status, body } = await this.api('GET', `/api/v1/sessions/${sessionId}/messages`);
    assert.equal(status, 200);
    return body.data;
  }
}

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
});
after(() => browser?.close().catch(() => {}));

/**
 * A tab of a new browser profile, watched: script errors and console errors
 * are collected, and `step(name, body)` runs a subtest that screenshots the
 * tab when it fails (and skips the steps after it).
 */
async function openTab(t, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light', locale: 'en-US' });
  t.after(() => context.close().catch(() => {}));
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  const consoleErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (entry) => {
    // Failed requests are logged by the browser itself (the 422 the page
    // shows on purpose, the 401s that make it ask for a key, the events
    // stream while the server restarts).
    if (entry.type() === 'error' && !entry.text().startsWith('Failed to load resource')) consoleErrors.push(entry.text());
  });
  let failed = false;
  const step = (title, body) =>
    t.test(title, { skip: failed ? 'an earlier step failed' : false }, async () => {
      try {
        await body();
      } catch (error) {
        failed = true;
        await page.screenshot({ path: join(OUTPUT, `failure-${name}.png`) }).catch(() => {});
        throw error;
      }
    });
  return { context, page, step, pageErrors, consoleErrors };
}

// What the page shows of each message, in order.
function rendered(page) {
  return page.$$eval('#message-list article', (articles) =>
    articles.map((article) => ({
      id: article.dataset.messageId,
      role: article.dataset.role,
      status: article.dataset.status,
      text: article.querySelector('.message-body').textContent,
      name: article.dataset.assistantName ?? null,
    })),
  );
}

// Records every state each assistant message goes through, as the page draws it.
function recordAssistantStates(page) {
  return page.evaluate(() => {
    window.__states = [];
    const last = new Map();
    const record = () => {
      for (const article of document.querySelectorAll('#message-list article[data-role="assistant"]')) {
        const state = {
          id: article.dataset.messageId,
          status: article.dataset.status,
          text: article.querySelector('.message-body').textContent,
        };
        const key = `${state.status}\u0000${state.text}`;
        if (last.get(state.id) !== key) {
          last.set(state.id, key);
          window.__states.push(state);
        }
      }
    };
    window.__observer?.disconnect();
    window.__observer = new MutationObserver(record);
    window.__observer.observe(document.getElementById('message-list'), {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
    record();
  });
}

async function send(page, text) {
  await page.locator('#composer').fill(text);
  await page.locator('#composer').press('Enter');
}

// The newest assistant message once it streams some text: its id.
async function streamingReply(page, minChars = 1) {
  const handle = await page.waitForFunction((min) => {
    const articles = document.querySelectorAll('#message-list article[data-role="assistant"][data-status="streaming"]');
    const article = articles[articles.length - 1];
    return article && article.querySelector('.message-body').textContent.trim().length >= min && article.dataset.messageId;
  }, minChars);
  return handle.jsonValue();
}

async function newestAssistantId(page) {
  return page.locator('#message-list article[data-role="assistant"]').last().getAttribute('data-message-id');
}

const message = (page, id) => page.locator(`#message-list article[data-message-id="${id}"]`);
const entry = (page, id) => page.locator(`#session-list [data-session-id="${id}"]`);

test('a person chats with colloquy in a browser', { timeout: 300_000 }, async (t) => {
  const server = new Server(await freePort(), { name: 'anonymous' });
  await server.start();
  t.after(() => server.stop('SIGKILL'));
  const { page, step, pageErrors, consoleErrors } = await openTab(t, 'anonymous');
  const eventRequests = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.endsWith('/events')) {
      eventRequests.push(request.allHeaders().then((headers) => ({ url: request.url(), headers, at: Date.now() })));
    }
  });

  let first; // the session of the main conversation
  let beforeReload;

  await step('the page is served from the binary with a strict policy', async () => {
    const response = await page.goto(server.url);
    assert.equal(response.status(), 200);
    const headers = response.headers();
    assert.equal(headers['content-type'], 'text/html; charset=utf-8');
    assert.match(headers['content-security-policy'], /^default-src 'self';/);
    assert.doesNotMatch(headers['content-security-policy'], /unsafe/);
    assert.equal(headers['cache-control'], 'no-cache');
    await page.locator('#welcome').waitFor();
    assert.equal(await page.locator('[data-session-id]').count(), 0, 'a fresh database has no sessions');
    for (const hook of ['#composer', '#send', '#new-session']) assert.ok(await page.locator(hook).isVisible(), hook);
    assert.equal(await page.locator('#stop').isVisible(), false, 'no stop button while nothing streams');
    assert.equal(await page.locator('#api-key').isVisible(), false, 'a server that authenticates nobody asks for no key');
    assert.equal(await page.locator('#key-status').isVisible(), false);
  });

  await step('a new chat is created and selected', async () => {
    await page.locator('#new-session').click();
    await page.locator('#session-list [data-session-id]').first().waitFor();
    first = await page.locator('#session-list [data-session-id]').first().getAttribute('data-session-id');
    assert.equal(await entry(page, first).getAttribute('aria-current'), 'true');
    assert.equal(await page.evaluate(() => location.hash), `#${first}`);
    assert.equal((await server.api('GET', `/api/v1/sessions/${first}`)).status, 200);
    await page.locator('#connection[data-state="live"]').waitFor();
  });

  await step('a message is sent with Enter and the reply streams in, then completes', async () => {
    await recordAssistantStates(page);
    await send(page, 'Hello there! Who are you?');
    await page.locator('#message-list article[data-role="user"]', { hasText: 'Hello there! Who are you?' }).waitFor();
    const replyId = await streamingReply(page);
    assert.ok(await page.locator('#stop').isVisible(), 'the stop button shows while the reply streams');
    assert.equal(await page.locator('#composer').inputValue(), '', 'the composer is cleared once the message is accepted');
    await message(page, replyId).and(page.locator('[data-status="complete"]')).waitFor();
    await page.locator('#send').waitFor();
    assert.equal(await page.locator('#stop').isVisible(), false);

    const stored = await server.history(first);
    assert.deepEqual(
      stored.map((m) => [m.role, m.status]),
      [
        ['user', 'complete'],
        ['assistant', 'complete'],
      ],
    );
    const shown = await rendered(page);
    assert.deepEqual(
      shown.map((m) => [m.id, m.role, m.status]),
      stored.map((m) => [m.id, m.role, m.status]),
    );
    assert.equal(shown[1].text, stored[1].content);
    assert.ok(stored[1].content.endsWith(REPLY_END));

    const states = (await page.evaluate(() => window.__states)).filter((s) => s.id === replyId);
    const partial = [...new Set(states.filter((s) => s.status === 'streaming' && s.text.trim()).map((s) => s.text))];
    assert.ok(partial.length >= 2, `the reply is drawn as it streams (saw ${partial.length} partial texts)`);
    for (const text of partial) assert.ok(stored[1].content.startsWith(text), `"${text}" is a beginning of the reply`);
    assert.equal(states[states.length - 1].status, 'complete');

    // Whatever title the server gives the chat after its first reply, the list shows it.
    await until(async () => {
      const { body: session } = await server.api('GET', `/api/v1/sessions/${first}`);
      return (await entry(page, first).locator('.session-title').textContent()) === (session.title || 'New chat');
    }, 'the list shows the session\'s title');
  });

  await step('a streaming reply is stopped and keeps its text', async () => {
    await send(page, 'Please tell me a very long story about a lighthouse keeper and the sea.');
    const replyId = await streamingReply(page);
    await page.locator('#stop').click();
    await message(page, replyId).and(page.locator('[data-status="cancelled"]')).waitFor();
    await page.locator('#send').waitFor();
    const stored = (await server.history(first)).find((m) => m.id === replyId);
    assert.equal(stored.status, 'cancelled');
    assert.ok(stored.content.length > 0, 'the text so far is kept');
    assert.ok(!stored.content.endsWith(REPLY_END), 'the reply was stopped before its end');
    const shown = (await rendered(page)).find((m) => m.id === replyId);
    assert.equal(shown.text, stored.content);
    assert.ok(await message(page, replyId).getByText('Stopped. The text so far is kept.').isVisible());
  });

  await step('HTML in messages and replies is shown as text, never run', async () => {
    const attack = '<img src=x onerror="window.__pwned=1"> <b>bold?</b> <script>window.__pwned=2</script>';
    await send(page, attack);
    await streamingReply(page);
    const replyId = await newestAssistantId(page);
    await message(page, replyId).and(page.locator('[data-status="complete"]')).waitFor();
    assert.equal(await page.locator('#message-list img, #message-list script, #message-list b').count(), 0);
    assert.ok((await message(page, replyId).textContent()).includes('<img src=x'));
    assert.ok((await page.locator('#message-list article[data-role="user"]').last().textContent()).includes(attack));
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  });

  await step('an error is shown in plain words and the text is kept', async () => {
    const before = await page.locator('#message-list article').count();
    const tooLong = 'x'.repeat(MAX_CHARS + 1);
    await send(page, tooLong);
    await page.locator('#banner').waitFor();
    const words = await page.locator('#banner').textContent();
    assert.match(words, /Your message was not sent/);
    assert.ok(words.includes(`is ${MAX_CHARS + 1} characters long; at most ${MAX_CHARS} are allowed`), words);
    assert.doesNotMatch(words, /[`{}]/, 'no JSON, no markup');
    assert.equal(await page.locator('#composer').inputValue(), tooLong, 'nothing typed is lost');
    assert.equal(await page.locator('#message-list article').count(), before);
    await page.locator('#banner-close').click();
    await page.locator('#banner').waitFor({ state: 'hidden' });
    await page.locator('#composer').fill('');
  });

  await step('after a reload the history is the same', async () => {
    beforeReload = await rendered(page);
    assert.equal(beforeReload.length, 6);
    await page.reload();
    await until(async () => (await page.locator('#message-list article').count()) === beforeReload.length, 'the history is drawn');
    assert.deepEqual(await rendered(page), beforeReload);
    assert.equal(await entry(page, first).getAttribute('aria-current'), 'true');
    await page.locator('#connection[data-state="live"]').waitFor();
  });

  await step('the page reconnects by itself when the server restarts, resuming from the last event', async () => {
    await send(page, 'Are you still there if the server restarts?');
    const replyId = await streamingReply(page);
    await server.stop('SIGTERM');
    const restartedAt = Date.now();
    await server.start();
    await page.locator('#connection[data-state="live"]').waitFor({ timeout: 30_000 });
    // The reply the stop cut short is stored, and shown, as interrupted.
    await message(page, replyId).and(page.locator('[data-status="interrupted"]')).waitFor();
    const stored = (await server.history(first)).find((m) => m.id === replyId);
    assert.equal(stored.status, 'interrupted');
    assert.ok(stored.content.length > 0, 'the text so far is kept');
    assert.equal((await rendered(page)).find((m) => m.id === replyId).text, stored.content);
    const requests = await Promise.all(eventRequests);
    const resumed = requests.filter(
      (r) => r.at >= restartedAt && (r.headers['last-event-id'] || new URL(r.url).searchParams.get('last_event_id')),
    );
    assert.ok(resumed.length > 0, `an events request after the restart named the last event: ${JSON.stringify(requests.slice(-3))}`);
    // The page opens every stream with a stream token, also where the server
    // asks for none (it ignores the token there).
    for (const { url } of requests) assert.ok(new URL(url).searchParams.get('token'), `${url} names a stream token`);
    // And the chat goes on over the new connection.
    await send(page, 'Good, you are back.');
    await page.locator('#message-list article[data-role="user"]', { hasText: 'Good, you are back.' }).waitFor();
    const nextId = await newestAssistantId(page);
    await message(page, nextId).and(page.locator('[data-status="complete"]')).waitFor();
  });

  await step('a session is renamed', async () => {
    await entry(page, first).locator('[data-action="rename"]').click();
    const input = entry(page, first).locator('.rename-input');
    await input.fill('Renamed in the browser');
    await input.press('Enter');
    await entry(page, first).locator('.session-title', { hasText: 'Renamed in the browser' }).waitFor();
    assert.equal(await page.locator('#chat-title').textContent(), 'Renamed in the browser');
    assert.equal((await server.api('GET', `/api/v1/sessions/${first}`)).body.title, 'Renamed in the browser');
  });

  await step('on a narrow screen the chat list opens from the menu', async () => {
    await page.setViewportSize({ width: 390, height: 780 });
    const menu = page.locator('#toggle-sidebar');
    await menu.waitFor();
    await until(async () => (await entry(page, first).boundingBox()).x < 0, 'the list is out of the way');
    await menu.click();
    await until(async () => (await entry(page, first).boundingBox()).x >= 0, 'the list slides in');
    await page.screenshot({ path: join(OUTPUT, 'narrow.png') });
    await entry(page, first).locator('[data-action="select"]').click();
    await until(async () => {
      const box = await page.locator('#sidebar').boundingBox();
      return box.x + box.width <= 0;
    }, 'the list closes after a choice');
    await page.screenshot({ path: join(OUTPUT, 'narrow-chat.png') });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  let second;
  await step('sessions are selected and deleted', async () => {
    await page.locator('#new-session').click();
    await until(async () => (await page.locator('#session-list [data-session-id]').count()) === 2, 'two sessions are listed');
    second = await page.locator('#session-list [data-session-id]').first().getAttribute('data-session-id');
    assert.notEqual(second, first);
    assert.equal(await entry(page, second).getAttribute('aria-current'), 'true');
    await page.locator('#welcome').waitFor();
    assert.equal(await page.locator('#message-list article').count(), 0);

    // Back to the first: its history again.
    await entry(page, first).locator('[data-action="select"]').click();
    await until(async () => (await page.locator('#message-list article').count()) > beforeReload.length, 'the history is drawn');
    assert.deepEqual((await rendered(page)).slice(0, beforeReload.length), beforeReload);

    // Delete it: the page moves to the one left.
    await entry(page, first).locator('[data-action="delete"]').click();
    await entry(page, first).locator('[data-action="confirm-delete"]').click();
    await entry(page, first).waitFor({ state: 'detached' });
    assert.equal((await server.api('GET', `/api/v1/sessions/${first}`)).status, 404);
    assert.equal(await entry(page, second).getAttribute('aria-current'), 'true');
    assert.equal(await page.locator('#session-list [data-session-id]').count(), 1);
    await page.locator('#welcome').waitFor();
  });

  await step('code blocks are kept intact; a screenshot of a conversation', async () => {
    // A few other chats, so the list looks lived in.
    for (const [title, content] of [
      ['Weekend trip to Lisbon', 'What should I see in Lisbon in two days?'],
      ['SQLite or Postgres?', 'Which database should a small team start with?'],
    ]) {
      const { body: session } = await server.api('POST', '/api/v1/sessions', { title });
      await server.api('POST', `/api/v1/sessions/${session.id}/messages`, { content });
    }
    const code = 'fn reverse(s: &str) -> String {\n    s.chars().rev().collect()\n}';
    await send(page, `How do I reverse a string in Rust?\n\n\`\`\`rust\n${code}\n\`\`\``);
    const replyId = await streamingReply(page);
    await message(page, replyId).and(page.locator('[data-status="complete"]')).waitFor();
    const block = page.locator('#message-list article[data-role="user"] pre code').last();
    assert.equal(await block.textContent(), code);

    await entry(page, second).locator('[data-action="rename"]').click();
    await entry(page, second).locator('.rename-input').fill('Reversing a string in Rust');
    await entry(page, second).locator('.rename-input').press('Enter');
    await entry(page, second).locator('.session-title', { hasText: 'Reversing a string in Rust' }).waitFor();

    await send(page, 'Could you explain each step of it, slowly?');
    const stoppedId = await streamingReply(page, 80);
    await page.locator('#stop').click();
    await message(page, stoppedId).and(page.locator('[data-status="cancelled"]')).waitFor();

    // The other chats appear when the page is opened again.
    await page.reload();
    await until(async () => (await page.locator('#session-list [data-session-id]').count()) === 3, 'three sessions are listed');
    await until(async () => (await page.locator('#message-list article').count()) === 4, 'the history is drawn');
    await page.locator('#composer').fill('Thanks! And how would I reverse the words instead?');
    await page.locator('#composer').blur();
    await page.screenshot({ path: SCREENSHOT });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(OUTPUT, 'screenshot-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await step('a chat deleted elsewhere leaves the page', async () => {
    assert.equal(await entry(page, second).getAttribute('aria-current'), 'true');
    assert.equal((await server.api('DELETE', `/api/v1/sessions/${second}`)).status, 204);
    // Its stream ends; reopening it finds the chat gone.
    await page.locator('#banner', { hasText: 'This chat was deleted' }).waitFor();
    await entry(page, second).waitFor({ state: 'detached' });
    assert.notEqual(await page.evaluate(() => location.hash), `#${second}`);
  });

  await step('with no chat at all, sending a message starts one', async () => {
    const { body: listed } = await server.api('GET', '/api/v1/sessions');
    for (const session of listed.data) await server.api('DELETE', `/api/v1/sessions/${session.id}`);
    await page.goto(server.url);
    await page.locator('#welcome').waitFor();
    assert.equal(await page.locator('#session-list [data-session-id]').count(), 0);
    await send(page, 'Hi again, from a clean slate.');
    await page.locator('#session-list [data-session-id]').first().waitFor();
    const created = await page.locator('#session-list [data-session-id]').first().getAttribute('data-session-id');
    assert.equal(await entry(page, created).getAttribute('aria-current'), 'true');
    const replyId = await streamingReply(page);
    await message(page, replyId).and(page.locator('[data-status="complete"]')).waitFor();
    assert.deepEqual(
      (await server.history(created)).map((m) => m.status),
      ['complete', 'complete'],
    );
  });

  await step('nothing went wrong inside the page', async () => {
    assert.deepEqual(pageErrors, [], 'no script errors');
    assert.deepEqual(consoleErrors, [], 'no console errors (a policy violation would show here)');
  });
});

// The key this tab keeps, if any.
const keptKey = (page) => page.evaluate(() => sessionStorage.getItem('colloquy.api-key'));

test('with API keys on, the page asks for a key and keeps it for the tab', { timeout: 120_000 }, async (t) => {
  const server = new Server(await freePort(), {
    name: 'keys',
    env: { COLLOQUY_AUTH: 'keys', COLLOQUY_STREAM_TOKEN_SECS: String(STREAM_TOKEN_SECS) },
  });
  const key = await server.createKey('alice', 'browser test');
  assert.match(key, /^\S{20,}$/, 'the last line of `keys create` is the key');
  await server.start();
  t.after(() => server.stop('SIGKILL'));
  server.key = key;
  const { body: planned } = await server.api('POST', '/api/v1/sessions', { title: 'Planned before the page opened' });

  const { context, page, step, pageErrors, consoleErrors } = await openTab(t, 'keys');
  // Every request of the tab, every 401 it got, every stream token it was given.
  const requests = [];
  const refusals = [];
  const tokens = [];
  page.on('request', (request) => {
    requests.push(request.allHeaders().then((headers) => ({ url: request.url(), headers, at: Date.now() })));
  });
  page.on('response', (response) => {
    if (response.status() === 401) refusals.push(response.url());
    if (response.ok() && response.url().endsWith('/stream-token')) {
      tokens.push(response.json().then(({ token }) => ({ token, at: Date.now() })));
    }
  });
  const field = page.locator('#api-key');
  // A real key with its last character mistyped.
  const wrongKey = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
  const streamRequests = async () =>
    (await Promise.all(requests)).filter((r) => new URL(r.url).pathname.endsWith('/events'));

  await step('the page asks for a key, and a wrong one is refused and asked for again', async () => {
    await page.goto(server.url);
    await field.waitFor();
    assert.equal(await field.getAttribute('type'), 'password', 'the key is not shown as it is typed');
    assert.match(await page.locator('#key-gate').textContent(), /asks for an API key/);
    assert.ok(refusals.length > 0, 'the page asked because the API answered 401');
    assert.equal(await page.locator('[data-session-id]').count(), 0, 'nothing is listed without a key');
    assert.ok(await page.evaluate(() => document.getElementById('layout').inert), 'the chat behind waits for the key');

    await field.fill(wrongKey);
    await field.press('Enter');
    await page.locator('#key-problem', { hasText: 'refused' }).waitFor();
    await page.screenshot({ path: join(OUTPUT, 'api-key.png') });
    assert.ok(await field.isVisible(), 'the key is asked for again');
    assert.equal(await keptKey(page), null, 'a refused key is not kept');
    assert.equal(await page.locator('[data-session-id]').count(), 0);
  });

  await step('the right key, typed and entered, loads the chats', async () => {
    await field.fill('');
    await field.pressSequentially(key);
    await field.press('Enter');
    await page.locator('#key-gate').waitFor({ state: 'hidden' });
    await entry(page, planned.id).waitFor();
    assert.equal(await entry(page, planned.id).getAttribute('aria-current'), 'true');
    await page.locator('#connection[data-state="live"]').waitFor();
    assert.equal(await keptKey(page), key, 'the key is kept for the tab');
    assert.ok(await page.locator('#key-status').isVisible(), 'the page says it holds a key');
  });

  await step('a chat streams to its end, on a stream that outlives its token', async () => {
    await send(page, 'Hello from behind a key.');
    const replyId = await streamingReply(page);
    await message(page, replyId).and(page.locator('[data-status="complete"]')).waitFor();
    const stored = await server.history(planned.id);
    assert.deepEqual(
      stored.map((m) => [m.role, m.status]),
      [
        ['user', 'complete'],
        ['assistant', 'complete'],
      ],
    );
    assert.equal((await rendered(page)).find((m) => m.id === replyId).text, stored[1].content);
    assert.ok(stored[1].content.endsWith(REPLY_END));
    const [issued] = await Promise.all(tokens);
    assert.ok(Date.now() - issued.at > STREAM_TOKEN_SECS * 1000, 'the reply ended after the token expired');
    assert.equal((await streamRequests()).length, 1, 'the stream stayed open all along');
  });

  await step('a reload of the tab keeps the key', async () => {
    const shown = await rendered(page);
    const refused = refusals.length;
    await page.reload();
    await until(async () => (await page.locator('#message-list article').count()) === shown.length, 'the history is drawn');
    assert.deepEqual(await rendered(page), shown);
    await page.locator('#connection[data-state="live"]').waitFor();
    assert.equal(await field.isVisible(), false, 'no key is asked for');
    assert.equal(refusals.length, refused, 'nothing was refused');
  });

  await step('when the server restarts, the stream reopens with a fresh token from the last event', async () => {
    await send(page, 'Are you still there after a restart?');
    const replyId = await streamingReply(page);
    const before = (await Promise.all(tokens)).map(({ token }) => token);
    await server.stop('SIGTERM');
    const restartedAt = Date.now();
    await server.start();
    await page.locator('#connection[data-state="live"]').waitFor({ timeout: 30_000 });
    await message(page, replyId).and(page.locator('[data-status="interrupted"]')).waitFor();
    const reopened = (await streamRequests()).filter((r) => r.at >= restartedAt);
    assert.ok(reopened.length > 0, 'the stream was opened again');
    for (const { url } of reopened) {
      const query = new URL(url).searchParams;
      assert.ok(!before.includes(query.get('token')), 'with a token of the new server, not an old one');
      assert.ok(query.get('last_event_id'), 'from the last event seen');
    }
  });

  await step('a revoked key is refused and asked for again; the message being sent goes with the new key', async () => {
    await server.colloquy('keys', 'revoke', await server.keyId('browser test'));
    await send(page, 'Sent while the key changed.');
    await page.locator('#key-problem', { hasText: 'revoked' }).waitFor();
    assert.match(await page.locator('#key-title').textContent(), /refused/);
    assert.equal(await keptKey(page), null, 'the revoked key is forgotten');
    assert.equal(await page.locator('#composer').inputValue(), 'Sent while the key changed.', 'nothing typed is lost');

    const next = await server.createKey('alice', 'browser test, again');
    server.key = next;
    await field.pressSequentially(next);
    await field.press('Enter');
    await page.locator('#key-gate').waitFor({ state: 'hidden' });
    await page.locator('#message-list article[data-role="user"]', { hasText: 'Sent while the key changed.' }).waitFor();
    const replyId = await newestAssistantId(page);
    await message(page, replyId).and(page.locator('[data-status="complete"]')).waitFor();
    assert.equal(await page.locator('#composer').inputValue(), '');
    const stored = await server.history(planned.id);
    assert.equal(stored.filter((m) => m.content === 'Sent while the key changed.').length, 1, 'sent once');
    assert.equal(await keptKey(page), next);
  });

  await step('another tab does not share the key, and "Forget key" forgets it', async () => {
    const other = await context.newPage();
    await other.goto(server.url);
    await other.locator('#api-key').waitFor();
    await other.close();

    await page.locator('#forget-key').click();
    await field.waitFor();
    assert.equal(await keptKey(page), null);
    assert.equal(await page.locator('[data-session-id]').count(), 0, 'nothing of the forgotten key is shown');
  });

  await step('no URL carried a key, and every event stream opened with a stream token', async () => {
    const all = await Promise.all(requests);
    const keys = [wrongKey, key, server.key];
    for (const { url } of all) {
      for (const secret of keys) assert.ok(!url.includes(secret), `${url} carries a key`);
    }
    const issued = new Set((await Promise.all(tokens)).map(({ token }) => token));
    const streams = await streamRequests();
    assert.ok(streams.length >= 3, `${streams.length} streams were opened`);
    for (const { url, headers } of streams) {
      assert.ok(issued.has(new URL(url).searchParams.get('token')), `${url} names a token the server issued`);
      assert.equal(headers.authorization, undefined);
    }
    const sentKey = all.filter((r) => r.headers.authorization).map((r) => r.headers.authorization);
    assert.ok(sentKey.length > 0);
    for (const value of sentKey) assert.ok(keys.some((secret) => value === `Bearer ${secret}`), 'only as `Authorization: Bearer`');

    await server.stop('SIGTERM');
    const log = await server.logText();
    for (const secret of [...keys, ...issued]) assert.ok(!log.includes(secret), 'no key or token is logged');
  });

  await step('nothing went wrong inside the page', async () => {
    assert.deepEqual(pageErrors, [], 'no script errors');
    assert.deepEqual(consoleErrors, [], 'no console errors');
  });
});

// The assistants' part of the page: the dialog, the chips above the composer, and
// the messages they write.
const dialog = (page) => page.locator('#assistants');
const choice = (page, id) => page.locator(`[data-assistant-choice="${id}"]`);
const listed = (page, id) => page.locator(`#assistant-list [data-assistant-id="${id}"]`);

async function createAssistant(page, name, instructions) {
  await page.locator('#assistant-name').fill(name);
  await page.locator('#assistant-instructions').fill(instructions);
  await page.locator('#assistant-save').click();
}

// Every message of the newest turn (from the newest user message on, or the
// last `count` assistant messages of a discussion) once none streams.
async function settledTurn(page, count) {
  await until(async () => {
    const shown = await rendered(page);
    const replies = shown.filter((m) => m.role === 'assistant');
    return replies.length >= count && replies.slice(-count).every((m) => m.status !== 'streaming');
  }, `the last ${count} replies are written`, 30_000);
  return (await rendered(page)).filter((m) => m.role === 'assistant').slice(-count);
}

test('assistants are made in the page, answer in the order picked, and discuss', { timeout: 180_000 }, async (t) => {
  const server = new Server(await freePort(), { name: 'assistants' });
  await server.start();
  t.after(() => server.stop('SIGKILL'));
  const { page, step, pageErrors, consoleErrors } = await openTab(t, 'assistants');
  const sent = []; // the bodies of the sends and discussions the page made
  page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (request.method() === 'POST' && /\/(messages|replies)$/.test(path)) sent.push({ path, body: request.postDataJSON() });
  });
  const ids = {}; // name -> id of the assistants made
  let chat;

  await step('two assistants are created in the dialog', async () => {
    assert.equal((await server.api('GET', '/api/v1/assistants')).status, 200, 'the server has assistants at all');
    await page.goto(server.url);
    await page.locator('#manage-assistants').click();
    await dialog(page).waitFor();
    await page.locator('#assistants-empty').waitFor();
    // The models come from GET /models: the offline model alone here.
    await until(async () => (await page.locator('#assistant-model option').allTextContents()).includes('offline'), 'the models are offered');
    await createAssistant(page, 'Critic', 'Point out what could go wrong.');
    await until(async () => (await page.locator('#assistant-list [data-assistant-id]').count()) === 1, 'Critic is listed');
    assert.equal(await page.locator('#assistant-name').inputValue(), '', 'the form is ready for the next one');
    await createAssistant(page, 'Optimist', 'Say what could go right.');
    await until(async () => (await page.locator('#assistant-list [data-assistant-id]').count()) === 2, 'both are listed');
    assert.equal(await page.locator('#assistants-empty').isVisible(), false);

    const { status, body } = await server.api('GET', '/api/v1/assistants?limit=100');
    assert.equal(status, 200);
    const stored = [...body.data].sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(
      stored.map((a) => [a.name, a.instructions, a.model]),
      [
        ['Critic', 'Point out what could go wrong.', 'offline'],
        ['Optimist', 'Say what could go right.', 'offline'],
      ],
    );
    for (const assistant of stored) {
      ids[assistant.name] = assistant.id;
      assert.match(await listed(page, assistant.id).textContent(), new RegExp(assistant.name));
    }
  });

  await step('a taken name, a blank one and a refused model are explained next to the form', async () => {
    const problem = page.locator('#assistant-problem');
    await createAssistant(page, 'Critic', 'A second critic.');
    await problem.waitFor();
    assert.match(await problem.textContent(), /already have an assistant named “Critic”/);
    assert.equal(await page.locator('#assistant-name').inputValue(), 'Critic', 'nothing typed is lost');

    await createAssistant(page, '   ', '');
    await until(async () => /Give the assistant a name/.test(await problem.textContent()), 'a blank name is refused');

    // A model the server does not offer (a list gone stale in another tab, say): a 422.
    await page.evaluate(() => {
      const option = document.createElement('option');
      option.value = option.textContent = 'no-such-model';
      document.getElementById('assistant-model').append(option);
    });
    await page.locator('#assistant-model').selectOption('no-such-model');
    await createAssistant(page, 'Stranger', '');
    await until(async () => /^That cannot be saved: /.test(await problem.textContent()), 'the 422 is shown');
    assert.doesNotMatch(await problem.textContent(), /[`{}]/, 'no JSON, no markup');
    assert.equal(await page.locator('#assistant-list [data-assistant-id]').count(), 2, 'nothing more was made');
    await page.screenshot({ path: join(OUTPUT, 'assistants-dialog.png') });

    await page.locator('#assistants-close').click();
    await dialog(page).waitFor({ state: 'hidden' });
  });

  await step('assistants are picked above the composer, in an order of the user\'s choosing', async () => {
    await page.locator('#new-session').click();
    await page.locator('#connection[data-state="live"]').waitFor();
    chat = await page.locator('#session-list [data-session-id]').first().getAttribute('data-session-id');
    for (const name of ['Critic', 'Optimist']) assert.equal(await choice(page, ids[name]).getAttribute('aria-pressed'), 'false');
    assert.ok(await page.locator('#discuss').isDisabled(), 'no discussion without assistants picked');
    // Optimist first, although Critic is listed first.
    await choice(page, ids.Optimist).click();
    await choice(page, ids.Critic).click();
    for (const name of ['Critic', 'Optimist']) assert.equal(await choice(page, ids[name]).getAttribute('aria-pressed'), 'true');
    assert.equal(await choice(page, ids.Optimist).locator('.chip-order').textContent(), '1');
    assert.equal(await choice(page, ids.Critic).locator('.chip-order').textContent(), '2');
    assert.ok(await page.locator('#discuss').isEnabled());
  });

  await step('a message to both is answered by each, in that order, each its own message', async () => {
    await send(page, 'We plan to move the whole team to a four-day week. Thoughts?');
    // While the second waits or writes, the first may be done: Stop stays.
    await page.waitForFunction(() => {
      const replies = [...document.querySelectorAll('#message-list article[data-role="assistant"]')];
      return replies.length === 2 && replies[0].dataset.status === 'complete' && replies[1].dataset.status === 'streaming';
    });
    assert.ok(await page.locator('#stop').isVisible(), 'the stop button stays while any reply of the turn streams');
    const replies = await settledTurn(page, 2);
    assert.deepEqual(
      replies.map((m) => [m.name, m.status]),
      [
        ['Optimist', 'complete'],
        ['Critic', 'complete'],
      ],
    );
    await page.locator('#send').waitFor();
    assert.equal(await page.locator('#stop').isVisible(), false);
    const authors = await page.locator('#message-list article[data-role="assistant"] .author').allTextContents();
    assert.deepEqual(authors, ['Optimist', 'Critic'], 'each reply is labelled with its author');
    assert.equal(await page.locator('#message-list article[data-role="user"][data-assistant-name]').count(), 0);

    assert.deepEqual(sent[sent.length - 1].body.assistant_ids, [ids.Optimist, ids.Critic]);
    const stored = await server.history(chat);
    assert.deepEqual(
      stored.map((m) => [m.role, m.name, m.assistant_id, m.status]),
      [
        ['user', null, null, 'complete'],
        ['assistant', 'Optimist', ids.Optimist, 'complete'],
        ['assistant', 'Critic', ids.Critic, 'complete'],
      ],
    );
    const shown = await rendered(page);
    assert.deepEqual(
      shown.map((m) => [m.id, m.text]),
      stored.map((m) => [m.id, m.content]),
    );
  });

  await step('"Let them talk" has the picked assistants speak again, with no message from the user', async () => {
    const before = await rendered(page);
    await page.locator('#discuss').click();
    await until(async () => (await rendered(page)).length === before.length + 2, 'two more replies appear');
    const replies = await settledTurn(page, 2);
    assert.deepEqual(replies.map((m) => [m.name, m.status]), [
      ['Optimist', 'complete'],
      ['Critic', 'complete'],
    ]);
    const last = sent[sent.length - 1];
    assert.ok(last.path.endsWith(`/sessions/${chat}/replies`), last.path);
    assert.deepEqual(last.body, { assistant_ids: [ids.Optimist, ids.Critic] });
    const stored = await server.history(chat);
    assert.equal(stored.filter((m) => m.role === 'user').length, 1, 'no user message was added');
    assert.deepEqual(
      stored.slice(-2).map((m) => [m.id, m.name, m.status]),
      replies.map((m) => [m.id, m.name, m.status]),
    );
  });

  await step('Stop ends the whole turn: the reply waiting its turn is stopped too', async () => {
    await send(page, 'Please both write a very long essay about it.');
    // Stopped while the first of the two writes.
    await page.waitForFunction(() => {
      const [first, second] = [...document.querySelectorAll('#message-list article[data-role="assistant"]')].slice(-2);
      return (
        first.dataset.status === 'streaming' &&
        first.querySelector('.message-body').textContent.trim() &&
        second.dataset.status === 'streaming' &&
        second.dataset.messageId > first.dataset.messageId &&
        second.querySelector('[data-badge="waiting"]')
      );
    });
    await page.locator('#stop').click();
    const replies = await settledTurn(page, 2);
    assert.deepEqual(replies.map((m) => [m.name, m.status]), [
      ['Optimist', 'cancelled'],
      ['Critic', 'cancelled'],
    ]);
    await page.locator('#send').waitFor();
    const stored = (await server.history(chat)).slice(-2);
    assert.deepEqual(stored.map((m) => m.status), ['cancelled', 'cancelled']);
    assert.deepEqual(
      (await rendered(page)).slice(-2).map((m) => m.text),
      stored.map((m) => m.content),
    );
    await page.screenshot({ path: join(OUTPUT, 'assistants.png') });
  });

  await step('an assistant is edited: renamed, its instructions cleared', async () => {
    await page.locator('#manage-assistants').click();
    await dialog(page).waitFor();
    await listed(page, ids.Critic).locator('[data-action="edit-assistant"]').click();
    assert.equal(await page.locator('#assistant-name').inputValue(), 'Critic');
    assert.equal(await page.locator('#assistant-instructions').inputValue(), 'Point out what could go wrong.');
    await page.locator('#assistant-name').fill('Skeptic');
    await page.locator('#assistant-instructions').fill('');
    await page.locator('#assistant-save').click();
    await listed(page, ids.Critic).locator('.assistant-name', { hasText: 'Skeptic' }).waitFor();
    const { body: edited } = await server.api('GET', `/api/v1/assistants/${ids.Critic}`);
    assert.equal(edited.name, 'Skeptic');
    assert.equal(edited.instructions, null);
    await page.locator('#assistants-close').click();
    assert.equal(await choice(page, ids.Critic).locator('.chip-name').textContent(), 'Skeptic');
    assert.equal(await choice(page, ids.Critic).getAttribute('aria-pressed'), 'true', 'still picked');
  });

  await step('an assistant is deleted; its messages keep its name', async () => {
    await page.locator('#manage-assistants').click();
    await listed(page, ids.Optimist).locator('[data-action="delete-assistant"]').click();
    await listed(page, ids.Optimist).locator('[data-action="confirm-delete-assistant"]').click();
    await listed(page, ids.Optimist).waitFor({ state: 'detached' });
    assert.equal((await server.api('GET', `/api/v1/assistants/${ids.Optimist}`)).status, 404);
    await page.locator('#assistants-close').click();
    assert.equal(await choice(page, ids.Optimist).count(), 0, 'its chip is gone');
    assert.equal(await choice(page, ids.Critic).locator('.chip-order').textContent(), '1');

    await page.reload();
    await page.locator('#connection[data-state="live"]').waitFor();
    await until(async () => (await rendered(page)).length === 8, 'the history is drawn');
    assert.deepEqual(
      (await rendered(page)).filter((m) => m.role === 'assistant').map((m) => m.name),
      ['Optimist', 'Critic', 'Optimist', 'Critic', 'Optimist', 'Critic'],
    );
  });

  await step('with no assistant picked the chat\'s usual voice answers, unnamed', async () => {
    await choice(page, ids.Critic).waitFor();
    // A reload forgets the picks.
    assert.equal(await choice(page, ids.Critic).getAttribute('aria-pressed'), 'false');
    await send(page, 'And what do you say yourself?');
    const replyId = await streamingReply(page);
    await message(page, replyId).and(page.locator('[data-status="complete"]')).waitFor();
    assert.equal(await message(page, replyId).getAttribute('data-assistant-name'), null);
    assert.equal(await message(page, replyId).locator('.author').textContent(), 'colloquy');
    assert.equal(sent[sent.length - 1].body.assistant_ids, undefined, 'the send names no assistant');
  });

  await step('nothing went wrong inside the page', async () => {
    assert.deepEqual(pageErrors, [], 'no script errors');
    assert.deepEqual(consoleErrors, [], 'no console errors');
  });
});

// The branches of a conversation, search, export and import.
const versions = (page, id) => message(page, id).locator('[data-siblings]');
const hit = (page, id) => page.locator(`#hit-list [data-search-hit][data-message-id="${id}"]`);

// Waits until the branch on screen is `ids`, in order, none of it streaming.
async function branchShown(page, ids, what) {
  await until(async () => {
    const shown = await rendered(page);
    return shown.length === ids.length && shown.every((m, i) => m.id === ids[i] && m.status !== 'streaming');
  }, what, 30_000);
}

// The place a version switcher shows, and whether its buttons can be pressed.
async function switcher(page, id) {
  const nav = versions(page, id);
  return {
    place: (await nav.textContent()).trim(),
    attribute: await nav.getAttribute('data-siblings'),
    prev: await nav.locator('[data-action="prev"]').isEnabled(),
    next: await nav.locator('[data-action="next"]').isEnabled(),
  };
}

async function chooseFile(page, files) {
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.locator('#import').click()]);
  await chooser.setFiles(files);
}

test('a conversation branches, and chats are searched, exported and imported', { timeout: 240_000 }, async (t) => {
  const server = new Server(await freePort(), { name: 'branches' });
  await server.start();
  t.after(() => server.stop('SIGKILL'));
  const { context, page, step, pageErrors, consoleErrors } = await openTab(t, 'branches');
  const patches = []; // the bodies of the PATCHes the page sent
  const branchReads = []; // the history requests that named a leaf
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (request.method() === 'PATCH') patches.push(request.postDataJSON());
    if (url.pathname.endsWith('/messages') && url.searchParams.get('leaf')) branchReads.push(url.searchParams.get('leaf'));
  });
  const session = async (id) => (await server.api('GET', `/api/v1/sessions/${id}`)).body;
  const QUESTION = 'Tell me about lighthouses, please.';
  const EDITED = 'Tell me about the sea instead.';
  let chat;
  let question; // the first question, and its two replies
  let first;
  let second;
  let edited; // the question that replaced it, and its reply
  let third;

  await step('a reply is regenerated: the new one takes its place as "2 / 2"', async () => {
    await page.goto(server.url);
    await page.locator('#new-session').click();
    await page.locator('#connection[data-state="live"]').waitFor();
    chat = await page.locator('#session-list [data-session-id]').first().getAttribute('data-session-id');
    await send(page, QUESTION);
    first = await streamingReply(page);
    await message(page, first).and(page.locator('[data-status="complete"]')).waitFor();
    question = await page.locator('#message-list article[data-role="user"]').getAttribute('data-message-id');
    assert.equal(await page.locator('#message-list [data-siblings]').count(), 0, 'a message without versions shows no switcher');
    assert.equal(await message(page, question).locator('[data-action="regenerate"]').count(), 0, 'a question is edited, not regenerated');
    assert.equal(await message(page, first).locator('[data-action="edit"]').count(), 0, 'a reply is regenerated, not edited');

    await message(page, first).locator('[data-action="regenerate"]').click();
    second = await until(
      () =>
        page.evaluate((old) => {
          const replies = [...document.querySelectorAll('#message-list article[data-role="assistant"]')];
          return replies.length === 1 && replies[0].dataset.messageId !== old && replies[0].dataset.messageId;
        }, first),
      'the new reply takes the old one\'s place',
    );
    assert.equal(await message(page, first).count(), 0, 'the old reply left the screen');
    // While it is written nothing else can be reworked: the server takes one turn at a time.
    const editWhileStreaming = await page.evaluate((id) => {
      const reply = document.querySelector(`#message-list article[data-message-id="${id}"]`);
      return reply.dataset.status === 'streaming' ? document.querySelector('[data-action="edit"]').disabled : 'already done';
    }, second);
    assert.notEqual(editWhileStreaming, false, 'editing waits while a reply is written');
    await branchShown(page, [question, second], 'the new reply is written');
    assert.deepEqual(await switcher(page, second), { place: '2 / 2', attribute: '2 / 2', prev: true, next: false });
    assert.equal(await page.locator('#message-list [data-siblings]').count(), 1, 'the question has no other version');

    const stored = await server.history(chat);
    assert.deepEqual(stored.map((m) => m.id), [question, second]);
    assert.equal(stored[1].parent_id, question);
    assert.deepEqual(stored[1].siblings, { ids: [first, second], index: 1 });
    assert.equal((await session(chat)).head_message_id, second);
    assert.equal((await rendered(page))[1].text, stored[1].content);
  });

  await step('"‹" and "›" go from one version to the other, and the server keeps the choice', async () => {
    await versions(page, second).locator('[data-action="prev"]').click();
    await branchShown(page, [question, first], 'the first version is shown');
    assert.deepEqual(await switcher(page, first), { place: '1 / 2', attribute: '1 / 2', prev: false, next: true });
    assert.deepEqual(patches[patches.length - 1], { head_message_id: first });
    assert.equal((await session(chat)).head_message_id, first);
    assert.ok(
      await page.evaluate((id) => document.activeElement.dataset.action === 'next' && document.activeElement.closest('article').dataset.messageId === id, first),
      'the focus stays on the switcher, on the button that can still be pressed',
    );
    await page.screenshot({ path: join(OUTPUT, 'versions.png') });

    await versions(page, first).locator('[data-action="next"]').click();
    await branchShown(page, [question, second], 'the second version is shown again');
    assert.deepEqual(await switcher(page, second), { place: '2 / 2', attribute: '2 / 2', prev: true, next: false });
    assert.equal((await session(chat)).head_message_id, second);

    // The history says the same after a reload.
    await page.reload();
    await branchShown(page, [question, second], 'the history is drawn');
    assert.deepEqual(await switcher(page, second), { place: '2 / 2', attribute: '2 / 2', prev: true, next: false });
    await page.locator('#connection[data-state="live"]').waitFor();
  });

  await step('a question is edited in place: Escape keeps it, Enter asks it anew on a branch of its own', async () => {
    const editor = message(page, question).locator('.editor-text');
    await message(page, question).locator('[data-action="edit"]').click();
    await editor.waitFor();
    assert.equal(await editor.inputValue(), QUESTION);
    assert.ok(await editor.evaluate((box) => box === document.activeElement), 'the editor has the focus');
    await editor.press('Escape');
    await editor.waitFor({ state: 'detached' });
    assert.equal((await rendered(page))[0].text, QUESTION, 'nothing changed');

    await message(page, question).locator('[data-action="edit"]').click();
    await editor.fill('   ');
    await editor.press('Enter');
    await message(page, question).locator('.form-problem', { hasText: 'cannot be empty' }).waitFor();
    assert.equal(await editor.isVisible(), true, 'still editing');

    await editor.fill(EDITED);
    await editor.press('Enter');
    edited = await until(
      () =>
        page.evaluate((text) => {
          const user = [...document.querySelectorAll('#message-list article[data-role="user"]')];
          return user.length === 1 && user[0].querySelector('.message-body').textContent === text && user[0].dataset.messageId;
        }, EDITED),
      'the edited question takes the old one\'s place',
    );
    assert.equal(await message(page, question).count(), 0, 'the old question left the screen');
    third = await until(() => page.evaluate(() => document.querySelector('#message-list article[data-role="assistant"]')?.dataset.messageId), 'its reply appears');
    assert.notEqual(third, second);
    await branchShown(page, [edited, third], 'the reply to the edited question is written');
    assert.deepEqual(await switcher(page, edited), { place: '2 / 2', attribute: '2 / 2', prev: true, next: false });
    assert.equal(await versions(page, third).count(), 0, 'the new reply is the only one to its question');

    const stored = await server.history(chat);
    assert.deepEqual(stored.map((m) => [m.id, m.role, m.content === EDITED]), [
      [edited, 'user', true],
      [third, 'assistant', false],
    ]);
    assert.equal(stored[0].parent_id, null);
    assert.deepEqual(stored[0].siblings, { ids: [question, edited], index: 1 });
    assert.equal((await rendered(page))[1].text, stored[1].content);

    // Back to the first question: its newest reply comes with it.
    await versions(page, edited).locator('[data-action="prev"]').click();
    await branchShown(page, [question, second], 'the first question\'s branch is shown');
    assert.deepEqual(await switcher(page, question), { place: '1 / 2', attribute: '1 / 2', prev: false, next: true });
    assert.deepEqual(await switcher(page, second), { place: '2 / 2', attribute: '2 / 2', prev: true, next: false });
    await versions(page, question).locator('[data-action="next"]').click();
    await branchShown(page, [edited, third], 'the edited question\'s branch is shown again');
    assert.equal((await session(chat)).head_message_id, third);
  });

  let elsewhere;
  let markup;
  await step('a search finds messages of every chat and branch, and opens one on its own branch', async () => {
    // Another chat, whose message has markup in it.
    ({ body: elsewhere } = await server.api('POST', '/api/v1/sessions', { title: 'Harbour notes' }));
    const attack = '<img src=x onerror="window.__pwned=1"> Lighthouses at night';
    const { status, body: accepted } = await server.api('POST', `/api/v1/sessions/${elsewhere.id}/messages`, { content: attack });
    assert.equal(status, 202);
    markup = accepted.user_message.id;
    await until(async () => (await server.history(elsewhere.id)).every((m) => m.status !== 'streaming'), 'its reply is written');
    // And an empty one on screen, made in the page: the search leads away from it.
    await page.locator('#new-session').click();
    await until(async () => (await page.locator('#session-list [data-session-id]').count()) === 2, 'the new chat is listed');
    await page.locator('#welcome').waitFor();

    await page.locator('#search').fill('lighthouses');
    await hit(page, question).waitFor();
    assert.equal(await page.locator('#session-list').isVisible(), false, 'the results take the list\'s place');
    const found = await page.locator('#hit-list [data-search-hit]').evaluateAll((hits) => hits.map((h) => h.dataset.messageId));
    for (const id of [question, first, second, markup]) assert.ok(found.includes(id), `${id} is found on whatever branch it is`);
    assert.ok(!found.includes(edited) && !found.includes(third), 'what does not match is not found');
    const { body: api } = await server.api('GET', '/api/v1/search?q=lighthouses&limit=20');
    assert.deepEqual(found, api.data.map((h) => h.message_id), 'in the order the server gave, newest first');
    assert.match(await hit(page, question).locator('.hit-title').textContent(), /./);
    assert.deepEqual(await hit(page, question).locator('mark').allTextContents(), ['lighthouses']);
    // Markup in a message is shown as text, never run.
    assert.equal(await page.locator('#hit-list img').count(), 0);
    assert.ok((await hit(page, markup).textContent()).includes('<img src=x'));
    assert.equal(await hit(page, markup).locator('.hit-title').textContent(), 'Harbour notes');
    assert.deepEqual(await hit(page, markup).locator('mark').allTextContents(), ['Lighthouses']);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    await page.screenshot({ path: join(OUTPUT, 'search.png') });

    // The first question is on a branch the chat has left: opening it switches there.
    const patched = patches.length;
    await hit(page, question).click();
    await branchShown(page, [question, second], 'the branch holding the question is shown');
    assert.equal(await page.evaluate(() => location.hash), `#${chat}`);
    assert.deepEqual(patches.slice(patched), [{ head_message_id: question }]);
    assert.ok(branchReads.includes(second), 'the branch ending at the new head was read');
    assert.equal((await session(chat)).head_message_id, second, 'the head moved to the newest reply below it');
    await until(async () => (await message(page, question).getAttribute('class')).includes('highlighted'), 'the message is marked');
    assert.ok(await message(page, question).isVisible());
    assert.equal(await hit(page, question).getAttribute('aria-current'), 'true');

    // A message on the branch shown is only scrolled to.
    await hit(page, markup).click();
    await branchShown(page, (await server.history(elsewhere.id)).map((m) => m.id), 'the other chat is shown');
    await until(async () => (await message(page, markup).getAttribute('class')).includes('highlighted'), 'its message is marked');
    await hit(page, second).click();
    await branchShown(page, [question, second], 'back to the first chat');
    await until(async () => (await message(page, second).getAttribute('class')).includes('highlighted'), 'the reply is marked');
    assert.equal(patches.length, patched + 1, 'no switch was needed');

    await page.locator('#search').press('Escape');
    assert.equal(await page.locator('#search').inputValue(), '');
    await page.locator('#session-list').waitFor();
    assert.equal(await entry(page, chat).getAttribute('aria-current'), 'true');
  });

  let exported;
  let exportFile; // { name, mimeType, buffer } of the downloaded export
  await step('the chat is exported as JSON, every branch of it', async () => {
    await page.locator('#export-toggle').click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-json').click()]);
    assert.match(download.suggestedFilename(), /\.json$/);
    exportFile = { name: download.suggestedFilename(), mimeType: 'application/json', buffer: readFileSync(await download.path()) };
    exported = JSON.parse(exportFile.buffer.toString('utf8'));
    assert.equal(exported.format, 'colloquy.v1');
    assert.equal(exported.session.id, chat);
    assert.deepEqual(
      exported.messages.map((m) => m.id).sort(),
      [question, first, second, edited, third].sort(),
      'every branch is in it',
    );
    const { body: direct } = await server.api('GET', `/api/v1/sessions/${chat}/export?format=json`);
    assert.deepEqual(exported, direct, 'the file is what the server exported');
    assert.equal(await page.locator('#export-menu').isVisible(), false, 'the menu closed');
  });

  await step('the JSON export is imported: a new chat, selected, showing the same messages', async () => {
    const shown = await rendered(page);
    const before = await page.locator('#session-list [data-session-id]').count();
    await chooseFile(page, exportFile);
    await until(async () => (await page.locator('#session-list [data-session-id]').count()) === before + 1, 'the new chat is listed');
    const imported = await until(async () => {
      const hash = (await page.evaluate(() => location.hash)).slice(1);
      return hash && hash !== chat && hash;
    }, 'the new chat is selected');
    assert.equal(await entry(page, imported).getAttribute('aria-current'), 'true');
    await until(async () => (await rendered(page)).length === shown.length, 'its history is drawn');
    const now = await rendered(page);
    assert.deepEqual(
      now.map((m) => [m.role, m.status, m.text]),
      shown.map((m) => [m.role, m.status, m.text]),
    );
    assert.ok(now.every((m, i) => m.id !== shown[i].id), 'with new ids');
    assert.deepEqual(await switcher(page, now[1].id), { place: '2 / 2', attribute: '2 / 2', prev: true, next: false });
    const { body: copy } = await server.api('GET', `/api/v1/sessions/${imported}/export?format=json`);
    const texts = (messages) => messages.map((m) => `${m.role}: ${m.content}`).sort();
    assert.deepEqual(texts(copy.messages), texts(exported.messages), 'every branch came along');
    assert.equal(copy.session.title, exported.session.title);
  });

  await step('the Markdown export downloads the branch on screen as a transcript', async () => {
    await entry(page, chat).locator('[data-action="select"]').click();
    await branchShown(page, [question, second], 'the first chat is shown');
    await page.locator('#export-toggle').click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-markdown').click()]);
    assert.match(download.suggestedFilename(), /\.md$/);
    const markdown = readFileSync(await download.path(), 'utf8');
    assert.ok(markdown.includes(QUESTION), 'the question on screen is in it');
    assert.ok(!markdown.includes(EDITED), 'the other branch is not');
    assert.ok(markdown.includes('offline model'), 'with its reply');
  });

  await step('a file that is not an export is refused in plain words, and adds no chat', async () => {
    const { body: listed } = await server.api('GET', '/api/v1/sessions?limit=100');
    const count = listed.data.length;
    await chooseFile(page, { name: 'notes.json', mimeType: 'application/json', buffer: Buffer.from('these are not JSON') });
    await page.locator('#banner', { hasText: '“notes.json” is not a JSON file' }).waitFor();
    await page.locator('#banner-close').click();

    await chooseFile(page, { name: 'other.json', mimeType: 'application/json', buffer: Buffer.from('{"hello": "world"}') });
    await page.locator('#banner', { hasText: '“other.json” is not an export colloquy can read' }).waitFor();
    assert.doesNotMatch(await page.locator('#banner').textContent(), /[{}<>]/, 'no JSON, no markup');
    await page.locator('#banner-close').click();

    assert.equal((await server.api('GET', '/api/v1/sessions?limit=100')).body.data.length, count, 'nothing was imported');
    assert.equal(await page.locator('#session-list [data-session-id]').count(), count);
    assert.equal(await entry(page, chat).getAttribute('aria-current'), 'true', 'the chat on screen stays');
  });

  await step('a ChatGPT conversations.json becomes a chat per conversation; one that cannot be read is named', async () => {
    const node = (parent, role, text, at) => ({
      parent,
      message: { author: { role }, content: { content_type: 'text', parts: [text] }, create_time: at },
    });
    const conversation = (title, question, answer, at) => ({
      title,
      create_time: at,
      current_node: 'a',
      mapping: { q: node(null, 'user', question, at), a: node('q', 'assistant', answer, at + 5) },
    });
    const conversations = [
      conversation('Lisbon trams', 'Which tram goes to Belém?', 'Line 15 does.', 1_731_340_800),
      conversation('Porto bridges', 'How many bridges cross the Douro in Porto?', 'Six.', 1_731_427_200),
      { title: 'Broken', mapping: 'not a tree' },
    ];
    const { body: listed } = await server.api('GET', '/api/v1/sessions?limit=100');
    const before = listed.data.map((s) => s.id);
    await chooseFile(page, { name: 'conversations.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(conversations)) });
    await page.locator('#banner', { hasText: '1 of the 3 conversations in “conversations.json” was not imported' }).waitFor();
    const { body: after } = await server.api('GET', '/api/v1/sessions?limit=100');
    const added = after.data.filter((s) => !before.includes(s.id));
    assert.deepEqual(added.map((s) => s.title).sort(), ['Lisbon trams', 'Porto bridges']);
    const trams = added.find((s) => s.title === 'Lisbon trams');
    for (const session of added) await entry(page, session.id).waitFor();
    // The first conversation of the file is the one selected.
    assert.equal(await entry(page, trams.id).getAttribute('aria-current'), 'true');
    await until(async () => (await rendered(page)).length === 2, 'its history is drawn');
    assert.deepEqual(
      (await rendered(page)).map((m) => [m.role, m.text]),
      [
        ['user', 'Which tram goes to Belém?'],
        ['assistant', 'Line 15 does.'],
      ],
    );
    await page.locator('#banner-close').click();
  });

  await step('another tab on the chat follows: a reply regenerated here streams there, a switch here shows there', async () => {
    await entry(page, chat).locator('[data-action="select"]').click();
    await branchShown(page, [question, second], 'the first chat is shown');
    const other = await context.newPage();
    other.on('pageerror', (error) => pageErrors.push(`the other tab: ${error.message}`));
    await other.goto(`${server.url}/#${chat}`);
    await branchShown(other, [question, second], 'the other tab shows the chat');
    await other.locator('#connection[data-state="live"]').waitFor();
    await recordAssistantStates(other);

    await message(page, second).locator('[data-action="regenerate"]').click();
    const fourth = await until(
      () =>
        page.evaluate((old) => {
          const reply = document.querySelector('#message-list article[data-role="assistant"]');
          return reply && reply.dataset.messageId !== old && reply.dataset.messageId;
        }, second),
      'a third reply takes its place',
    );
    await branchShown(page, [question, fourth], 'the third reply is written');
    await branchShown(other, [question, fourth], 'the other tab shows it too');
    assert.deepEqual(await switcher(other, fourth), { place: '3 / 3', attribute: '3 / 3', prev: true, next: false });
    const streamed = (await other.evaluate(() => window.__states)).filter((s) => s.id === fourth && s.status === 'streaming' && s.text);
    assert.ok(streamed.length >= 2, 'the other tab drew it as it streamed');
    assert.equal((await rendered(other))[1].text, (await rendered(page))[1].text);

    await versions(page, fourth).locator('[data-action="prev"]').click();
    await branchShown(page, [question, second], 'the second reply is shown here');
    await branchShown(other, [question, second], 'and there');
    assert.deepEqual(await switcher(other, second), { place: '2 / 3', attribute: '2 / 3', prev: true, next: true });
    await other.close();
  });

  await step('nothing went wrong inside the page', async () => {
    assert.deepEqual(pageErrors, [], 'no script errors');
    assert.deepEqual(consoleErrors, [], 'no console errors');
  });
});
