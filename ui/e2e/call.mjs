// End-to-end test of the hands-free voice call: Chromium's fake microphone plays a WAV made with
// espeak-ng (speech, then a long silence, looped) into the page; the call button streams it as
// 16 kHz PCM16 over the call WebSocket, the real server finds the utterance, runs whisper.cpp and
// the tiny random-weight model, speaks the reply with espeak-ng and sends its sentences back, which
// the page plays. The words are gibberish: the checks are on structure (a user message, a reply,
// sentences played), never on words. Also: a second tab calling the same chat is told the chat
// already has a call; the button explains when speech input is off; desktop and 390 px phone.
// Usage: node ui/e2e/call.mjs <mycandy> <tiny llm gguf> <whisper model> <VAD model> <ui dist> <artifacts>
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { assert, checks, startMycandy } from '../../tests/js/mycandy_server.mjs';
import { launchWithMic, writeMicWav } from './fake_mic.mjs';

const [binary, model, whisper, vad, dist, artifacts] = process.argv.slice(2).map((p) => resolve(p));
mkdirSync(artifacts, { recursive: true });

const server = await startMycandy(binary, {
  server: { ui_dir: dist },
  llm: { model_path: model, context_size: 2048, max_tokens: 24, threads: 2 },
  stt: { model_path: whisper, vad_model_path: vad, threads: 2 },
  media: { tts_enabled: true, tts_engine: 'espeak', image_backend: 'off' },
}, 'mc-e2e-call-');
const base = server.base;
const json = async (path, init) => (await fetch(`${base}${path}`, init)).json();

// What the fake microphone plays in a loop: 1 s of silence, a sentence, then 40 s of silence, so
// one utterance ends, is answered and its sentences play before the next one comes round.
const micFile = writeMicWav(server.dir, 'Hallo Mia, erzähl mir von deinem Tag.', 'de', 1, 40);

const character = await json('/api/characters', {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Mia', first_mes: 'Hallo!' }),
});
assert(character.id, JSON.stringify(character));

const browser = await launchWithMic(micFile);
let page = null;
const { check: step, summary } = checks((n) => page?.screenshot({ path: join(artifacts, `call-failed-${n}.png`) }));
const errors = [];

async function open(viewport, extra = {}) {
  const p = await browser.newPage({ viewport, locale: 'en-US', colorScheme: 'dark', ...extra });
  p.on('pageerror', (e) => errors.push(String(e)));
  p.setDefaultTimeout(30000);
  await p.goto(`${base}/ui/`);
  await p.getByTestId('character-item').first().click();
  await p.getByTestId('composer').waitFor();
  return p;
}
const callState = (p) => p.getByTestId('call').getAttribute('data-state');
const waitState = (p, states, timeout = 30000) =>
  p.waitForFunction((s) => s.includes(document.querySelector('[data-testid=call]')?.dataset.state), states, { timeout });
async function chatId(p) {
  // The page's address names the chat it shows: /ui/c/{character}/chat/{chat}.
  await p.waitForURL(/\/chat\/[^/]+$/);
  return p.url().split('/chat/')[1];
}

let chat = '';
const seen = [];  // The states the call button went through.
const events = [];  // The types of the events the desktop page's call received.
let sentBytes = 0;  // Microphone audio it sent.
const sent = [];  // The audio itself (the first 200 s), kept as a WAV in the artifacts when the step fails.
function wav16k(pcm) {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + pcm.length, 4); h.write('WAVEfmt ', 8); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22); h.writeUInt32LE(16000, 24); h.writeUInt32LE(32000, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34);
  h.write('data', 36); h.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([h, pcm]);
}

