import { AsyncResource } from 'node:async_hooks';
import { connectivityState, status, type Metadata } from '@grpc/grpc-js';
import {
  jittered,
  notSent,
  serviceError,
  UnaryChannel,
  wasNotSent,
  withDeadline,
  type Connect,
  type UnaryChannelOptions,
  type UnaryTransport,
} from './grpc-client.js';

/**
 * One participant behind several addresses (its replicas, sharing one database): a UnaryChannel
 * (one HTTP/2 session) per address, and calls spread round robin over the addresses whose session
 * is up. An address whose session closes, errs or is told to go away, or whose connection attempt
 * fails, leaves the rotation at that moment (its state change is an event, not something a call
 * finds out), and is reconnected in the background with a jittered backoff capped at
 * `maxBackoffMs` (1 s), so a restarted replica is back in the rotation within about a second.
 *
 * A call that never left this process (no connection, a session closing under it, a stream the
 * server refused unprocessed) is taken by the next address as is; one already sent on a session
 * that dies fails UNAVAILABLE as on one address — its outcome is unknown, and the saga retries it
 * under the same idempotency key, which the participant's inbox answers once whichever replica
 * gets it. With no address up, a call waits for the attempts in progress (bounded by its deadline)
 * and fails UNAVAILABLE at once when every address is backing off.
 *
 * One address is a plain UnaryChannel (`channelTo`): the path of every call stays as it was.
 */

/** An address that had answered went down, or came back. */
export interface AddressChange {
  address: string;
  up: boolean;
  /** Why it went down; '' when it came back. */
  reason: string;
  /** Addresses with a live session now, and all of them. */
  upCount: number;
  of: number;
}

export interface BalancedChannelOptions extends UnaryChannelOptions {
  /** Told when an address that had answered goes down, and when it is back. */
  onAddressChange?: (change: AddressChange) => void;
}

/**
 * A session that lived this long before it dropped was a working one: its address is called back
 * at once. One that dropped sooner (a peer that accepts and hangs up) counts as one more failure
 * of a series, and backs off: no reconnect loop.
 */
const STABLE_MS = 1_000;

interface Member {
  readonly channel: UnaryChannel;
  /** When its current session came up; 0 while it has none. */
  upSince: number;
  /** It has had a session: its loss and its return are news. */
  wasUp: boolean;
  /** Its loss was announced and its return was not yet. */
  down: boolean;
  /** Failed attempts (or short-lived sessions) in a row: the backoff of the next background attempt. */
  failures: number;
  timer: NodeJS.Timeout | undefined;
}

const { READY, CONNECTING, IDLE, TRANSIENT_FAILURE, SHUTDOWN } = connectivityState;

export class BalancedChannel implements UnaryTransport {
  private readonly all: readonly Member[];
  /** The members with a live session, in address order: the rotation. */
  private ready: UnaryChannel[] = [];
  private turn = 0;
  private closed = false;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  /**
   * Told in the context the channel was made in: a session usually drops while some call's
   * context is current, and that call's trace is not the news's.
   */
  private readonly tell: (change: AddressChange) => void;

  constructor(
    readonly addresses: readonly string[],
    connect: Connect,
    opts: BalancedChannelOptions = {},
  ) {
    if (addresses.length === 0) throw new RangeError('a BalancedChannel needs at least one address');
    this.initialBackoffMs = opts.initialBackoffMs ?? 100;
    this.maxBackoffMs = opts.maxBackoffMs ?? 1_000;
    this.tell = AsyncResource.bind((change: AddressChange) => opts.onAddressChange?.(change));
    this.all = addresses.map((address) => {
      const m: Member = {
        channel: new UnaryChannel(address, connect, opts),
        upSince: 0,
        wasUp: false,
        down: false,
        failures: 0,
        timer: undefined,
      };
      m.channel.onStateChange = (state) => this.changed(m, state);
      return m;
    });
  }

  /** READY while some address has a live session; else CONNECTING, TRANSIENT_FAILURE or IDLE as the most hopeful member is. */
  getConnectivityState(): connectivityState {
    if (this.closed) return SHUTDOWN;
    if (this.ready.length > 0) return READY;
    const states = this.all.map((m) => m.channel.getConnectivityState());
    if (states.includes(CONNECTING)) return CONNECTING;
    if (states.includes(TRANSIENT_FAILURE)) return TRANSIENT_FAILURE;
    return IDLE;
  }

  members(): readonly UnaryChannel[] {
    return this.all.map((m) => m.channel);
  }

  close(): void {
    this.closed = true;
    for (const m of this.all) {
      clearTimeout(m.timer);
      m.timer = undefined;
      m.channel.close();
    }
  }

