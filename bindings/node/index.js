// SPDX-License-Identifier: MIT
'use strict';
// tel: anonymous, opt-out usage telemetry for command-line programs.
//
// A thin layer over the tel.node addon, which converts values and calls
// libtel; the queue, the user's opt-outs, the limits and the format all
// live in the C library.  This file only decides what to throw: a
// caller's mistake always throws a TelError; a failure of the environment
// (no HOME, a read-only or full disk) makes an emit return false, and
// throws only when { strict: true } was asked for.
const path = require('path');

const codes = Object.freeze({
  OK: 0, DISABLED: 1, ERR_INVALID: -1, ERR_LIMIT: -2, ERR_NOSTATE: -3, ERR_IO: -4,
  ERR_NOMEM: -5, ERR_CORRUPT: -6, ERR_BUSY: -7, ERR_CONFIG: -8, ERR_STATE: -9, ERR_NOTFOUND: -10,
});
// What a variable of the host's own, declared in options.env, means.
const EnvMeaning = Object.freeze({
  OFF_IF_TRUE: 1, // NAME=1 is the user's opt-out: ASTRO_TELEMETRY_DISABLED=1
  OFF_IF_SET: 2, // NAME set at all is the user's opt-out: CQ_NO_TELEMETRY
  ON_OFF: 3, // NAME=1 is the user's on, NAME=0 the user's opt-out: WERF_TELEMETRY
  DEBUG_IF_CONTAINS: 4, // NAME's list holds `word`: debug for this run: DEBUG=astro:telemetry
  LOG_FILE: 5, // NAME is an audit log file: WERF_TELEMETRY_LOG_FILE
  DETAILED_ERRORS: 6, // NAME set sends sanitised error messages: CQ_DEBUG_TELEMETRY
});
// How much of an error commandExited records.
const ErrorDetail = Object.freeze({ CLASS: 0, SANITIZED: 1 });
const ENVIRONMENT = new Set([codes.ERR_NOSTATE, codes.ERR_IO, codes.ERR_NOMEM, codes.ERR_CORRUPT,
  codes.ERR_BUSY, codes.ERR_CONFIG, codes.ERR_NOTFOUND]);

// The addon: TEL_NODE_ADDON, else the source tree's build/tel.node, else
// one installed beside this file.  Not finding it is an environmental
// failure like any other: require('tel') itself never throws.
let native = null;
let loadError = '';
for (const p of [process.env.TEL_NODE_ADDON, path.join(__dirname, '..', '..', 'build', 'tel.node'),
  path.join(__dirname, 'tel.node')]) {
  if (!p) continue;
  try {
    native = require(p);
    break;
  } catch (e) {
    loadError += `${p}: ${e.message.split('\n')[0]}; `;
  }
}

class TelError extends Error {
  constructor(code, detail) {
    const what = native ? native.strerror(code) : `tel error ${code}`;
    super(detail ? `${what}: ${detail}` : what);
    this.name = 'TelError';
    this.code = code;
    this.detail = detail || '';
  }

  // True when the machine or the user's files caused it, not the caller.
  get environmental() { return ENVIRONMENT.has(this.code); }
}

function noAddon() {
  return new TelError(codes.ERR_NOTFOUND, `the tel.node addon is not built or not found (${loadError})`);
}

// true when recorded; false when off or failed for the environment.
function outcome(rc, strict) {
  if (rc >= 0) return rc === codes.OK;
  const err = new TelError(rc, native.lastError());
  if (strict || !err.environmental) throw err;
  return false;
}

function check(rc) {
  if (rc < 0) throw new TelError(rc, native.lastError());
  return rc;
}

function need() {
  if (!native) throw noAddon();
  return native;
}

// Records one event for app with no set-up.
function emit(app, event, props, options) {
  const strict = Boolean(options && options.strict);
  if (!native) {
    if (strict) throw noAddon();
    return false;
  }
  return outcome(native.emit(app, event, props), strict);
}

// One timed part of an operation: end() records it as a "span" event with
// its duration and parent.  A span of a handle that is off, or closed,
// records nothing.
class Span {
  constructor(t, s) {
    this._t = t;
    this._s = s;
  }

  // A child span of this one.
  span(name, fn) { return this._t.span(name, { parent: this, fn }); }

  // Records the span with the host's outcome code (0: success); later calls do nothing.
  end(status = 0) {
    const s = this._s;
    this._s = null;
    if (s === null || this._t._h === null) return false;
    return outcome(native.spanEnd(s, status), this._t.strict);
  }
}

class Telemetry {
  constructor(app, options = {}) {
    this.app = app;
    this.strict = Boolean(options.strict);
    this._h = null;
    this.openStatus = codes.ERR_NOTFOUND;
    if (!native) {
      if (this.strict) throw noAddon();
      return;
    }
    const [rc, h] = native.open(app, options);
    this._h = h;
    this.openStatus = rc;
    if (rc < 0) {
      const err = new TelError(rc, native.lastError());
      if (this.strict || !err.environmental) {
        this.close();
        throw err;
      }
    }
  }