await step('the call button is there, enabled, next to the microphone', async () => {
  page = await open({ width: 1440, height: 900 });
  chat = await chatId(page);
  const health = await json('/api/health');
  assert(health.components.stt.state === 'ready' && health.components.tts.state === 'ready',
    `stt ${health.components.stt.state}, tts ${health.components.tts.state}`);
  await page.getByTestId('call').waitFor();
  assert((await page.getByTestId('call').getAttribute('aria-disabled')) !== 'true', 'the call button is disabled');
  assert((await callState(page)) === 'idle', await callState(page));
  assert((await page.getByTestId('hangup').count()) === 0, 'a hang-up button before the call');
});

await step('a call starts and listens; the level meter moves', async () => {
  await page.exposeFunction('__callState', (s) => seen.push(s));
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid=call]');
    new MutationObserver(() => window.__callState(el.dataset.state)).observe(el, { attributes: true, attributeFilter: ['data-state'] });
  });
  // What the call's socket carries, for a failure's message.
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => typeof f.payload === 'string' && events.push(JSON.parse(f.payload).type));
    ws.on('framesent', (f) => {
      if (typeof f.payload === 'string') return;
      sentBytes += f.payload.length;
      if (sentBytes < 16000 * 2 * 200) sent.push(Buffer.from(f.payload));
    });
  });
  await page.getByTestId('call').click();
  await waitState(page, ['listening', 'hearing', 'thinking']);
  await page.getByTestId('hangup').waitFor();
  // The microphone was opened with echo cancellation on (the browser says so): the character's
  // own voice from the speakers is not the person speaking.
  const echo = await page.getByTestId('call').getAttribute('data-echo-cancellation');
  assert(echo === 'true', `echo cancellation: ${echo}`);
  // The microphone is heard: the meter rises above silence at some point of the loop.
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=call-level]')?.dataset.level ?? 0) > 0.3, null, { timeout: 40000 });
  await page.screenshot({ path: join(artifacts, 'call-desktop-listening.png') });
});

await step('a second tab calling the same chat is told the chat already has a call', async () => {
  const other = await browser.newPage({ viewport: { width: 1024, height: 768 }, locale: 'en-US', colorScheme: 'dark' });
  other.on('pageerror', (e) => errors.push(String(e)));
  other.setDefaultTimeout(30000);
  await other.goto(`${base}/ui/c/${character.id}/chat/${chat}`);
  await other.getByTestId('composer').waitFor();
  await other.getByTestId('call').click();
  const note = other.getByTestId('call-note');
  await note.waitFor();
  const reason = await note.getAttribute('data-reason');
  const text = await note.textContent();
  assert(reason === 'call_active', `${reason}: ${text}`);
  assert(/already has a call/.test(text), text);
  assert((await callState(other)) === 'idle', await callState(other));
  await other.screenshot({ path: join(artifacts, 'call-second-tab.png') });
  await other.close();
  // The first call goes on.
  assert(['listening', 'hearing', 'thinking', 'speaking'].includes(await callState(page)), await callState(page));
});

await step('the person speaks: their message appears, a reply arrives, its sentences play', async () => {
  const users = await page.getByTestId('message-user').count();
  const replies = await page.getByTestId('message-assistant').count();
  // The loop's sentence comes round within ~25 s; recognizing and answering take a few more.
  await page.getByTestId('message-user').nth(users).waitFor({ timeout: 90000 }).catch((e) => {
    writeFileSync(join(artifacts, 'call-sent-audio.wav'), wav16k(Buffer.concat(sent)));
    throw new Error(`${e.message}\nevents: ${events.join(' ')}; ${sentBytes} bytes of audio sent; states: ${seen.join(' ')}`);
  });
  const words = await page.getByTestId('message-user').nth(users).getByTestId('message-text').textContent();
  assert(words.trim().length > 0, 'empty user message');
  await page.getByTestId('message-assistant').nth(replies).waitFor({ timeout: 90000 });
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=call]')?.dataset.playedSentences ?? 0) >= 1, null, { timeout: 60000 }).catch((e) => {
    throw new Error(`${e.message}\nevents: ${events.join(' ')}; states: ${seen.join(' ')}`);
  });
  for (const s of ['hearing', 'thinking']) assert(seen.includes(s), `never ${s}: ${seen.join(' ')}`);
  await page.screenshot({ path: join(artifacts, 'call-desktop-reply.png') });
});

