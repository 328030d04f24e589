// The installed layout (cmake/package.cmake) works on its own: `cmake --install --component mycandy`
// into a temporary prefix, then the systemd unit's own ExecStart line (with the service's folders
// moved into the temporary directory and a free port) is started from an empty working folder, so
// the UI can only come from <prefix>/share/mycandy/ui/dist, found from the installed binary.
// Usage: node install_test.mjs <cmake> <build dir>
// Prints "N passed, M failed" and exits non-zero when anything failed.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert, checks, freePort } from '../js/mycandy_server.mjs';

const [cmake, buildDir] = process.argv.slice(2);
if (!cmake || !buildDir) {
  console.error('usage: node install_test.mjs <cmake> <build dir>');
  process.exit(2);
}

const root = realpathSync(mkdtempSync(join(tmpdir(), 'mc-install-')));
const prefix = join(root, 'usr');
const dataDir = join(root, 'var/lib/mycandy');
const etcDir = join(root, 'etc/mycandy');
const workDir = join(root, 'work');
for (const d of [dataDir, etcDir, workDir]) mkdirSync(d, { recursive: true });

const { check, summary } = checks();
let server = null;
let base = '';

await check('cmake --install --component mycandy puts the server, UI, settings and unit under the prefix', async () => {
  const r = spawnSync(cmake, ['--install', buildDir, '--component', 'mycandy', '--prefix', prefix], { encoding: 'utf8' });
  assert(r.status === 0, `cmake --install exited ${r.status}: ${r.stdout}${r.stderr}`);
  for (const f of ['bin/mycandy', 'share/mycandy/ui/dist/index.html', 'share/mycandy/settings.json',
    'lib/systemd/system/mycandy.service', 'lib/mycandy/llama-server', 'lib/mycandy/ggml-rpc-server']) {
    assert(existsSync(join(prefix, f)), `${f} missing`);
  }
  // llama.cpp's own install rules (static libraries, headers) are another component.
  assert(!existsSync(join(prefix, 'include')), 'headers were installed');
  JSON.parse(readFileSync(join(prefix, 'share/mycandy/settings.json'), 'utf8'));
});

const unit = existsSync(join(prefix, 'lib/systemd/system/mycandy.service'))
  ? readFileSync(join(prefix, 'lib/systemd/system/mycandy.service'), 'utf8') : '';
const execStart = (unit.match(/^ExecStart=(.*)$/m) ?? [])[1] ?? '';

await check('the unit runs the installed binary as the mycandy user with the service folders', async () => {
  assert(execStart.startsWith(`${prefix}/bin/mycandy serve `), `ExecStart=${execStart}`);
  for (const part of ['--host 127.0.0.1', '--port 8000', '--data-dir /var/lib/mycandy', '--config /etc/mycandy/settings.json']) {
    assert(execStart.includes(part), `ExecStart lacks ${part}: ${execStart}`);
  }
  assert(/^User=mycandy$/m.test(unit) && /^WorkingDirectory=\/var\/lib\/mycandy$/m.test(unit), 'User/WorkingDirectory');
  assert(/^ReadWritePaths=\/var\/lib\/mycandy \/etc\/mycandy$/m.test(unit), 'ReadWritePaths');
});

await check('the unit\'s ExecStart line starts the server, which finds its installed UI', async () => {
  // As postinst does: the settings file comes from the shipped defaults.
  copyFileSync(join(prefix, 'share/mycandy/settings.json'), join(etcDir, 'settings.json'));
  const port = await freePort();
  const argv = execStart.replace('/var/lib/mycandy', dataDir).replace('/etc/mycandy', etcDir)
    .replace('--port 8000', `--port ${port}`).split(/\s+/);
  server = spawn(argv[0], argv.slice(1), { cwd: workDir, stdio: ['ignore', 'ignore', 'inherit'] });
  base = `http://127.0.0.1:${port}`;
  let health = null;
  for (let i = 0; i < 500 && !health; i++) {
    try { health = await (await fetch(`${base}/api/health`)).json(); } catch { await new Promise((r) => setTimeout(r, 20)); }
  }
  assert(health && health.status === 'ok', `health: ${JSON.stringify(health)}`);
  const log = readFileSync(join(dataDir, 'logs/mycandy.log'), 'utf8');
  assert(log.includes(`ui ${prefix}/share/mycandy/ui/dist)`), `the log names another UI folder: ${log.split('\n').find((l) => l.includes('serving'))}`);
});

await check('/ui serves the installed index.html and its assets', async () => {
  const r = await fetch(`${base}/ui/`);
  assert(r.status === 200, `status ${r.status}`);
  const html = await r.text();
  assert(html === readFileSync(join(prefix, 'share/mycandy/ui/dist/index.html'), 'utf8'), 'not the installed index.html');
  const asset = (html.match(/src="\/ui\/(assets\/[^"]+\.js)"/) ?? [])[1];
  assert(asset, 'index.html names no script');
  const a = await fetch(`${base}/ui/${asset}`);
  assert(a.status === 200 && (await a.text()) === readFileSync(join(prefix, 'share/mycandy/ui/dist', asset), 'utf8'), `asset ${asset}`);
});

await check('PATCH /api/settings writes the service\'s settings file', async () => {
  const r = await fetch(`${base}/api/settings`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ chat: { user_name: 'Installed' } }),
  });
  assert(r.status === 200, `status ${r.status}: ${await r.text()}`);
  const saved = JSON.parse(readFileSync(join(etcDir, 'settings.json'), 'utf8'));
  assert(saved.chat?.user_name === 'Installed', `saved: ${JSON.stringify(saved.chat)}`);
});

await check('SIGTERM stops the installed server cleanly', async () => {
  assert(server, 'not started');
  const code = await new Promise((resolve) => { server.on('exit', (c) => resolve(c)); server.kill('SIGTERM'); });
  server = null;
  assert(code === 0, `exit code ${code}`);
});

if (server) server.kill('SIGKILL');
rmSync(root, { recursive: true, force: true });
process.exit(summary());