  call(path: string, request: Buffer, metadata: Metadata, deadline: number): Promise<Buffer> {
    const first = this.pick(undefined);
    if (first) return this.attempt(first, path, request, metadata, deadline, 1);
    return this.whenConnected(deadline).then((c) => this.attempt(c, path, request, metadata, deadline, 1));
  }

  /** The call on `c`; if it never left, again on another address (each at most once). */
  private attempt(
    c: UnaryChannel,
    path: string,
    request: Buffer,
    metadata: Metadata,
    deadline: number,
    tries: number,
  ): Promise<Buffer> {
    return c.call(path, request, metadata, deadline).catch((err: unknown) => {
      if (!wasNotSent(err) || tries >= this.all.length || this.closed) throw err;
      const next = this.pick(c);
      return (next ? Promise.resolve(next) : this.whenConnected(deadline)).then((n) =>
        this.attempt(n, path, request, metadata, deadline, tries + 1),
      );
    });
  }

  /** The next address of the rotation (not `except`), if any has a live session. */
  private pick(except: UnaryChannel | undefined): UnaryChannel | undefined {
    const r = this.ready;
    const n = r.length;
    if (n === 0) return undefined;
    this.turn = (this.turn + 1) % n;
    const c = r[this.turn] as UnaryChannel;
    if (c !== except) return c;
    return n === 1 ? undefined : r[(this.turn + 1) % n];
  }

  /**
   * The first address to connect, trying every one not backing off; UNAVAILABLE at once when
   * none can be tried, DEADLINE_EXCEEDED at the deadline.
   */
  private whenConnected(deadline: number): Promise<UnaryChannel> {
    if (this.closed) return Promise.reject(notSent(serviceError(status.UNAVAILABLE, 'channel closed')));
    const attempts = this.all.map((m) => m.channel.connectNow().then(() => m.channel));
    return withDeadline(
      Promise.any(attempts).catch(() => {
        const why = this.all.map((m) => `${m.channel.address} (${m.channel.lastFailure || 'not connected'})`);
        throw notSent(serviceError(status.UNAVAILABLE, `no address answers: ${why.join('; ')}`));
      }),
      deadline,
    );
  }

  private changed(m: Member, state: connectivityState): void {
    this.ready = this.all.filter((x) => x.channel.getConnectivityState() === READY).map((x) => x.channel);
    if (this.closed) return;
    const now = Date.now();
    if (state === READY) {
      m.upSince = now;
      m.wasUp = true;
      clearTimeout(m.timer);
      m.timer = undefined;
      if (m.down) {
        m.down = false;
        this.announce(m, true, '');
      }
      return;
    }
    if (state !== IDLE && state !== TRANSIENT_FAILURE) return;
    // IDLE: its session closed; TRANSIENT_FAILURE: an attempt failed.
    const lived = m.upSince === 0 ? 0 : now - m.upSince;
    m.upSince = 0;
    m.failures = state === IDLE && lived >= STABLE_MS ? 0 : m.failures + 1;
    if (m.wasUp && !m.down) {
      m.down = true;
      this.announce(m, false, state === IDLE ? 'connection closed' : m.channel.lastFailure);
    }
    this.schedule(m);
  }

  private announce(m: Member, up: boolean, reason: string): void {
    this.tell({
      address: m.channel.address,
      up,
      reason,
      upCount: this.ready.length,
      of: this.all.length,
    });
  }

  /** The next background attempt of a member that is down. */
  private schedule(m: Member): void {
    if (this.closed || m.timer) return;
    const backoff =
      m.failures === 0 ? 0 : jittered(Math.min(this.initialBackoffMs * 2 ** (m.failures - 1), this.maxBackoffMs));
    const wait = Math.max(backoff, m.channel.nextAttemptAt - Date.now(), 0);
    m.timer = setTimeout(() => {
      m.timer = undefined;
      const state = m.channel.getConnectivityState();
      if (this.closed || state === READY || state === CONNECTING) return;
      // A failed attempt changes the state, which schedules the next; one refused before it
      // started (still inside the channel's own backoff) does not, so it is scheduled here.
      m.channel.connectNow().catch(() => this.schedule(m));
    }, wait);
    // Reconnecting is no reason to keep a process alive.
    m.timer.unref();
  }
}

/** A channel to a participant at `addresses`: a plain UnaryChannel for one, a BalancedChannel for several. */
export function channelTo(
  addresses: readonly string[],
  connect: Connect,
  opts: BalancedChannelOptions = {},
): UnaryTransport {
  if (addresses.length === 1) return new UnaryChannel(addresses[0] as string, connect, opts);
  return new BalancedChannel(addresses, connect, opts);
}
