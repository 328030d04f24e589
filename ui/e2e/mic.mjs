// End-to-end test of talking instead of typing: Chromium's fake microphone plays a WAV made with
// espeak-ng (speech between silences, looped) into the page; the microphone button records it with
// MediaRecorder (WebM/Opus, as for a person), the real server decodes it and runs whisper.cpp on
// random-weight models, and the text lands in the message box. Also on a 390 px phone.
// Usage: node e2e/mic.mjs <mycandy> <whisper model> <VAD model> <ui dist folder> <artifacts folder>
import { mkdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { assert, checks, startMycandy } from '../../tests/js/mycandy_server.mjs';
import { launchWithMic, writeMicWav } from './fake_mic.mjs';

const [binary, whisper, vad, dist, artifacts] = process.argv.slice(2).map((p) => resolve(p));
mkdirSync(artifacts, { recursive: true });

const server = await startMycandy(binary, {
  server: { ui_dir: dist },
  llm: { model_path: join(artifacts, 'no-model.gguf') },
  stt: { model_path: whisper, vad_model_path: vad, threads: 2 },
  media: { tts_enabled: false, image_backend: 'off' },
}, 'mc-e2e-mic-');
const base = server.base;

// 1 s of silence, German speech, 1.5 s of silence: what the fake microphone plays in a loop.
const micFile = writeMicWav(server.dir, 'Hallo Mia, erzähl mir von deinem Tag.', 'de', 1, 1.5);

const character = await (await fetch(`${base}/api/characters`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'Mia', first_mes: 'Hallo!' }),
})).json();
assert(character.id, JSON.stringify(character));

const browser = await launchWithMic(micFile);
let page = null;
const { check: step, summary } = checks((n) => page?.screenshot({ path: join(artifacts, `mic-failed-${n}.png`) }));
const errors = [];

// Records a whole utterance: silence first, then speech, then silence again, then stops and waits
// for the text in the message box. (Chromium's fake microphone is one loop for the whole browser:
// a recording started in the middle of the speech heard only its tail, and whisper found no words
// in it — the https step failed that way in CI.)
async function speakInto(p) {
  await p.getByTestId('mic').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=mic]')?.dataset.state === 'recording');
  // Half a second of silence in a row (a level of 0 also shows before the meter runs: a moment is not enough).
  await p.evaluate(() => { window.__quietSince = undefined; });
  await p.waitForFunction(() => {
    const level = Number(document.querySelector('[data-testid=mic-level]')?.dataset.level ?? 1);
    if (level >= 0.05) {
      window.__quietSince = undefined;
      return false;
    }
    window.__quietSince ??= performance.now();
    return performance.now() - window.__quietSince > 500;
  }, null, { timeout: 20000, polling: 50 });
  await p.waitForFunction(() => Number(document.querySelector('[data-testid=mic-level]')?.dataset.level ?? 0) > 0.4, null, { timeout: 20000 });
  await p.waitForFunction(() => Number(document.querySelector('[data-testid=mic-level]')?.dataset.level ?? 1) < 0.05, null, { timeout: 20000 });
  await p.getByTestId('mic').click();
  await p.waitForFunction(() => document.querySelector('[data-testid=mic]')?.dataset.state === 'idle', null, { timeout: 60000 });
}

await step('the microphone button records, shows the level, and puts the recognized text in the box', async () => {
  page = await browser.newPage({ viewport: { width: 1440, height: 900 }, locale: 'en-US' });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.setDefaultTimeout(30000);
  let uploads = 0;
  page.on('request', (r) => { if (r.url().includes('/api/stt')) uploads++; });
  await page.goto(`${base}/ui/`);
  await page.getByTestId('character-item').first().click();
  await page.getByTestId('composer').waitFor();
  await speakInto(page);
  const note = await page.getByTestId('mic-note').count();
  const text = await page.getByTestId('composer').inputValue();
  assert(note === 0, `note: ${note ? await page.getByTestId('mic-note').textContent() : ''}`);
  assert(text.trim().length > 0, 'no text in the message box');
  // What the server decoded was the browser's own recording: WebM/Opus from MediaRecorder.
  const type = await page.getByTestId('mic').getAttribute('data-recorded-type');
  assert(uploads === 1 && type.startsWith('audio/webm'), `${uploads} uploads of ${type}`);
  await page.screenshot({ path: join(artifacts, 'mic-desktop.png') });
});

await step('cancel throws the recording away (nothing is sent)', async () => {
  await page.getByTestId('composer').fill('');
  let sent = 0;
  page.on('request', (r) => { if (r.url().includes('/api/stt')) sent++; });
  await page.getByTestId('mic').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=mic]')?.dataset.state === 'recording');
  await page.getByTestId('mic-cancel').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=mic]')?.dataset.state === 'idle');
  assert(sent === 0, `${sent} uploads`);
  assert((await page.getByTestId('composer').inputValue()) === '', 'text appeared');
});

await step('Alt+M starts and stops from the keyboard', async () => {
  await page.keyboard.press('Alt+m');
  await page.waitForFunction(() => document.querySelector('[data-testid=mic]')?.dataset.state === 'recording');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.querySelector('[data-testid=mic]')?.dataset.state === 'idle');
});

