// Drives mycandy's OpenAI-compatible endpoints with the official `openai` npm client.
// Usage: node openai_client.test.mjs <path to mycandy> <path to a GGUF model> [<whisper model> <VAD model>]
// Starts the server on a free port with a temporary data folder, runs the checks, stops it.
// Prints "N passed, M failed" and exits non-zero when anything failed.
import { spawnSync } from 'node:child_process';
import OpenAI, { toFile } from 'openai';
import { assert, checks, startMycandy } from '../js/mycandy_server.mjs';

const [binary, model, whisperModel, vadModel] = process.argv.slice(2);
if (!binary || !model) {
  console.error('usage: node openai_client.test.mjs <mycandy> <model.gguf>');
  process.exit(2);
}

const settings = { llm: { model_path: model, context_size: 2048, max_tokens: 16, threads: 2 } };
if (whisperModel) settings.stt = { model_path: whisperModel, vad_model_path: vadModel ?? '', threads: 2 };
const server = await startMycandy(binary, settings, 'mc-openai-');
const base = server.base;

const { check, summary } = checks();

const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'not-needed' });
const messages = [
  { role: 'system', content: 'You are Mia.' },
  { role: 'user', content: 'Hallo Mia!' },
];

await check('models.list names the loaded model', async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert(ids.length === 1 && ids[0].endsWith('.gguf'), `ids: ${JSON.stringify(ids)}`);
});

await check('chat.completions.create without streaming', async () => {
  const r = await client.chat.completions.create({ model: 'any', messages, max_tokens: 8, seed: 3 });
  assert(r.object === 'chat.completion', `object ${r.object}`);
  assert(r.choices[0].message.role === 'assistant', 'role');
  assert(typeof r.choices[0].message.content === 'string', 'content');
  assert(r.choices[0].finish_reason === 'length', `finish ${r.choices[0].finish_reason}`);
  assert(r.usage.completion_tokens === 8, `usage ${JSON.stringify(r.usage)}`);
  assert(r.usage.total_tokens === r.usage.prompt_tokens + 8, 'total');
});

await check('chat.completions.create with streaming and usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'any', messages, max_tokens: 6, seed: 3, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length) {
      text += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
  }
  assert(chunks >= 3, `chunks ${chunks}`);
  assert(finish === 'length', `finish ${finish}`);
  assert(usage && usage.completion_tokens === 6, `usage ${JSON.stringify(usage)}`);
  assert(!text.includes('<|'), 'control tokens in text');
});

await check('bad parameters are a 400 the client reports', async () => {
  try {
    await client.chat.completions.create({ model: 'x', messages, top_p: 3 });
    throw new Error('no error');
  } catch (e) {
    assert(e.status === 400, `status ${e.status}`);
    assert(String(e.message).includes('top_p'), e.message);
  }
  try {
    await client.chat.completions.create({ model: 'x', messages: [] });
    throw new Error('no error');
  } catch (e) {
    assert(e.status === 400, `status ${e.status}`);
  }
});

await check('completions.create without streaming (n = 2)', async () => {
  const r = await client.completions.create({ model: 'any', prompt: 'Once upon a time', max_tokens: 4, n: 2, seed: 9 });
  assert(r.object === 'text_completion', `object ${r.object}`);
  assert(r.choices.length === 2 && r.choices[1].index === 1, `choices ${JSON.stringify(r.choices)}`);
  assert(typeof r.choices[0].text === 'string', 'text');
  assert(r.choices[0].finish_reason === 'length', `finish ${r.choices[0].finish_reason}`);
  assert(r.usage.completion_tokens === 8, `usage ${JSON.stringify(r.usage)}`);
});

