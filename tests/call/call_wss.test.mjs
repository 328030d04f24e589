// A voice call over https, as a phone on the LAN makes it: wss:// to the server's self-signed
// certificate (the WebSocket runs inside the request's TLS session), a German sentence from espeak-ng
// streamed in real time as 16-bit PCM, events in order, the reply's audio as WAV, then hang up.
// Node's own WebSocket (Node 22; Node 20 needs --experimental-websocket, added here when missing).
// Usage: node tests/call/call_wss.test.mjs <mycandy> <tiny gguf> <whisper model> <VAD model>
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { assert, checks, startMycandy } from '../js/mycandy_server.mjs';

if (typeof WebSocket === 'undefined') {
  const again = spawnSync(process.execPath, ['--experimental-websocket', '--no-warnings', ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(again.status ?? 1);
}

const [binary, llm, whisper, vad] = process.argv.slice(2).map((p) => resolve(p));
const server = await startMycandy(binary, {
  llm: { model_path: llm, max_tokens: 24, threads: 1 },
  stt: { model_path: whisper, vad_model_path: vad, threads: 1 },
  media: { tts_enabled: true, tts_engine: 'espeak', image_backend: 'off' },
}, 'mc-call-wss-', { args: ['--https'], https: true });
const { check, summary } = checks();
const base = server.base;

const post = async (path, body) => (await fetch(`${base}${path}`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
})).json();
const character = await post('/api/characters', { name: 'Mia' });
const { chat } = await post('/api/chats', { character_id: character.id });

// 0.5 s of silence, the sentence, 1 s of silence, at 16 kHz.
const said = spawnSync('espeak-ng', ['-v', 'de', '--stdout', 'Hallo Mia, wie war dein Tag?']);
assert(said.status === 0, 'espeak-ng is needed');
const wav = said.stdout;
const rate = wav.readUInt32LE(24);
const src = new Int16Array(wav.buffer.slice(wav.byteOffset + 44, wav.byteOffset + wav.length - ((wav.length - 44) % 2)));
const speech = Int16Array.from({ length: Math.floor(src.length * 16000 / rate) }, (_, k) => src[Math.floor(k * rate / 16000)]);
const pcm = new Int16Array(8000 + speech.length + 16000);
pcm.set(speech, 8000);

const events = [];
let audioBytes = [];
const ws = new WebSocket(`${base.replace('https://', 'wss://')}/api/chats/${chat.id}/call`);
ws.binaryType = 'arraybuffer';
const opened = new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
const closed = new Promise((ok) => { ws.onclose = (e) => ok(e.code); });
let wake = () => {};
ws.onmessage = (m) => {
  if (typeof m.data === 'string') events.push(JSON.parse(m.data));
  else audioBytes.push(new Uint8Array(m.data));
  wake();
};
const waitFor = (type, ms = 60000) => new Promise((ok, fail) => {
  const t = setTimeout(() => fail(new Error(`no ${type} within ${ms} ms: ${events.map((e) => e.type).join(' ')}`)), ms);
  const look = () => {
    const e = events.find((x) => x.type === type);
    if (e) { clearTimeout(t); ok(e); } else wake = look;
  };
  look();
});

await check('wss:// opens a call through the self-signed certificate', async () => {
  await opened;
  const hello = await waitFor('call', 5000);
  assert(hello.call_id && hello.sample_rate === 16000, JSON.stringify(hello));
});

await check('speech streamed in real time is heard, stored and answered aloud, in order', async () => {
  const started = Date.now();
  for (let at = 0; at < pcm.length; at += 640) {
    ws.send(pcm.slice(at, at + 640).buffer);
    const due = started + (at / 640 + 1) * 40;
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
  }
  const done = await waitFor('done');
  const order = ['speech_start', 'utterance_end', 'transcript', 'user', 'speech', 'audio', 'done'].map((t) => events.findIndex((e) => e.type === t));
  assert(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `order: ${events.map((e) => e.type).join(' ')}`);
  const audio = events.find((e) => e.type === 'audio');
  const first = audioBytes[0];
  assert(first && first.length === audio.bytes, `audio event says ${audio.bytes} bytes, got ${first?.length}`);
  assert(String.fromCharCode(...first.slice(0, 4)) === 'RIFF', 'the sentence comes as a WAV');
  assert(done.message.status === 'complete' && done.interrupted === false, JSON.stringify(done).slice(0, 300));
  assert(done.pipeline && done.pipeline.end_to_audio_ms > 0, `pipeline timings: ${JSON.stringify(done.pipeline)}`);
});

await check('hanging up ends the call and closes the connection', async () => {
  ws.send(JSON.stringify({ type: 'hangup' }));
  const ended = await waitFor('ended', 5000);
  assert(ended.reason === 'hangup', JSON.stringify(ended));
  const code = await closed;
  assert(code === 1000, `close code ${code}`);
  const after = await (await fetch(`${base}/api/chats/${chat.id}`)).json();
  assert(after.call === null, JSON.stringify(after.call));
});

await server.stop();
process.exit(summary());
