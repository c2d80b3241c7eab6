// SPDX-License-Identifier: MIT
'use strict';
// The Node binding against a real libtel, each test in a private HOME.
//   TEL_NODE_ADDON=build/tel.node node --test bindings/node/test/
// `tel show` reads back what was queued (TEL_BIN, else PATH, else the
// tree's build/bin/tel).
const { test, beforeEach, afterEach } = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { Worker } = require('worker_threads');
const tel = require('..');

const APP = 'nodeapp';
const TOP = path.join(__dirname, '..', '..', '..');
const TEL_BIN = process.env.TEL_BIN || (() => {
  for (const d of (process.env.PATH || '').split(':')) {
    if (d && fs.existsSync(path.join(d, 'tel'))) return path.join(d, 'tel');
  }
  return path.join(TOP, 'build', 'bin', 'tel');
})();

let home;
const saved = { ...process.env };
beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'tel-node.'));
  for (const k of Object.keys(process.env)) {
    if (k === 'DO_NOT_TRACK' || k === 'CI' || k.includes('_TELEMETRY_') || k.startsWith('XDG_')) delete process.env[k];
  }
  process.env.HOME = home;
});
afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
  // A tel-sync a test started detached may still be writing its state
  // here: removal retries (ENOTEMPTY) rather than failing the test.
  fs.rmSync(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

function queued(app = APP) {
  const out = execFileSync(TEL_BIN, ['show', '--app', app], { env: { ...process.env, HOME: home }, maxBuffer: 64 << 20 }).toString();
  return out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

test('tel.emit records integers, floats, booleans, null, bigints and UTF-8 strings with their types', () => {
  assert.strictEqual(tel.emit(APP, 'deploy', { services: 3, ratio: 2.5, dry: false, none: null, who: 'équipe',
    big: -(2n ** 63n), skipped: undefined }), true);
  const evs = queued();
  assert.strictEqual(evs.length, 1);
  assert.deepStrictEqual(evs[0].props, { services: 3, ratio: 2.5, dry: false, none: null, who: 'équipe',
    big: -9223372036854775808 });
  const raw = execFileSync(TEL_BIN, ['show', '--app', APP], { env: { ...process.env, HOME: home }, maxBuffer: 64 << 20 }).toString();
  assert.match(raw, /"services":3,"ratio":2.5,/);
});

test('DO_NOT_TRACK=1 makes emit record nothing and create no state', () => {
  process.env.DO_NOT_TRACK = '1';
  assert.strictEqual(tel.emit(APP, 'deploy', { n: 1 }), false);
  const t = new tel.Telemetry(APP);
  assert.strictEqual(t.enabled, false);
  assert.strictEqual(t.emit('deploy'), false);
  t.close();
  assert.strictEqual(fs.existsSync(path.join(home, '.local', 'state', APP)), false);
  delete process.env.DO_NOT_TRACK;
  assert.deepStrictEqual(queued(), []);
});

test('a host --no-telemetry flag ({ enabled: false, byFlag: true }) records nothing', () => {
  const t = new tel.Telemetry(APP, { enabled: false, byFlag: true });
  assert.strictEqual(t.enabled, false);
  assert.strictEqual(t.openStatus, tel.codes.DISABLED);
  assert.strictEqual(t.emit('deploy'), false);
  t.close();
  assert.deepStrictEqual(queued(), []);
});

test('caller mistakes throw a TelError with code and detail', () => {
  const invalid = (fn, what) => assert.throws(fn, (e) => e instanceof tel.TelError && e.code === tel.codes.ERR_INVALID
    && !e.environmental && (!what || e.detail.includes(what)));
  invalid(() => tel.emit(APP, 'bad name'), 'space');
  invalid(() => tel.emit(APP, 'e', { o: Symbol('x') }), "'o'");
  invalid(() => tel.emit(APP, 'e', { n: 2n ** 64n }), "'n'");
  invalid(() => tel.emit(APP, 'e', { s: 'a\0b' }), 'NUL');
  invalid(() => tel.emit(APP, 'e', [1, 2]), 'object');
  invalid(() => tel.emit('Bad/App', 'e'));
  invalid(() => tel.emit(APP, 42));
  const many = {};
  for (let i = 0; i < 33; i++) many[`k${i}`] = i;
  assert.throws(() => tel.emit(APP, 'e', many), (e) => e.code === tel.codes.ERR_LIMIT);
  assert.deepStrictEqual(queued(), []);
});

test('an unusable HOME makes emit return false, and throw an environmental TelError only when strict', () => {
  const f = path.join(home, 'file');
  fs.writeFileSync(f, '');
  process.env.HOME = f;
  assert.strictEqual(tel.emit(APP, 'deploy'), false);
  assert.throws(() => tel.emit(APP, 'deploy', {}, { strict: true }),
    (e) => e.code === tel.codes.ERR_NOSTATE && e.environmental);
  const t = new tel.Telemetry(APP);
  assert.strictEqual(t.emit('deploy'), false);
  t.close();
  assert.throws(() => new tel.Telemetry(APP, { strict: true }), tel.TelError);
});

test('a handle records the command lifecycle with option names, a batch and its version', async () => {
  const t = new tel.Telemetry(APP, { version: '1.4.2' });
  assert.strictEqual(t.enabled, true);
  t.command('deploy', { options: ['force', 'output'], envOptions: ['token'] }, () => {
    t.batch(() => {
      for (let i = 0; i < 3; i++) assert.strictEqual(t.emit('step', { i }), true);
      assert.strictEqual(queued().length, 1);
    });
  });
  await assert.rejects(t.command('build', async () => { throw new RangeError('x'); }), RangeError);
  assert.throws(() => t.command('sync', () => { throw new TypeError('y'); }), TypeError);
  t.close();
  const evs = queued();
  assert.deepStrictEqual(evs.map((e) => e.name), ['command.started', 'step', 'step', 'step', 'command.exited',
    'command.started', 'command.exited', 'command.started', 'command.exited']);
  assert.deepStrictEqual(evs[0].props, { command: 'deploy', options: 'force,output', env_options: 'token' });
  assert.strictEqual(evs[4].props.exit_code, 0);
  assert.strictEqual(evs[6].props.exit_code, 1);
  assert.strictEqual(evs[6].props.success, false);
  assert.strictEqual(evs[6].props.error, undefined); // messages stay home unless debug telemetry is on
  assert.strictEqual(evs[0].context.app_version, '1.4.2');
  assert.strictEqual(new Set(evs.map((e) => e.exec)).size, 1);
});

test('metric() and prometheus() record metric events; malformed text throws naming the line', () => {
  const t = new tel.Telemetry(APP);
  assert.strictEqual(t.metric('jobs_total', 7.5, { queue: 'default' }), true);
  assert.strictEqual(t.prometheus('# TYPE up gauge\nup 1\n'), true);
  assert.throws(() => t.prometheus('ok 1\nbad{ 2\n'), (e) => e.code === tel.codes.ERR_INVALID && e.detail.includes('line 2'));
  assert.throws(() => t.metric('x', NaN), tel.TelError);
  assert.throws(() => t.metric('x', 1, { l: 3 }), (e) => e.detail.includes("'l'"));
  t.close();
  assert.deepStrictEqual(queued().map((e) => e.props), [
    { name: 'jobs_total', value: 7.5, 'label.queue': 'default' }, { name: 'up', value: 1, kind: 'gauge' }]);
});

test('the notice is due once; with requireNotice nothing is recorded before it was shown', () => {
  const t = new tel.Telemetry(APP, { requireNotice: true });
  assert.strictEqual(t.noticeDue(), true);
  assert.strictEqual(t.emit('early'), false);
  assert.strictEqual(t.noticeShown(), true);
  assert.strictEqual(t.noticeDue(), false);
  assert.strictEqual(t.emit('later'), true);
  t.close();
  assert.deepStrictEqual(queued().map((e) => e.name), ['later']);
});

test('status, disable, enable and forget act on the user\'s state', () => {
  tel.emit(APP, 'one');
  assert.match(tel.status(APP), /1 event queued/);
  const cookie = path.join(home, '.local', 'state', APP, 'telemetry-cookie');
  const first = fs.readFileSync(cookie, 'utf8');
  tel.forget(APP);
  assert.strictEqual(fs.existsSync(cookie), false);
  tel.disable(APP);
  assert.strictEqual(tel.emit(APP, 'two'), false);
  assert.match(tel.status(APP), /off/);
  tel.enable(APP);
  assert.strictEqual(tel.emit(APP, 'three'), true);
  assert.notStrictEqual(fs.readFileSync(cookie, 'utf8'), first);
  assert.deepStrictEqual(queued().map((e) => e.name), ['three']);
  assert.throws(() => tel.status('../x'), tel.TelError);
});

test('a log function receives each recorded event, and one that throws is ignored', () => {
  const lines = [];
  const t = new tel.Telemetry(APP, { log: (l) => { lines.push(l); throw new Error('host bug'); } });
  assert.strictEqual(t.emit('seen', { k: 'v' }), true);
  t.close();
  assert.strictEqual(lines.length, 1);
  assert.match(lines[0], /"name":"seen"/);
});

test('spawnSync starts a tel-sync when something is queued, not again within the interval', () => {
  process.env.NODEAPP_TELEMETRY_ENDPOINT = 'http://127.0.0.1:9/v1/batch';
  const t = new tel.Telemetry(APP);
  assert.strictEqual(t.spawnSync(), false);
  t.emit('one');
  assert.strictEqual(t.spawnSync(), true);
  assert.strictEqual(t.spawnSync(), false);
  t.close();
});

test('a closed handle records nothing, and throws only when strict', () => {
  const t = new tel.Telemetry(APP);
  t.close();
  assert.strictEqual(t.emit('late'), false);
  const s = new tel.Telemetry(APP, { strict: true });
  s.close();
  assert.throws(() => s.emit('late'), (e) => e.code === tel.codes.ERR_STATE);
  assert.deepStrictEqual(queued(), []);
});

test('worker threads each open their own handle; every event is recorded once', async () => {
  const code = `
    const { workerData } = require('worker_threads');
    const tel = require(${JSON.stringify(path.join(__dirname, '..'))});
    const t = new tel.Telemetry(workerData.app);
    for (let i = 0; i < 40; i++) t.emit('w', { w: workerData.w, i });
    t.close();`;
  // One app per worker: LMDB must not have one queue open twice in a process.
  const runs = [0, 1, 2, 3].map((w) => new Promise((resolve, reject) => {
    const wk = new Worker(code, { eval: true, workerData: { w, app: `${APP}-w${w}` }, env: process.env });
    wk.on('error', reject);
    wk.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`worker exit ${c}`))));
  }));
  await Promise.all(runs);
  for (let w = 0; w < 4; w++) {
    const evs = queued(`${APP}-w${w}`);
    assert.strictEqual(new Set(evs.map((e) => `${e.props.w}.${e.props.i}`)).size, 40);
  }
});

