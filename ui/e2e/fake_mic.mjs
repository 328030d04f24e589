// Shared by the microphone e2e tests (mic.mjs, call.mjs): what Chromium's fake microphone plays —
// a sentence spoken by espeak-ng between stretches of silence, as a WAV it loops — and a Chromium
// that hears it.
import { chromium } from 'playwright-core';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../../tests/js/mycandy_server.mjs';

// Writes <dir>/mic.wav: `leadS` seconds of silence, `text` in `voice`, `tailS` seconds of silence.
export function writeMicWav(dir, text, voice, leadS, tailS) {
  const said = spawnSync('espeak-ng', ['-v', voice, '--stdout', text]);
  assert(said.status === 0, 'espeak-ng is needed');
  const wav = said.stdout;
  const rate = wav.readUInt32LE(24);
  const pcm = wav.subarray(wav.indexOf('data') + 8);
  const body = Buffer.concat([Buffer.alloc(Math.round(rate * leadS) * 2), pcm, Buffer.alloc(Math.round(rate * tailS) * 2)]);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0); header.writeUInt32LE(36 + body.length, 4); header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24); header.writeUInt32LE(rate * 2, 28); header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34); header.write('data', 36); header.writeUInt32LE(body.length, 40);
  const file = join(dir, 'mic.wav');
  writeFileSync(file, Buffer.concat([header, body]));
  return file;
}

// Debian's Chromium, headless, with `micFile` as its microphone (one loop for the whole browser).
export function launchWithMic(micFile) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${micFile}`, '--autoplay-policy=no-user-gesture-required'],
  });
}