  _call(fn, ...args) {
    if (this._h === null) {
      if (this.strict) throw new TelError(codes.ERR_STATE, 'the handle is closed or was never opened');
      return false;
    }
    return outcome(native[fn](this._h, ...args), this.strict);
  }

  get enabled() { return this._h !== null && native.enabled(this._h); }

  emit(event, props) { return this._call('emitEvent', event, props); }

  // Runs fn, buffering its emits, and writes them in one transaction when
  // it returns or throws.  fn is synchronous: JavaScript runs nothing else
  // on this handle meanwhile.
  batch(fn) {
    this._call('batchBegin');
    try {
      return fn(this);
    } finally {
      this._call('batchCommit');
    }
  }

  metric(name, value, labels) { return this._call('metric', name, value, labels); }

  prometheus(text) { return this._call('prometheus', String(text)); }

  commandStarted(command, options = [], envOptions = []) {
    return this._call('commandStarted', command, options, envOptions);
  }

  commandExited(exitCode, errorClass, errorMessage) {
    return this._call('commandExited', exitCode, errorClass, errorMessage);
  }

  // Records command.started, runs fn (sync or async) and records
  // command.exited: code 0, or 1 with the error's name and message (kept
  // only under debug telemetry) when it throws or rejects.  Returns fn's
  // result; an error is re-thrown.
  command(name, options, fn) {
    if (typeof options === 'function') [fn, options] = [options, {}];
    const { options: cli = [], envOptions = [] } = options || {};
    this.commandStarted(name, cli, envOptions);
    const failed = (e) => {
      this.commandExited(1, e && e.name, e && e.message);
      throw e;
    };
    let result;
    try {
      result = fn();
    } catch (e) {
      failed(e);
    }
    if (result && typeof result.then === 'function') {
      return result.then((v) => { this.commandExited(0); return v; }, failed);
    }
    this.commandExited(0);
    return result;
  }

  spawnSync(minIntervalSeconds = 0) { return this._call('spawnSync', minIntervalSeconds); }

  // The run's execution id (UUID text), to hand to a child process through
  // <APP>_TELEMETRY_EXEC_ID; '' when telemetry is off.
  execId() { return this._h === null ? '' : native.execId(this._h); }

  // Switches the open handle off (an opt-out: what was queued is deleted) or
  // back on, for a long-running host; true when it records afterwards.
  setEnabled(on) { return this._call('handleSetEnabled', on ? 1 : 0); }

  // Starts timing `name` (inside options.parent); with options.fn, runs it
  // (sync or async) inside the span and ends the span with status 0, or 1
  // when it throws or rejects, returning fn's result.  Without fn, returns
  // the Span to end().
  span(name, options = {}) {
    const { parent = null, fn } = typeof options === 'function' ? { fn: options } : options;
    let span = new Span(this, null);
    if (this._h !== null) {
      // A span of another handle may hold memory its closed handle freed.
      if (parent && parent._t !== this) {
        throw new TelError(codes.ERR_INVALID, 'the parent span belongs to another handle');
      }
      const [rc, s] = native.spanBegin(this._h, name, parent && parent._s);
      // A bad name or parent throws; the open-span limit or no memory
      // gives a span that records nothing, unless strict.
      if (rc < 0 && (this.strict || rc === codes.ERR_INVALID)) throw new TelError(rc, native.lastError());
      span = new Span(this, s);
    }
    if (!fn) return span;
    let result;
    try {
      result = fn(span);
    } catch (e) {
      span.end(1);
      throw e;
    }
    if (result && typeof result.then === 'function') {
      return result.then((v) => { span.end(0); return v; }, (e) => { span.end(1); throw e; });
    }
    span.end(0);
    return result;
  }

  noticeDue() { return this._h !== null && native.noticeDue(this._h); }

  noticeShown() { return this._call('noticeShown'); }

  // Commits an open batch and releases the handle; later calls record nothing.
  close() {
    if (this._h !== null) {
      native.close(this._h);
      this._h = null;
    }
  }
}

module.exports = {
  codes,
  Span,
  EnvMeaning,
  ErrorDetail,
  TelError,
  Telemetry,
  emit,
  enable(app) { check(need().setEnabled(app, true)); },
  disable(app) { check(need().setEnabled(app, false)); },
  forget(app) { check(need().forget(app)); },
  status(app) {
    const [rc, line] = need().status(app);
    check(rc);
    return line;
  },
  // text with quoted text, URLs, option and credential values, paths, user
  // and host names, addresses and tokens replaced, as tel cleans error
  // messages (tel_sanitize(3) lists the rules); for a host's own strings.
  sanitize(text) {
    const [rc, clean] = need().sanitize(text);
    check(rc);
    return clean;
  },
  version() { return need().version(); },
  strerror(code) { return need().strerror(code); },
  lastError() { return need().lastError(); },
};