function rssAnonKiB() {
  global.gc();
  const m = /RssAnon:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return Number(m[1]);
}

test('100,000 emits on one handle (in batches, the queue at its cap) keep the resident heap flat', { skip: !global.gc && 'run with --expose-gc' }, () => {
  const t = new tel.Telemetry(APP);
  const props = { command: 'deploy', n: 1, ratio: 0.5, ok: true };
  const emit = (n) => {
    for (let k = 0; k < n / 1000; k++) t.batch(() => { for (let i = 0; i < 1000; i++) t.emit('mem', props); });
  };
  emit(10000);
  const before = rssAnonKiB();
  emit(90000);
  const after = rssAnonKiB();
  t.close();
  assert.strictEqual(queued().length, 10000);
  assert.ok(after - before < 3072, `resident heap grew ${after - before} KiB from 10,000 to 100,000 events`);
});

test('events for the collector (only when TEL_E2E_HOME is set)', { skip: !process.env.TEL_E2E_HOME }, () => {
  process.env.HOME = process.env.TEL_E2E_HOME;
  assert.strictEqual(tel.emit('e2e-node', 'e2e.typed', { count: 3, ratio: 2.5, ok: true, none: null, who: 'équipe' }), true);
  process.env.DO_NOT_TRACK = '1';
  assert.strictEqual(tel.emit('e2e-node-dnt', 'e2e.optedout'), false);
});

