// SPDX-License-Identifier: MIT
'use strict';
// bench/bind_emit.js ROUNDS N - one durable event from Node: through a
// tel.Telemetry handle, through tel.emit(), and as `tel emit` run with
// child_process.spawnSync (TEL_BIN).  Prints "node HANDLE_US ONECALL_US
// SUBPROCESS_US HANDLE_CPU_US SUBPROCESS_CPU_US", each the median over ROUNDS
// rounds of the mean per event; CPU is user + system time of this process
// and of the children it waited for.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const tel = require(path.join(__dirname, '..', 'bindings', 'node'));

const [rounds, n] = process.argv.slice(2).map(Number);
const props = { command: 'deploy', services: 3, ratio: 0.5, dry_run: false };
const bin = process.env.TEL_BIN || 'tel';
const argv = ['emit', '--app', 'bench-node', 'deploy.finished', 'command=deploy', 'services=3', 'ratio=0.5',
  'dry_run=false'];
const h = new tel.Telemetry('bench-node', { strict: true });

// Node reports no CPU time of children, so theirs is read from
// /proc/self/stat (cutime + cstime, in clock ticks of 10 ms): the subprocess
// loop runs N times, enough ticks to keep that coarse clock within a few
// per cent.
function childrenCpuUs() {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10000;
}
function cpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system + childrenCpuUs();
}
const res = { handle: [], onecall: [], sub: [], handle_cpu: [], onecall_cpu: [], sub_cpu: [] };
function perEvent(fn, count, key) {
  const c0 = cpuUs();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) fn();
  res[key].push(Number(process.hrtime.bigint() - t0) / count / 1000);
  res[`${key}_cpu`].push((cpuUs() - c0) / count);
}
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];

for (let r = 0; r < rounds; r++) {
  perEvent(() => h.emit('deploy.finished', props), n, 'handle');
  perEvent(() => tel.emit('bench-node', 'deploy.finished', props, { strict: true }), n, 'onecall');
  perEvent(() => {
    const p = spawnSync(bin, argv);
    if (p.status !== 0) throw new Error(`tel emit exited ${p.status}`);
  }, n, 'sub');
}
h.close();
console.log(['node', ...['handle', 'onecall', 'sub', 'handle_cpu', 'sub_cpu'].map((k) => median(res[k]).toFixed(1))]
  .join(' '));