await step('hang up: idle again, and the chat holds what was said', async () => {
  await page.getByTestId('hangup').click();
  await waitState(page, ['idle'], 10000);
  assert((await page.getByTestId('hangup').count()) === 0, 'the hang-up button stayed');
  const messages = (await json(`/api/chats/${chat}/messages`)).messages;
  const user = messages.findIndex((m) => m.role === 'user' && m.content.trim());
  assert(user >= 0, `no user message: ${JSON.stringify(messages.map((m) => m.role))}`);
  const reply = messages.slice(user + 1).find((m) => m.role === 'assistant');
  assert(reply, `no reply after the user message: ${JSON.stringify(messages.map((m) => [m.role, m.status]))}`);
  assert((reply.media ?? []).some((x) => x.kind === 'audio'), `the reply has no audio: ${JSON.stringify(reply.media)}`);
  const shown = await page.getByTestId('message-user').count();
  assert(shown === messages.filter((m) => m.role === 'user').length, `${shown} user messages shown`);
  // The typed chat works again.
  await page.getByTestId('mic').waitFor();
  await page.getByTestId('composer').fill('hallo');
  assert(await page.getByTestId('send').isEnabled(), 'send stays disabled after the call');
  await page.getByTestId('composer').fill('');
  // A new call can start at once (the server let the ended one go).
  await page.getByTestId('call').click();
  await waitState(page, ['listening', 'hearing', 'thinking', 'speaking']);
  await page.getByTestId('hangup').click();
  await waitState(page, ['idle'], 10000);
});

await step('on a phone (390x844) the call and hang-up buttons fit beside the message box', async () => {
  const phone = await open({ width: 390, height: 844 }, { isMobile: true, hasTouch: true, locale: 'de-DE' });
  page = phone;
  const call = await phone.getByTestId('call').boundingBox();
  assert(call && call.width >= 40 && call.height >= 40 && call.x >= 0, `call: ${JSON.stringify(call)}`);
  assert((await phone.getByTestId('call').getAttribute('aria-label')).includes('Anrufen'), 'not German');
  await phone.getByTestId('call').tap();
  await waitState(phone, ['listening', 'hearing', 'thinking', 'speaking']);
  const hangup = await phone.getByTestId('hangup').boundingBox();
  const box = await phone.getByTestId('composer').boundingBox();
  assert(hangup && hangup.width >= 40 && hangup.x + hangup.width <= 390, `hangup: ${JSON.stringify(hangup)}`);
  assert(box && box.x >= hangup.x + hangup.width && box.x + box.width <= 390 && box.width >= 120, `composer: ${JSON.stringify(box)}`);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert(!overflow, 'page scrolls sideways');
  await phone.screenshot({ path: join(artifacts, 'call-phone-390x844.png') });
  await phone.getByTestId('hangup').tap();
  await waitState(phone, ['idle'], 10000);
  await phone.close();
});