test('a declared variable of the host\'s own is an opt-out, and status names it', () => {
  const env = [{ name: 'NODEAPP_NO_TELEMETRY', meaning: tel.EnvMeaning.OFF_IF_SET }];
  let t = new tel.Telemetry(APP, { env });
  assert.strictEqual(t.emit('before'), true);
  t.close();
  process.env.NODEAPP_NO_TELEMETRY = '';
  t = new tel.Telemetry(APP, { env });
  assert.strictEqual(t.enabled, false);
  t.close();
  assert.match(tel.status(APP), /NODEAPP_NO_TELEMETRY/);
  delete process.env.NODEAPP_NO_TELEMETRY;
  assert.deepStrictEqual(queued(), []);
  assert.throws(() => new tel.Telemetry(APP, { env: [{ name: 'BAD NAME', meaning: 2 }] }), tel.TelError);
});

test('defaultEnabled: false records nothing until the user opts in', () => {
  let t = new tel.Telemetry(APP, { defaultEnabled: false });
  assert.strictEqual(t.emit('quiet'), false);
  t.close();
  process.env.NODEAPP_TELEMETRY_ENABLED = 'true';
  t = new tel.Telemetry(APP, { defaultEnabled: false });
  assert.strictEqual(t.emit('opted.in'), true);
  t.close();
  assert.deepStrictEqual(queued().map((e) => e.name), ['opted.in']);
});

