#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// A Node.js program recording one event by running `tel emit`, which is
// what any language without a binding can do today.
//
//     node emit.js          (tel must be on PATH)
'use strict';
const { execFileSync } = require('child_process');

function emit(app, event, props) {
  const args = ['emit', '--app', app, event];
  for (const [k, v] of Object.entries(props)) {
    // tel types a value that prints back as the same text: 42 becomes
    // an integer, true a boolean, anything else stays a string.
    args.push(`${k}=${v}`);
  }
  try {
    // tel emit takes about a millisecond and exits 0 even when the
    // event could not be queued, so waiting for it costs nothing.
    execFileSync('tel', args, { stdio: 'ignore', timeout: 5000 });
  } catch (e) {
    // No tel on PATH, or a bad event: telemetry never fails its host.
  }
}

emit('example-node', 'example.ran', { lang: 'node', answer: 42 });
