// SPDX-License-Identifier: MIT
'use strict';
// bench/bind_emit.js ROUNDS N - one durable event from Node: through a
// tel.Telemetry handle, through tel.emit(), and as `tel emit` run with
// child_process.spawnSync (TEL_BIN).  Prints "node HANDLE_US ONECALL_US
// SUBPROCESS_US", each the median over ROUNDS rounds of the mean per event.
const { spawnSync } = require('child_process');
const path = require('path');
const tel = require(path.join(__dirname, '..', 'bindings', 'node'));

const [rounds, n] = process.argv.slice(2).map(Number);
const props = { command: 'deploy', services: 3, ratio: 0.5, dry_run: false };
const bin = process.env.TEL_BIN || 'tel';
const argv = ['emit', '--app', 'bench-node', 'deploy.finished', 'command=deploy', 'services=3', 'ratio=0.5',
  'dry_run=false'];
const h = new tel.Telemetry('bench-node', { strict: true });

function perEvent(fn, count) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) fn();
  return Number(process.hrtime.bigint() - t0) / count / 1000;
}
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];

const res = { handle: [], onecall: [], sub: [] };
for (let r = 0; r < rounds; r++) {
  res.handle.push(perEvent(() => h.emit('deploy.finished', props), n));
  res.onecall.push(perEvent(() => tel.emit('bench-node', 'deploy.finished', props, { strict: true }), n));
  res.sub.push(perEvent(() => {
    const p = spawnSync(bin, argv);
    if (p.status !== 0) throw new Error(`tel emit exited ${p.status}`);
  }, Math.max(n / 5, 10)));
}
h.close();
console.log(`node ${median(res.handle).toFixed(1)} ${median(res.onecall).toFixed(1)} ${median(res.sub).toFixed(1)}`);