test('inspect writes the run\'s events to the host\'s file and debug logs them; neither queues', () => {
  const file = path.join(home, 'inspect.txt');
  let t = new tel.Telemetry(APP, { inspect: file });
  assert.strictEqual(t.emit('looked.at'), true);
  t.close();
  assert.match(fs.readFileSync(file, 'utf8'), /"name":"looked.at"/);
  const lines = [];
  t = new tel.Telemetry(APP, { debug: true, log: (l) => lines.push(l) });
  t.emit('debugged');
  t.close();
  assert.strictEqual(lines.length, 1);
  assert.match(lines[0], /debugged/);
  assert.deepStrictEqual(queued(), []);
});

test('ErrorDetail.SANITIZED records the error message without its path; sanitize() is the same cleaner', () => {
  const t = new tel.Telemetry(APP, { errorDetail: tel.ErrorDetail.SANITIZED });
  assert.throws(() => t.command('read', () => { throw new RangeError('cannot open /home/alice/secret.txt'); }), RangeError);
  t.close();
  const p = queued()[1].props;
  assert.strictEqual(p.error_class, 'RangeError');
  assert.ok(p.error && !p.error.includes('alice'), JSON.stringify(p));
  assert.ok(!tel.sanitize('cannot open /home/alice/secret.txt').includes('alice'));
});

test('arrays and plain objects are recorded as structured values, in their shape; a Date, a Map or a class instance is refused', () => {
  assert.strictEqual(tel.emit(APP, 'build', {
    config: { adapter: '@astrojs/vercel', integrations: ['@astrojs/mdx', '@astrojs/rss'], markdown: { syntaxHighlight: 'shiki' } },
    commandOptions: [{ name: 'env', asCli: true, asEnv: false, count: 2, skipped: undefined }],
    empty: [],
  }), true);
  assert.deepStrictEqual(queued()[0].props, {
    config: { adapter: '@astrojs/vercel', integrations: ['@astrojs/mdx', '@astrojs/rss'], markdown: { syntaxHighlight: 'shiki' } },
    commandOptions: [{ name: 'env', asCli: true, asEnv: false, count: 2 }],
    empty: [],
  });
  assert.throws(() => tel.emit(APP, 'deep', { d: [[[[[1]]]]] }), (e) => e.code === tel.codes.ERR_LIMIT);
  const self = [];
  self.push(self);
  assert.throws(() => tel.emit(APP, 'self', { d: self }), (e) => e.code === tel.codes.ERR_LIMIT);
  assert.throws(() => tel.emit(APP, 'fn', { d: [() => 1] }), (e) => e.code === tel.codes.ERR_INVALID && e.detail.includes("'d'"));
  for (const odd of [new Date(0), new Map([['a', 1]]), new (class Opts { constructor() { this.a = 1; } })()]) {
    assert.throws(() => tel.emit(APP, 'odd', { d: { inner: odd } }),
      (e) => e.code === tel.codes.ERR_INVALID && e.detail.includes('non-plain object'), String(odd));
  }
  assert.strictEqual(tel.emit(APP, 'bare', { d: Object.assign(Object.create(null), { a: 1 }) }), true);
  assert.deepStrictEqual(queued().map((e) => e.props.d), [undefined, { a: 1 }]);
});

test('erasure: true makes forget leave a request to erase the old id; erasure: false takes the offer back', () => {
  const state = path.join(home, '.local', 'state', APP);
  let t = new tel.Telemetry(APP, { erasure: true });
  assert.strictEqual(t.emit('one'), true);
  t.close();
  const old = fs.readFileSync(path.join(state, 'telemetry-cookie'), 'utf8').trim();
  tel.forget(APP);
  const pending = path.join(state, 'telemetry-erasure');
  assert.deepStrictEqual(fs.readdirSync(pending), [old]);
  assert.ok(fs.readFileSync(path.join(pending, old), 'utf8').split('\n').includes(`erase 1 ${old}`));
  t = new tel.Telemetry(APP, { erasure: false });
  t.emit('two');
  t.close();
  tel.forget(APP);
  assert.deepStrictEqual(fs.readdirSync(pending), [old]);
});

