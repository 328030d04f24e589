// Shared by the JavaScript tests (tests/openai, ui/e2e): runs the real mycandy server on a free port
// with a temporary data folder and the given settings, and waits until its model has loaded.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Returns { base, dir, stop() }. `options`: `args` (more command-line arguments, e.g. --https),
// `host` (the address in `base`, default 127.0.0.1), `https` (base is https://; the server's
// certificate is its own self-signed one, so this process stops verifying certificates), `token`
// (sent while waiting for the server).
export async function startMycandy(binary, settings, prefix = 'mc-js-', options = {}) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'settings.json'), JSON.stringify(settings));
  const port = await freePort();
  const server = spawn(binary, ['serve', '--port', String(port), '--data-dir', join(dir, 'data'),
    '--config', join(dir, 'settings.json'), ...(options.args ?? [])], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (options.https) process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  const host = options.host ?? '127.0.0.1';
  const base = `${options.https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const headers = options.token ? { Authorization: `Bearer ${options.token}` } : {};
  for (let i = 0; i < 500; i++) {
    try {
      const h = await (await fetch(`${base}/api/health`, { headers })).json();
      if (h.components.llm.state !== 'loading') break;
    } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    base,
    dir,
    async stop() {
      server.kill('SIGTERM');
      await new Promise((r) => server.on('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A tiny test runner: named checks that report "ok"/"FAIL" and count; `onFail` runs after a failure
// (the UI tests take a screenshot). `summary()` prints "N passed, M failed" and returns the exit code.
export function checks(onFail = async () => {}) {
  let passed = 0;
  let failed = 0;
  return {
    async check(name, fn) {
      try {
        await fn();
        passed++;
        console.log(`ok   ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e.stack || e}`);
        await Promise.resolve().then(() => onFail(passed + failed)).catch(() => {});
      }
    },
    summary() {
      console.log(`${passed} passed, ${failed} failed`);
      return failed ? 1 : 0;
    },
  };
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
