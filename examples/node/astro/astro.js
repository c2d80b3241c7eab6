#!/usr/bin/env node
// SPDX-License-Identifier: MIT
'use strict';
// examples/node/astro/astro.js - the Astro CLI's telemetry kept knob for
// knob with tel's Node binding: the Node version of examples/astro.
// README.md beside it maps each line of Astro's telemetry page to the call
// that keeps it.
//
//   astro dev|build|preview|fail
//   astro telemetry enable|disable
const path = require('path');
const tel = require(process.env.TEL_NODE_BINDING || path.join(__dirname, '..', '..', '..', 'bindings', 'node'));

const APP = 'astro';
const COMMANDS = ['dev', 'build', 'preview', 'fail'];

// `astro telemetry disable` turns telemetry off for the whole machine and
// deletes what was queued; `enable` turns it back on.
function telemetryCommand(verb) {
  if (verb !== 'enable' && verb !== 'disable') {
    console.error(`astro: unknown telemetry command '${verb}' (enable, disable)`);
    return 2;
  }
  tel[verb](APP);
  console.log(`Anonymous telemetry ${verb}d.`);
  return 0;
}

async function main(argv) {
  const command = argv[0];
  if (!command) {
    console.error('usage: astro dev|build|preview|fail\n       astro telemetry enable|disable');
    return 2;
  }
  if (command === 'telemetry') return telemetryCommand(argv[1]);

  // The knobs of Astro's page, declared once: tel status and tel-sync
  // apply the same variables from then on.
  const t = new tel.Telemetry(APP, {
    version: '4.16.0',
    env: [
      { name: 'ASTRO_TELEMETRY_DISABLED', meaning: tel.EnvMeaning.OFF_IF_TRUE },
      { name: 'DEBUG', meaning: tel.EnvMeaning.DEBUG_IF_CONTAINS, word: 'astro:telemetry' },
    ],
    // "Sanitized error information" is part of what Astro sends.
    errorDetail: tel.ErrorDetail.SANITIZED,
  });
  // Only a name from astro's own list is recorded: what the user typed may
  // be anything (a path, a token).  Anything else is recorded as
  // "unknown", its error by class alone: the message would name it.
  if (!COMMANDS.includes(command)) {
    console.error(`astro: unknown command '${command}'`);
    t.commandStarted('unknown');
    t.commandExited(2, 'UnknownCommand');
    t.spawnSync();
    t.close();
    return 2;
  }
  let status = 0;
  try {
    await t.command(command, async () => {
      // General configuration information: the adapter, the integrations
      // and the markdown options, never the project's paths or values.
      t.emit('config', {
        config: {
          markdownPlugins: [],
          adapter: '@astrojs/vercel',
          integrations: ['@astrojs/mdx', '@astrojs/rss'],
          markdown: { syntaxHighlight: 'shiki' },
        },
      });
      if (command === 'fail') {
        // A real failure names the user's files; the sanitiser takes them out.
        const err = new Error(`Cannot read ${process.env.HOME}/site/astro.config.mjs: no such file`);
        err.name = 'ConfigNotFound';
        throw err;
      }
      console.log(`astro ${command}: done`);
    });
  } catch (e) {
    console.error(`astro: ${e.message}`);
    status = 1;
  }
  t.spawnSync();
  t.close();
  return status;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