// A connection that breaks without a close frame (a phone changing networks): the page goes through
// a TCP relay here that can cut every connection at once; the call resumes with nothing lost.
await step('a broken connection resumes the same call (reconnecting, then listening again), also from a reloaded tab', async () => {
  const pairs = new Set();
  const port = Number(new URL(base).port);
  let blockCalls = false;  // Cut call connections as they come (the network is still away).
  const relay = createServer((c) => {
    c.once('data', (first) => {
      if (blockCalls && /^GET \S*\/call[?\s]/.test(first.toString('latin1', 0, 300))) return c.destroy();
      const s = connect(port, '127.0.0.1');
      const pair = [c, s];
      pairs.add(pair);
      const cut = () => { c.destroy(); s.destroy(); pairs.delete(pair); };
      s.write(first);
      c.pipe(s); s.pipe(c);
      for (const x of pair) { x.on('error', cut); x.on('close', cut); }
    });
    c.on('error', () => c.destroy());
  });
  await new Promise((r) => relay.listen(0, '127.0.0.1', r));
  try {
    const p = await browser.newPage({ viewport: { width: 1440, height: 900 }, locale: 'en-US', colorScheme: 'dark' });
    page = p;
    p.on('pageerror', (e) => errors.push(String(e)));
    p.setDefaultTimeout(30000);
    await p.goto(`http://127.0.0.1:${relay.address().port}/ui/c/${character.id}/chat/${chat}`);
    await p.getByTestId('composer').waitFor();
    const states = [];
    await p.exposeFunction('__relayState', (x) => states.push(x));
    await p.getByTestId('call').click();
    await waitState(p, ['listening', 'hearing', 'thinking', 'speaking']);
    await p.evaluate(() => {
      const el = document.querySelector('[data-testid=call]');
      new MutationObserver(() => window.__relayState(el.dataset.state)).observe(el, { attributes: true, attributeFilter: ['data-state'] });
    });
    const before = (await json(`/api/chats/${chat}`)).call;
    assert(before?.id && before.connected, JSON.stringify(before));
    for (const [c, s] of [...pairs]) { c.destroy(); s.destroy(); }
    // Back within the backoff's first steps, on the same call.
    for (let i = 0; i < 100 && !(states.includes('reconnecting') && ['listening', 'hearing', 'thinking', 'speaking'].includes(states[states.length - 1])); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert(states.includes('reconnecting'), `states: ${states.join(' ')}`);
    assert(['listening', 'hearing', 'thinking', 'speaking'].includes(await callState(p)), `states: ${states.join(' ')}`);
    const after = (await json(`/api/chats/${chat}`)).call;
    assert(after?.id === before.id && after.connected, `${JSON.stringify(before)} → ${JSON.stringify(after)}`);

    // Broken again, and the tab is reloaded while it reconnects: the reloaded tab picks the call up.
    blockCalls = true;
    for (const [c, s] of [...pairs]) { c.destroy(); s.destroy(); }
    await waitState(p, ['reconnecting'], 10000);
    await p.reload();
    blockCalls = false;
    await p.getByTestId('composer').waitFor();
    await waitState(p, ['listening', 'hearing', 'thinking', 'speaking'], 20000);
    const reloaded = (await json(`/api/chats/${chat}`)).call;
    assert(reloaded?.id === before.id && reloaded.connected, `${JSON.stringify(before)} → ${JSON.stringify(reloaded)}`);
    await p.getByTestId('hangup').click();
    await waitState(p, ['idle'], 10000);
    let still = true;
    for (let i = 0; i < 50 && still; i++) {
      still = (await json(`/api/chats/${chat}`)).call !== null;
      if (still) await new Promise((r) => setTimeout(r, 100));
    }
    assert(!still, 'the call is still on after hanging up');
    await p.close();
  } finally {
    relay.close();
  }
});

// A phone on the LAN reaches the server over https (the microphone needs it): the call goes over wss://.
await step('over https at this machine\'s network address a phone calls through wss://', async () => {
  const lan = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  assert(lan, 'this machine has no network address to test with');
  const token = 'e2e-call-token';
  const remote = await startMycandy(binary, {
    server: { ui_dir: dist, api_token: token },
    llm: { model_path: model, context_size: 2048, max_tokens: 24, threads: 2 },
    stt: { model_path: whisper, vad_model_path: vad, threads: 2 },
    media: { tts_enabled: true, tts_engine: 'espeak', image_backend: 'off' },
  }, 'mc-e2e-call-https-', { args: ['--host', lan, '--https'], host: lan, https: true, token });
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, ignoreHTTPSErrors: true });
  try {
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const mia = await (await fetch(`${remote.base}/api/characters`, { method: 'POST', headers, body: JSON.stringify({ name: 'Mia', first_mes: 'Hallo!' }) })).json();
    assert(mia.id, JSON.stringify(mia));
    const phone = await context.newPage();
    page = phone;
    phone.on('pageerror', (e) => errors.push(String(e)));
    phone.setDefaultTimeout(30000);
    const sockets = [];
    phone.on('websocket', (ws) => sockets.push(ws.url()));
    await phone.goto(`${remote.base}/ui/?token=${token}`);
    await phone.getByTestId('character-item').first().click();
    await phone.getByTestId('composer').waitFor();
    await phone.getByTestId('call').tap();
    await waitState(phone, ['listening', 'hearing', 'thinking', 'speaking']);
    assert(sockets.length === 1 && sockets[0].startsWith(`wss://${lan}:`) && sockets[0].includes('/call'), sockets.join(' '));
    await phone.getByTestId('hangup').tap();
    await waitState(phone, ['idle'], 10000);
  } finally {
    await context.close();
    await remote.stop();
  }
});

