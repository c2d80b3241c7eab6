// Types of the tel Node binding (index.js over the tel.node addon).

/** A property value: an integral number within 64 bits is recorded as an integer, any other number as a float;
 * arrays and plain objects are tel's structured values. */
export type PropValue = null | boolean | number | bigint | string | PropValue[] | { [key: string]: PropValue | undefined };
/** An event's properties; undefined values are left out. */
export type Props = Record<string, PropValue | undefined>;

export declare const codes: Readonly<{
  OK: 0; DISABLED: 1; ERR_INVALID: -1; ERR_LIMIT: -2; ERR_NOSTATE: -3; ERR_IO: -4; ERR_NOMEM: -5;
  ERR_CORRUPT: -6; ERR_BUSY: -7; ERR_CONFIG: -8; ERR_STATE: -9; ERR_NOTFOUND: -10;
}>;

/** What a variable of the host's own, declared in TelemetryOptions.env, means. */
export declare const EnvMeaning: Readonly<{
  OFF_IF_TRUE: 1; OFF_IF_SET: 2; ON_OFF: 3; DEBUG_IF_CONTAINS: 4; LOG_FILE: 5; DETAILED_ERRORS: 6;
}>;
/** How much of an error commandExited records. */
export declare const ErrorDetail: Readonly<{ CLASS: 0; SANITIZED: 1 }>;

export interface EnvVar {
  name: string;
  meaning: number;
  /** The word EnvMeaning.DEBUG_IF_CONTAINS looks for. */
  word?: string;
}

/** A tel failure: code is tel's error code, detail its one-line reason. */
export declare class TelError extends Error {
  readonly code: number;
  readonly detail: string;
  /** True when the machine or the user's files caused it, not the caller. */
  readonly environmental: boolean;
}

export interface TelemetryOptions {
  /** The program's version, recorded in each event's context. */
  version?: string;
  /** The host's collector URL and bearer token, recorded for tel-sync. */
  endpoint?: string;
  token?: string;
  /** The host's setting; with byFlag it is an explicit flag such as --no-telemetry. */
  enabled?: boolean;
  byFlag?: boolean;
  /** Audit every recorded event: through log when given, else on stderr. */
  logging?: boolean;
  log?: (line: string) => void;
  maxEvents?: number;
  maxBytes?: number;
  maxAgeSeconds?: number;
  /** Opt into the salted project id. */
  projectSalt?: string;
  /** Record nothing until noticeShown() was called once. */
  requireNotice?: boolean;
  /** Telemetry is opt-in: off until the user turns it on. */
  defaultEnabled?: boolean;
  /** The host's own environment variables and their meaning. */
  env?: EnvVar[];
  /** Write this run's events to this file instead of queueing them. */
  inspect?: string;
  /** Log this run's events and record nothing. */
  debug?: boolean;
  errorDetail?: number;
  /** true offers erasure: a forget then leaves a request, sent by tel-sync, that the collector
   * delete what it holds of the old anonymous id; false takes an earlier offer back. */
  erasure?: boolean;
  /** Opt into the unsalted project id, the same in every product using tel. */
  projectLinkable?: boolean;
  /** Join a run begun by another process (UUID text); <APP>_TELEMETRY_EXEC_ID wins. */
  execId?: string;
  /** An absolute state directory, for a daemon without HOME. */
  stateDir?: string;
  /** An id the host keeps (a cluster's UID): the anonymous id is a hash of it and the app. */
  installationId?: string;
  /** Throw on failures of the environment too. */
  strict?: boolean;
}

export interface CommandOptions {
  /** Names (never values) of the options given on the command line. */
  options?: string[];
  /** Names of the options set through the environment. */
  envOptions?: string[];
}

/** One timed part of an operation. */
export declare class Span {
  span(name: string): Span;
  span<T>(name: string, fn: (s: Span) => T): T;
  /** Records the span with the host's outcome code (0: success); true when recorded. */
  end(status?: number): boolean;
}

/** A handle on one app's queue. */
export declare class Telemetry {
  constructor(app: string, options?: TelemetryOptions);
  readonly app: string;
  readonly strict: boolean;
  /** What opening returned: codes.OK, codes.DISABLED or a negative code. */
  readonly openStatus: number;
  /** True when this handle records events. */
  readonly enabled: boolean;
  /** Records one event: true when queued. */
  emit(event: string, props?: Props): boolean;
  /** Runs fn, buffering its emits, and writes them in one transaction. */
  batch<T>(fn: (t: Telemetry) => T): T;
  metric(name: string, value: number, labels?: Record<string, string>): boolean;
  prometheus(text: string): boolean;
  commandStarted(command: string, options?: string[], envOptions?: string[]): boolean;
  commandExited(exitCode: number, errorClass?: string, errorMessage?: string): boolean;
  /** command.started, fn, command.exited (code 0, or 1 when fn throws or rejects). */
  command<T>(name: string, fn: () => T): T;
  command<T>(name: string, options: CommandOptions, fn: () => T): T;
  /** Starts a detached tel-sync when something is queued; true when one was started. */
  spawnSync(minIntervalSeconds?: number): boolean;
  /** The run's execution id, for <APP>_TELEMETRY_EXEC_ID of a child process; '' when off. */
  execId(): string;
  /** Switches the open handle off (purging) or back on; true when it records afterwards. */
  setEnabled(on: boolean): boolean;
  /**
   * Starts timing `name` inside options.parent (a span of this handle).  A bad
   * name or parent throws ERR_INVALID; with 1024 spans open already, or no
   * memory, the span records nothing (a TelError instead when strict).
   */
  span(name: string, options?: { parent?: Span }): Span;
  span<T>(name: string, fn: (s: Span) => T): T;
  span<T>(name: string, options: { parent?: Span; fn: (s: Span) => T }): T;
  noticeDue(): boolean;
  noticeShown(): boolean;
  close(): void;
}

/** Records one event for app with no set-up: true when queued. */
export declare function emit(app: string, event: string, props?: Props, options?: { strict?: boolean }): boolean;
export declare function enable(app: string): void;
export declare function disable(app: string): void;
/** Deletes the anonymous id and purges the queue; when the host offered erasure, first leaves a request,
 * sent by tel-sync, to erase the old id's events at the collector. */
export declare function forget(app: string): void;
export declare function status(app: string): string;
export declare function sanitize(text: string): string;
export declare function version(): string;
export declare function strerror(code: number): string;
export declare function lastError(): string;