await check('completions.create with streaming and usage', async () => {
  const stream = await client.completions.create({
    model: 'any', prompt: 'Once upon a time', max_tokens: 5, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length) {
      assert(chunk.object === 'text_completion', `object ${chunk.object}`);
      text += chunk.choices[0].text ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
  }
  assert(chunks >= 3, `chunks ${chunks}`);
  assert(finish === 'length', `finish ${finish}`);
  assert(usage && usage.completion_tokens === 5, `usage ${JSON.stringify(usage)}`);
  assert(!text.includes('<|'), 'control tokens in text');
});

await check('completions.create refuses n = 17 naming n', async () => {
  try {
    await client.completions.create({ model: 'x', prompt: 'x', n: 17 });
    throw new Error('no error');
  } catch (e) {
    assert(e.status === 400, `status ${e.status}`);
    assert(String(e.message).includes("'n'"), e.message);
  }
});

// SillyTavern's llama.cpp text completion, as plain HTTP: /props, /tokenize, streamed /completion.
await check('plain HTTP as SillyTavern sends it: /props, /tokenize, /completion (stream)', async () => {
  const props = await (await fetch(`${base}/props`)).json();
  assert(props.default_generation_settings.n_ctx === 2048, `n_ctx ${JSON.stringify(props.default_generation_settings)}`);
  const tok = await (await fetch(`${base}/tokenize`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ content: 'Hallo Mia!' }),
  })).json();
  assert(Array.isArray(tok.tokens) && tok.tokens.length > 1, JSON.stringify(tok));
  const res = await fetch(`${base}/completion`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      prompt: 'Mia: Hallo!\nUser: Wie geht es dir?\nMia:', n_predict: 4, max_tokens: 4, temperature: 0.7, top_k: -1,
      top_p: 0.9, min_p: 0, repeat_penalty: 1.1, repeat_last_n: 0, typical_p: 1, mirostat: 0, stream: true,
      cache_prompt: true, stop: ['\nUser:'], stopping_strings: ['\nUser:'], samplers: ['top_k', 'temperature'],
    }),
  });
  assert(res.status === 200, `status ${res.status}`);
  const body = await res.text();
  const events = body.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
  assert(events.length >= 1 && events.at(-1).stop === true, body.slice(0, 300));
  assert(events.at(-1).tokens_predicted <= 4, JSON.stringify(events.at(-1)));
});

// Speech to text: espeak-ng speech (made here) between a second of silence on each side, as WAV.
function spokenWav(text) {
  const r = spawnSync('espeak-ng', ['-v', 'en', '--stdout', text]);
  if (r.status !== 0) throw new Error('espeak-ng is needed');
  const wav = r.stdout;
  const data = wav.indexOf('data');
  const rate = wav.readUInt32LE(24);
  const pcm = wav.subarray(data + 8);
  const silence = Buffer.alloc(rate * 2);
  const body = Buffer.concat([silence, pcm, silence]);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0); header.writeUInt32LE(36 + body.length, 4); header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24); header.writeUInt32LE(rate * 2, 28); header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34); header.write('data', 36); header.writeUInt32LE(body.length, 40);
  return Buffer.concat([header, body]);
}

if (whisperModel) {
  const wav = spokenWav('Good evening Mia, how was your day?');
  await check('audio.transcriptions.create (json)', async () => {
    const r = await client.audio.transcriptions.create({ file: await toFile(wav, 'speech.wav'), model: 'whisper-1', language: 'en' });
    assert(typeof r.text === 'string' && r.text.length > 0, `text ${JSON.stringify(r)}`);
  });
  await check('audio.transcriptions.create (verbose_json): segments inside the speech', async () => {
    const r = await client.audio.transcriptions.create({
      file: await toFile(wav, 'speech.wav'), model: 'whisper-1', response_format: 'verbose_json', prompt: 'Mia',
    });
    assert(r.segments.length > 0, 'no segments');
    assert(r.segments[0].start > 0.8 && r.segments[0].start < 1.3, `start ${r.segments[0].start}`);
    assert(r.duration > r.segments.at(-1).end, `duration ${r.duration}`);
  });
  await check('audio.transcriptions.create (text)', async () => {
    const r = await client.audio.transcriptions.create({ file: await toFile(wav, 'speech.wav'), model: 'whisper-1', response_format: 'text' });
    assert(typeof r === 'string' && r.endsWith('\n'), `text ${JSON.stringify(r)}`);
  });
  await check('audio.transcriptions.create with a non-audio file is a 415 the client reports', async () => {
    try {
      await client.audio.transcriptions.create({ file: await toFile(Buffer.from('hello'), 'a.txt'), model: 'whisper-1' });
      throw new Error('no error');
    } catch (e) {
      assert(e.status === 415, `status ${e.status}`);
    }
  });
}

await server.stop();
process.exit(summary());