test('execId() hands the run to a child through the option or the environment', () => {
  let t = new tel.Telemetry(APP);
  const run = t.execId();
  t.emit('parent');
  t.close();
  assert.strictEqual(run.length, 36);
  t = new tel.Telemetry(APP, { execId: run });
  t.emit('child.option');
  t.close();
  process.env.NODEAPP_TELEMETRY_EXEC_ID = run;
  tel.emit(APP, 'child.env');
  delete process.env.NODEAPP_TELEMETRY_EXEC_ID;
  // One run, recorded under an id derived from the token and the
  // anonymous id, never the token itself.
  const execs = queued().map((e) => e.exec);
  assert.strictEqual(execs.length, 3);
  assert.strictEqual(new Set(execs).size, 1);
  assert.ok(!execs.includes(run));
  t = new tel.Telemetry(APP, { enabled: false });
  assert.strictEqual(t.execId(), '');
  t.close();
  assert.throws(() => new tel.Telemetry(APP, { execId: 'not-a-uuid' }), (e) => e.code === tel.codes.ERR_INVALID);
});

test('projectLinkable records sha256 of the normalised origin URL as the project id', () => {
  const repo = path.join(home, 'repo');
  execFileSync('git', ['init', '-q', repo]);
  execFileSync('git', ['-C', repo, 'remote', 'add', 'origin', 'https://github.com/o/r.git']);
  const cwd = process.cwd();
  process.chdir(repo);
  try {
    const t = new tel.Telemetry(APP, { projectLinkable: true });
    t.emit('in.repo');
    t.close();
  } finally {
    process.chdir(cwd);
  }
  const want = require('crypto').createHash('sha256').update('github.com/o/r').digest('hex');
  assert.strictEqual(queued()[0].context.project, want);
});

test('spans record their name, parent, duration and status; a throwing function ends one with status 1', async () => {
  const t = new tel.Telemetry(APP);
  await t.span('sync', async (outer) => {
    outer.span('fetch', () => {});
    assert.throws(() => outer.span('parse', () => { throw new Error('x'); }), /x/);
  });
  const manual = t.span('manual');
  assert.strictEqual(manual.end(7), true);
  assert.strictEqual(manual.end(7), false);
  assert.throws(() => t.span('bad name'), (e) => e.code === tel.codes.ERR_INVALID);
  const dangling = t.span('never.ended');
  t.close();
  assert.strictEqual(dangling.end(), false);
  const spans = Object.fromEntries(queued().filter((e) => e.name === 'span').map((e) => [e.props.name, e.props]));
  assert.deepStrictEqual(Object.keys(spans).sort(), ['fetch', 'manual', 'parse', 'sync']);
  assert.strictEqual(spans.fetch.parent_id, spans.sync.span_id);
  assert.strictEqual(spans.parse.status, 1);
  assert.strictEqual(spans.manual.status, 7);
  assert.strictEqual(spans.sync.parent, undefined);
});

test('the open-span limit gives a span that records nothing, and throws ERR_LIMIT only when strict', () => {
  let t = new tel.Telemetry(APP);
  for (let i = 0; i < 1024; i++) t.span('held');
  const extra = t.span('one.more');
  assert.strictEqual(extra.end(), false);
  t.close();
  t = new tel.Telemetry(APP, { strict: true });
  for (let i = 0; i < 1024; i++) t.span('held');
  assert.throws(() => t.span('one.more'),
    (e) => e instanceof tel.TelError && e.code === tel.codes.ERR_LIMIT && /open spans/.test(e.detail));
  t.close();
  assert.deepStrictEqual(queued().filter((e) => e.name === 'span'), []);
});

test('a span of another handle is refused as a parent, even once that handle is closed', () => {
  const a = new tel.Telemetry(APP);
  const b = new tel.Telemetry('nodeapp.other');
  const parent = a.span('parent');
  a.close();
  assert.throws(() => b.span('child', { parent }), (e) => e.code === tel.codes.ERR_INVALID);
  b.close();
});

test('a daemon keeps its identity across restarts; setEnabled(false) flips the open handle off and purges', () => {
  const stateDir = path.join(home, 'var');
  const opts = { stateDir, installationId: 'cluster-uid-1' };
  let t = new tel.Telemetry(APP, opts);
  assert.strictEqual(t.emit('one'), true);
  assert.strictEqual(t.setEnabled(false), false);
  assert.strictEqual(t.emit('off'), false);
  assert.strictEqual(t.setEnabled(true), true);
  t.emit('two');
  t.close();
  t = new tel.Telemetry(APP, opts);
  t.emit('three');
  t.close();
  process.env.NODEAPP_TELEMETRY_STATE_DIR = stateDir;
  const evs = queued();
  delete process.env.NODEAPP_TELEMETRY_STATE_DIR;
  assert.deepStrictEqual(evs.map((e) => e.name), ['two', 'three']);
  assert.strictEqual(new Set(evs.map((e) => e.anon)).size, 1);
});
