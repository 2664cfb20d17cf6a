// The web chat page, driven the way a person uses it: Debian's Chromium
// (through playwright-core) against the real `colloquy` binary, serving a
// fresh SQLite file with the built-in offline model, which streams its reply
// word by word at a pace a person can watch (about two seconds a reply).
//
//   node --test chat.test.mjs
//
// COLLOQUY_BIN (default target/debug/colloquy), CHROMIUM (default
// /usr/bin/chromium) and SCREENSHOT (default tests/browser/output/screenshot.png)
// can be set. The server's log and the screenshots are kept in
// tests/browser/output/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

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

mkdirSync(OUTPUT, { recursive: true });
rmSync(join(OUTPUT, 'failure.png'), { force: true });
const work = mkdtempSync(join(tmpdir(), 'colloquy-browser-'));

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

/** The real binary on a free port and a fresh database, restartable in place. */
class Server {
  constructor(port) {
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.log = createWriteStream(join(OUTPUT, 'server.log'));
  }

  async start() {
    const env = { ...process.env };
    for (const name of Object.keys(env)) {
      if (name.startsWith('OPENAI_') || name.startsWith('COLLOQUY_')) delete env[name];
    }
    Object.assign(env, {
      COLLOQUY_LLM: 'offline',
      DATABASE_URL: join(work, 'colloquy.db'),
      COLLOQUY_MAX_MESSAGE_CHARS: String(MAX_CHARS),
      // A stop stores a running reply `interrupted` at once.
      COLLOQUY_SHUTDOWN_GRACE_SECS: '0',
      RUST_LOG: 'info',
    });
    // The work directory as the current one: no stray .env is read.
    this.child = spawn(BIN, ['serve', '--addr', `127.0.0.1:${this.port}`], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.pipe(this.log, { end: false });
    this.child.stderr.pipe(this.log, { end: false });
    this.exited = new Promise((done) => this.child.once('exit', (code, signal) => done({ code, signal })));
    const spawned = await Promise.race([
      until(async () => (await fetch(`${this.url}/healthz`)).ok, 'the server answers /healthz', 30_000),
      this.exited.then(({ code }) => {
        throw new Error(`${BIN} exited with ${code}; see ${join(OUTPUT, 'server.log')}`);
      }),
    ]);
    return spawned;
  }

  async stop(signal = 'SIGTERM') {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await this.exited;
  }

  async api(method, path, body) {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
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

// What the page shows of each message, in order.
function rendered(page) {
  return page.$$eval('#message-list article', (articles) =>
    articles.map((article) => ({
      id: article.dataset.messageId,
      role: article.dataset.role,
      status: article.dataset.status,
      text: article.querySelector('.message-body').textContent,
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
  const server = new Server(await freePort());
  await server.start();
  const browser = await chromium.launch({
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
  t.after(async () => {
    await browser.close().catch(() => {});
    await server.stop('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light', locale: 'en-US' });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const pageErrors = [];
  const consoleErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (entry) => {
    // Failed requests are logged by the browser itself (the 422 the page
    // shows on purpose, the events stream while the server restarts).
    if (entry.type() === 'error' && !entry.text().startsWith('Failed to load resource')) consoleErrors.push(entry.text());
  });
  const eventRequests = [];
  page.on('request', (request) => {
    if (request.url().includes('/events')) {
      eventRequests.push(request.allHeaders().then((headers) => ({ url: request.url(), headers, at: Date.now() })));
    }
  });

  let failed = false;
  const step = (name, body) =>
    t.test(name, { skip: failed ? 'an earlier step failed' : false }, async () => {
      try {
        await body();
      } catch (error) {
        failed = true;
        await page.screenshot({ path: join(OUTPUT, 'failure.png') }).catch(() => {});
        throw error;
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