await step('with speech input off the button explains what to set up instead of calling (en and de)', async () => {
  const settings = await json('/api/settings');
  const engine = settings.stt?.engine;
  const patch = (stt) => fetch(`${base}/api/settings`, { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ stt }) });
  assert((await patch({ engine: 'off' })).ok, 'PATCH stt.engine off');
  try {
    for (const [locale, words] of [['en-US', 'speech input'], ['de-DE', 'Spracheingabe']]) {
      const p = await open({ width: 1440, height: 900 }, { locale });
      page = p;
      const call = p.getByTestId('call');
      await p.waitForFunction(() => document.querySelector('[data-testid=call]')?.getAttribute('aria-disabled') === 'true');
      const title = await call.getAttribute('title');
      assert(title.includes(words), title);
      let sockets = 0;
      p.on('websocket', () => sockets++);
      await call.click({ force: true });  // aria-disabled: it still explains on a tap.
      const note = p.getByTestId('call-note');
      await note.waitFor();
      assert((await note.getAttribute('data-reason')) === 'stt_off', await note.getAttribute('data-reason'));
      assert((await note.textContent()).includes(words), await note.textContent());
      assert(sockets === 0 && (await callState(p)) === 'idle', `${sockets} sockets, ${await callState(p)}`);
      await p.screenshot({ path: join(artifacts, `call-stt-off-${locale}.png`) });
      await p.close();
    }
  } finally {
    await patch({ engine: engine ?? 'embedded' });
  }
});

await step('the call settings: out of range is marked (de), a good value is saved and the next call uses it', async () => {
  const p = await open({ width: 1440, height: 900 }, { locale: 'de-DE' });
  page = p;
  await p.getByTestId('open-settings').click();
  await p.getByTestId('settings-call').waitFor();
  await p.getByTestId('setting-call.silence_ms').fill('100');
  await p.getByTestId('save-settings').click();
  await p.getByText('Muss zwischen 200 und 5.000 liegen.').waitFor();
  await p.getByTestId('setting-call.silence_ms').fill('800');
  await p.getByTestId('save-settings').click();
  await p.waitForFunction(async () => (await (await fetch('/api/settings')).json()).call.silence_ms === 800, null, { polling: 200 });
  await p.getByTestId('close-settings').click();
  const greeted = new Promise((ok) => p.on('websocket', (ws) => ws.on('framereceived', (f) => {
    if (typeof f.payload === 'string' && f.payload.includes('"type":"call"')) ok(JSON.parse(f.payload));
  })));
  await p.getByTestId('call').click();
  const hello = await Promise.race([greeted, new Promise((ok) => setTimeout(() => ok(null), 15000))]);
  assert(hello?.silence_ms === 800, JSON.stringify(hello));
  await p.getByTestId('hangup').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=call]')?.dataset.state === 'idle');
  await p.close();
});

await step('no errors in the page', async () => {
  assert(errors.length === 0, errors.join('\n'));
});

await browser.close();
await server.stop();
process.exit(summary());