await step('on a phone (390x844) the button fits beside the message box and works', async () => {
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  phone.on('pageerror', (e) => errors.push(String(e)));
  phone.setDefaultTimeout(30000);
  await phone.goto(`${base}/ui/`);
  await phone.getByTestId('character-item').first().click();
  await phone.getByTestId('composer').waitFor();
  const mic = await phone.getByTestId('mic').boundingBox();
  const box = await phone.getByTestId('composer').boundingBox();
  assert(mic && mic.width >= 40 && mic.height >= 40 && mic.x >= 0, `mic: ${JSON.stringify(mic)}`);
  assert(box && box.x >= mic.x + mic.width && box.x + box.width <= 390 && box.width >= 150, `composer: ${JSON.stringify(box)}`);
  await speakInto(phone);
  assert((await phone.getByTestId('composer').inputValue()).trim().length > 0, 'no text on the phone');
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert(!overflow, 'page scrolls sideways');
  await phone.screenshot({ path: join(artifacts, 'mic-phone-390x844.png') });
});

await step('with "send recognized speech at once" the words go straight into the chat', async () => {
  await page.getByTestId('composer').fill('');
  await page.getByTestId('open-settings').click();
  await page.getByTestId('health-stt').getByText('ready').waitFor();
  await page.getByTestId('setting-stt.auto_send').check();
  await page.getByTestId('save-settings').click();
  await page.getByTestId('settings-saved').waitFor();
  await page.getByTestId('close-settings').click();
  const before = await page.getByTestId('message-user').count();
  await speakInto(page);
  await page.getByTestId('message-user').nth(before).waitFor();
  const sent = await page.getByTestId('message-user').nth(before).getByTestId('message-text').textContent();
  assert(sent.trim().length > 0, 'empty message');
  assert((await page.getByTestId('composer').inputValue()) === '', 'text was also left in the box');
});

// A phone on the LAN: the browser allows the microphone there only over https. The server listens
// on this machine's network address with --https (its own self-signed certificate) and a token;
// Chromium accepts the certificate as a person does after comparing the fingerprint.
await step('a phone over https at this machine\'s network address records and gets text', async () => {
  const lan = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  assert(lan, 'this machine has no network address to test with');
  const token = 'e2e-phone-token';
  const remote = await startMycandy(binary, {
    server: { ui_dir: dist, api_token: token },
    llm: { model_path: join(artifacts, 'no-model.gguf') },
    stt: { model_path: whisper, vad_model_path: vad, threads: 2 },
    media: { tts_enabled: false, image_backend: 'off' },
  }, 'mc-e2e-https-', { args: ['--host', lan, '--https'], host: lan, https: true, token });
  try {
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const health = await (await fetch(`${remote.base}/api/health`, { headers })).json();
    assert(health.server?.scheme === 'https' && /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/.test(health.server.tls_fingerprint ?? ''),
      JSON.stringify(health.server));
    assert(health.server.urls.includes(`${remote.base}/ui/`), JSON.stringify(health.server.urls));
    const mia = await (await fetch(`${remote.base}/api/characters`, {
      method: 'POST', headers, body: JSON.stringify({ name: 'Mia', first_mes: 'Hallo!' }),
    })).json();
    assert(mia.id, JSON.stringify(mia));
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, ignoreHTTPSErrors: true });
    const phone = await context.newPage();
    phone.on('pageerror', (e) => errors.push(String(e)));
    phone.setDefaultTimeout(30000);
    await phone.goto(`${remote.base}/ui/?token=${token}`);
    assert(await phone.evaluate(() => window.isSecureContext && location.protocol === 'https:'), 'not a secure context');
    await phone.getByTestId('character-item').first().click();
    await phone.getByTestId('composer').waitFor();
    await speakInto(phone);
    assert((await phone.getByTestId('mic-note').count()) === 0, 'the microphone refused');
    assert((await phone.getByTestId('composer').inputValue()).trim().length > 0, 'no text over https');
    // Settings show the fingerprint to compare and the address to open.
    await phone.getByTestId('open-settings').click();
    await phone.getByTestId('https-fingerprint').getByText(health.server.tls_fingerprint).waitFor();
    await phone.getByTestId('phone-urls').getByText(`${remote.base}/ui/`).waitFor();
    await phone.getByTestId('settings-phone').scrollIntoViewIfNeeded();
    await phone.screenshot({ path: join(artifacts, 'mic-phone-https.png') });
    await context.close();
  } finally {
    await remote.stop();
  }
});

await step('a voice sample recorded in the character editor is stored and measured', async () => {
  const p = await browser.newPage({ viewport: { width: 1440, height: 900 }, locale: 'en-US' });
  p.on('pageerror', (e) => errors.push(String(e)));
  p.setDefaultTimeout(30000);
  await p.goto(`${base}/ui/`);
  await p.getByTestId('character-item').first().click();
  await p.getByTestId('edit-character').click();
  page = p;  // A failure's screenshot shows this page.
  await p.getByTestId('voice-record').click();
  // The fake microphone's loop: past 5 s it has played its speech at least once.
  await p.waitForFunction(() => Number(document.querySelector('[data-testid=voice-record]')?.dataset.seconds ?? 0) >= 5, null, { timeout: 20000, polling: 250 });
  await p.getByTestId('voice-record').click();
  const info = p.getByTestId('voice-sample-info');
  await info.waitFor();
  const text = await info.textContent();
  assert(text.includes('WEBM') && text.includes('48000 Hz'), text);
  const stored = await (await fetch(`${base}/api/characters/${character.id}`)).json();
  // The button's timer counts from the click; the recorder starts a moment later (4.98 s seen on a
  // loaded machine), so the stored sample is measured at a little under the timer's 5 s.
  assert(stored.voice_sample_info.format === 'webm' && stored.voice_sample_info.seconds >= 4.5 && stored.voice_sample_info.seconds < 8,
    JSON.stringify(stored.voice_sample_info));
  await p.getByTestId('voice-panel').screenshot({ path: join(artifacts, 'mic-voice-sample.png') });
  await p.close();
});

await step('no errors in the page', async () => {
  assert(errors.length === 0, errors.join('\n'));
});

await browser.close();
await server.stop();
process.exit(summary());
