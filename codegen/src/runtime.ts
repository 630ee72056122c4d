// ---------------------------------------------------------------------------
// The gamewire runtime: the bincode subset of the wire chapter, the envelope
// and a WebSocket client. The same in every generated module.
// ---------------------------------------------------------------------------

/** The envelope version this module speaks (the hello's `version`). */
export const ENVELOPE_VERSION = 1;

/** The WebSocket subprotocol the client offers. */
export const SUBPROTOCOL = "gamewire.v1";

/** Why the server closed a connection: the close frame's `code`. */
export const CloseCode = {
  Shutdown: 1,
  FrameTooLarge: 2,
  ProtocolMismatch: 3,
  HeartbeatTimeout: 4,
  SlowConsumer: 5,
  ServerFull: 6,
  TooManyErrors: 7,
  HandshakeFailed: 8,
  Kicked: 9,
  FrameTimeout: 10,
  RateLimited: 11,
  Unsupported: 12,
} as const;

/** The name of a close code. */
export type CloseCodeName = keyof typeof CloseCode;

/** Why the server could not process a message: the error frame's `code`. */
export const ErrorCode = {
  Undecodable: 1,
  NotAllowed: 2,
  NoHandler: 3,
  HandlerFailed: 4,
  HandlerPanicked: 5,
  UnexpectedFrame: 6,
  RateLimited: 7,
} as const;

/** The name of an error code. */
export type ErrorCodeName = keyof typeof ErrorCode;

function nameOf<T extends Record<string, number>>(codes: T, code: number): keyof T | undefined {
  return (Object.keys(codes) as (keyof T)[]).find((name) => codes[name] === code);
}

/** Bytes that are not a valid encoding of the expected value. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/**
 * The connection ended. `code` is the gamewire close code (`CloseCode`), or
 * 0 when the connection was lost without one; `reason` is the server's text.
 */
export class ConnectionClosed extends Error {
  /** The close code's name, when the code is one gamewire defines. */
  readonly codeName: CloseCodeName | undefined;

  constructor(readonly code: number, readonly reason: string) {
    const codeName = nameOf(CloseCode, code);
    super(`connection closed (${codeName ?? code}): ${reason}`);
    this.name = "ConnectionClosed";
    this.codeName = codeName;
  }
}

/**
 * The server could not process a message this client sent (an error frame).
 * The connection stays open.
 */
export class ServerError extends Error {
  /** The error code's name, when the code is one gamewire defines. */
  readonly codeName: ErrorCodeName | undefined;

  constructor(readonly code: number, readonly detail: string) {
    const codeName = nameOf(ErrorCode, code);
    super(`server error (${codeName ?? code}): ${detail}`);
    this.name = "ServerError";
    this.codeName = codeName;
  }
}

const UTF8_ENCODER = new TextEncoder();
const UTF8_DECODER = new TextDecoder("utf-8", { fatal: true });

function checkInteger(value: number, min: number, max: number, type: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${value} is not a ${type}`);
  }
}

function checkBig(value: bigint, min: bigint, max: bigint, type: string): void {
  if (typeof value !== "bigint" || value < min || value > max) {
    throw new RangeError(`${value} is not a ${type}`);
  }
}

const U64_MAX = (1n << 64n) - 1n;
const U128_MAX = (1n << 128n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const I128_MIN = -(1n << 127n);
const I128_MAX = (1n << 127n) - 1n;

function zigzag(value: bigint): bigint {
  return value >= 0n ? value << 1n : ((-value) << 1n) - 1n;
}

function unzigzag(value: bigint): bigint {
  return (value & 1n) === 0n ? value >> 1n : -((value + 1n) >> 1n);
}

/** Writes values in bincode's standard configuration. */
export class WireWriter {
  private buffer = new Uint8Array(64);
  private view = new DataView(this.buffer.buffer);
  private length = 0;

  /** The bytes written. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  /**
   * Room for `more` bytes; returns where they go. Call it before naming
   * `this.buffer` or `this.view`: it may replace them.
   */
  private reserve(more: number): number {
    const at = this.length;
    if (at + more > this.buffer.length) {
      let size = this.buffer.length * 2;
      while (size < at + more) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.buffer.subarray(0, at));
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length = at + more;
    return at;
  }

  bool(value: boolean): void {
    const at = this.reserve(1);
    this.buffer[at] = value ? 1 : 0;
  }

  u8(value: number): void {
    checkInteger(value, 0, 0xff, "u8");
    const at = this.reserve(1);
    this.buffer[at] = value;
  }

  i8(value: number): void {
    checkInteger(value, -0x80, 0x7f, "i8");
    const at = this.reserve(1);
    this.view.setInt8(at, value);
  }

  /** An unsigned varint: one byte below 251, else a marker and the value. */
  private varint(value: bigint): void {
    if (value < 251n) {
      const at = this.reserve(1);
      this.buffer[at] = Number(value);
    } else if (value <= 0xffffn) {
      const at = this.reserve(3);
      this.buffer[at] = 251;
      this.view.setUint16(at + 1, Number(value), true);
    } else if (value <= 0xffff_ffffn) {
      const at = this.reserve(5);
      this.buffer[at] = 252;
      this.view.setUint32(at + 1, Number(value), true);
    } else if (value <= U64_MAX) {
      const at = this.reserve(9);
      this.buffer[at] = 253;
      this.view.setBigUint64(at + 1, value, true);
    } else {
      const at = this.reserve(17);
      this.buffer[at] = 254;
      this.view.setBigUint64(at + 1, value & U64_MAX, true);
      this.view.setBigUint64(at + 9, value >> 64n, true);
    }
  }

  private small(value: number): void {
    if (value < 251) {
      const at = this.reserve(1);
      this.buffer[at] = value;
    } else {
      this.varint(BigInt(value));
    }
  }

  u16(value: number): void {
    checkInteger(value, 0, 0xffff, "u16");
    this.small(value);
  }

  u32(value: number): void {
    checkInteger(value, 0, 0xffff_ffff, "u32");
    this.small(value);
  }

  u64(value: bigint): void {
    checkBig(value, 0n, U64_MAX, "u64");
    this.varint(value);
  }

  u128(value: bigint): void {
    checkBig(value, 0n, U128_MAX, "u128");
    this.varint(value);
  }

  i16(value: number): void {
    checkInteger(value, -0x8000, 0x7fff, "i16");
    this.varint(zigzag(BigInt(value)));
  }

  i32(value: number): void {
    checkInteger(value, -0x8000_0000, 0x7fff_ffff, "i32");
    this.varint(zigzag(BigInt(value)));
  }

  i64(value: bigint): void {
    checkBig(value, I64_MIN, I64_MAX, "i64");
    this.varint(zigzag(value));
  }

  i128(value: bigint): void {
    checkBig(value, I128_MIN, I128_MAX, "i128");
    this.varint(zigzag(value));
  }

  f32(value: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, value, true);
  }

  f64(value: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, value, true);
  }

  /** A count or a length: a varint `u64`. */
  count(value: number): void {
    checkInteger(value, 0, Number.MAX_SAFE_INTEGER, "length");
    this.small(value);
  }

  /** A `char`: its UTF-8 bytes, with no length. */
  char(value: string): void {
    const point = value.codePointAt(0);
    if (point === undefined || String.fromCodePoint(point) !== value) {
      throw new RangeError(`${JSON.stringify(value)} is not one char`);
    }
    this.raw(UTF8_ENCODER.encode(value));
  }

  string(value: string): void {
    const bytes = UTF8_ENCODER.encode(value);
    this.count(bytes.length);
    this.raw(bytes);
  }

  /** A `Vec<u8>`: a length, then the bytes. */
  bytes(value: Uint8Array): void {
    this.count(value.length);
    this.raw(value);
  }

  private raw(bytes: Uint8Array): void {
    const at = this.reserve(bytes.length);
    this.buffer.set(bytes, at);
  }

  option<T>(value: T | null, write: (value: T) => void): void {
    if (value === null) {
      this.bool(false);
    } else {
      this.bool(true);
      write(value);
    }
  }

  seq<T>(items: readonly T[], write: (item: T) => void): void {
    this.count(items.length);
    for (const item of items) write(item);
  }

  map<K, V>(entries: ReadonlyMap<K, V>, writeKey: (key: K) => void, writeValue: (value: V) => void): void {
    this.count(entries.size);
    for (const [key, value] of entries) {
      writeKey(key);
      writeValue(value);
    }
  }
}

/** Reads values in bincode's standard configuration, refusing bad bytes. */
export class WireReader {
  private at = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Fails unless every byte was read: a payload is exactly one value. */
  done(): void {
    const left = this.bytes.length - this.at;
    if (left !== 0) throw new DecodeError(`${left} bytes left over after the value`);
  }

  private take(count: number): number {
    const at = this.at;
    if (count > this.bytes.length - at) {
      throw new DecodeError(`the payload ends inside a value (offset ${at}, ${count} bytes wanted)`);
    }
    this.at = at + count;
    return at;
  }

  bool(): boolean {
    const byte = this.bytes[this.take(1)];
    if (byte > 1) throw new DecodeError(`${byte} is not a bool`);
    return byte === 1;
  }

  u8(): number {
    return this.bytes[this.take(1)];
  }

  i8(): number {
    return this.view.getInt8(this.take(1));
  }

  private varint(max: bigint, type: string): bigint {
    const marker = this.bytes[this.take(1)];
    let value: bigint;
    if (marker < 251) {
      value = BigInt(marker);
    } else if (marker === 251) {
      value = BigInt(this.view.getUint16(this.take(2), true));
    } else if (marker === 252) {
      value = BigInt(this.view.getUint32(this.take(4), true));
    } else if (marker === 253) {
      value = this.view.getBigUint64(this.take(8), true);
    } else if (marker === 254) {
      const at = this.take(16);
      value = this.view.getBigUint64(at, true) | (this.view.getBigUint64(at + 8, true) << 64n);
    } else {
      throw new DecodeError(`255 is not a varint marker`);
    }
    if (value > max) throw new DecodeError(`${value} does not fit a ${type}`);
    return value;
  }

  private small(max: number, type: string): number {
    const marker = this.bytes[this.at];
    if (marker !== undefined && marker < 251) {
      this.at += 1;
      return marker;
    }
    return Number(this.varint(BigInt(max), type));
  }

  u16(): number {
    return this.small(0xffff, "u16");
  }

  u32(): number {
    return this.small(0xffff_ffff, "u32");
  }

  u64(): bigint {
    return this.varint(U64_MAX, "u64");
  }

  u128(): bigint {
    return this.varint(U128_MAX, "u128");
  }

  i16(): number {
    return Number(unzigzag(this.varint(0xffffn, "i16")));
  }

  i32(): number {
    return Number(unzigzag(this.varint(0xffff_ffffn, "i32")));
  }

  i64(): bigint {
    return unzigzag(this.varint(U64_MAX, "i64"));
  }

  i128(): bigint {
    return unzigzag(this.varint(U128_MAX, "i128"));
  }

  f32(): number {
    return this.view.getFloat32(this.take(4), true);
  }

  f64(): number {
    return this.view.getFloat64(this.take(8), true);
  }

  /**
   * A count or a length. Each element takes at least a byte unless the
   * elements are empty, so a count above the bytes left is refused before
   * anything is built.
   */
  count(emptyElements = false): number {
    const count = this.varint(U64_MAX, "length");
    const limit = emptyElements ? 1 << 20 : this.bytes.length - this.at;
    if (count > BigInt(limit)) {
      throw new DecodeError(`a count of ${count} is more than the payload holds`);
    }
    return Number(count);
  }

  char(): string {
    const first = this.bytes[this.at];
    const width = first === undefined ? 1 : first < 0x80 ? 1 : first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : 2;
    const text = this.utf8(width);
    if ([...text].length !== 1) throw new DecodeError(`the bytes are not one char`);
    return text;
  }

  string(): string {
    return this.utf8(this.count());
  }

  bytesOf(): Uint8Array {
    const length = this.count();
    const at = this.take(length);
    return this.bytes.slice(at, at + length);
  }

  private utf8(length: number): string {
    const at = this.take(length);
    try {
      return UTF8_DECODER.decode(this.bytes.subarray(at, at + length));
    } catch {
      throw new DecodeError(`the bytes at offset ${at} are not UTF-8`);
    }
  }

  option<T>(read: () => T): T | null {
    return this.bool() ? read() : null;
  }

  seq<T>(read: () => T, emptyElements = false): T[] {
    const count = this.count(emptyElements);
    const items: T[] = [];
    for (let i = 0; i < count; i++) items.push(read());
    return items;
  }

  map<K, V>(readKey: () => K, readValue: () => V): Map<K, V> {
    const count = this.count();
    const entries = new Map<K, V>();
    for (let i = 0; i < count; i++) {
      const key = readKey();
      entries.set(key, readValue());
    }
    return entries;
  }
}

/** What the server's welcome says about the session. */
export interface GamewireWelcome {
  /** The user id the server gave this connection. */
  userId: number;
  /** How often the server pings, in milliseconds. */
  heartbeatIntervalMs: number;
  /** After how much silence the server disconnects, in milliseconds. */
  heartbeatTimeoutMs: number;
  /** The largest payload the server accepts, in bytes. */
  maxFrameLen: number;
}

/** The part of the WebSocket API the client uses: a browser's, or Node's. */
export interface SocketLike {
  binaryType: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor, such as `globalThis.WebSocket`. */
export type SocketConstructor = new (url: string, protocols?: string | string[]) => SocketLike;

/** How to connect. */
export interface ConnectOptions {
  /** The hello's token, for the server's authenticator (default `""`). */
  token?: string;
  /** How long to wait for the welcome, in milliseconds (default 10,000). */
  handshakeTimeoutMs?: number;
  /** The WebSocket constructor (default `globalThis.WebSocket`). */
  WebSocket?: SocketConstructor;
}

/** How one protocol's messages are written and read. */
export interface MessageCodec<Send, Receive> {
  readonly protocol: string;
  readonly fingerprint: bigint;
  encode(writer: WireWriter, message: Send): void;
  decode(reader: WireReader): Receive;
}

type Delivery<Receive> =
  | { message: Receive }
  | { error: ServerError | DecodeError };

/**
 * A connection to a gamewire server over WebSocket: the handshake, pongs,
 * and typed messages both ways. Made by the protocol's `connect`.
 */
export class GamewireClient<Send, Receive> {
  /**
   * Called with each message. While it is unset, messages wait for
   * `receive()`.
   */
  onmessage: ((message: Receive) => void) | null = null;
  /**
   * Called with each error frame, and with a message that could not be
   * decoded. While it is unset, they reject the next `receive()`.
   */
  onerror: ((error: ServerError | DecodeError) => void) | null = null;
  /** Settles when the connection ends, with why. */
  readonly closed: Promise<ConnectionClosed>;

  private readonly waiting: Delivery<Receive>[] = [];
  private readonly receivers: {
    resolve: (message: Receive) => void;
    reject: (error: Error) => void;
  }[] = [];
  private ended: ConnectionClosed | null = null;
  private closeFrame: ConnectionClosed | null = null;
  private settleClosed!: (closed: ConnectionClosed) => void;

  private constructor(
    private readonly socket: SocketLike,
    private readonly codec: MessageCodec<Send, Receive>,
    /** What the server's welcome said. */
    readonly welcome: GamewireWelcome,
  ) {
    this.closed = new Promise((resolve) => (this.settleClosed = resolve));
  }

  /** The user id the server gave this connection. */
  get userId(): number {
    return this.welcome.userId;
  }

  /** Opens a connection to `url` (`ws://host:port/`) and shakes hands. */
  static connect<Send, Receive>(
    url: string,
    codec: MessageCodec<Send, Receive>,
    options: ConnectOptions = {},
  ): Promise<GamewireClient<Send, Receive>> {
    const Socket =
      options.WebSocket ?? (globalThis as unknown as { WebSocket?: SocketConstructor }).WebSocket;
    if (Socket === undefined) {
      return Promise.reject(new Error("no WebSocket: pass one as options.WebSocket"));
    }
    const socket = new Socket(url, SUBPROTOCOL);
    socket.binaryType = "arraybuffer";
    return new Promise((resolve, reject) => {
      let refused: ConnectionClosed | null = null;
      const timer = setTimeout(() => {
        fail(new ConnectionClosed(CloseCode.HandshakeFailed, "no welcome within the handshake timeout"));
        socket.close();
      }, options.handshakeTimeoutMs ?? 10_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.onmessage = socket.onclose = socket.onerror = null;
        reject(error);
      };
      socket.onopen = () => {
        const writer = new WireWriter();
        writer.u32(0);
        writer.u16(ENVELOPE_VERSION);
        writer.string(codec.protocol);
        writer.u64(codec.fingerprint);
        writer.string(options.token ?? "");
        socket.send(writer.finish());
      };
      socket.onmessage = (event) => {
        try {
          const reader = new WireReader(payloadOf(event.data));
          const frame = reader.u32();
          if (frame === 1) {
            const welcome: GamewireWelcome = {
              userId: reader.u32(),
              heartbeatIntervalMs: reader.u32(),
              heartbeatTimeoutMs: reader.u32(),
              maxFrameLen: reader.u32(),
            };
            reader.done();
            clearTimeout(timer);
            const client = new GamewireClient(socket, codec, welcome);
            client.listen();
            resolve(client);
          } else if (frame === 5) {
            refused = new ConnectionClosed(reader.u16(), reader.string());
          } else {
            throw new DecodeError(`frame ${frame} before the welcome`);
          }
        } catch (error) {
          fail(error as Error);
          socket.close();
        }
      };
      socket.onclose = (event) => fail(refused ?? closedBy(event));
      socket.onerror = () => {
        // A close event follows, with what is known.
      };
    });
  }

  /** Sends one message. Throws `ConnectionClosed` once the connection ended. */
  send(message: Send): void {
    const writer = new WireWriter();
    writer.u32(6);
    this.codec.encode(writer, message);
    this.sendFrame(writer.finish());
  }

  /**
   * The next message. Rejects with a `ServerError` for an error frame (when
   * `onerror` is unset), and with `ConnectionClosed` once the connection
   * ended and every message before the end was received.
   */
  receive(): Promise<Receive> {
    const next = this.waiting.shift();
    if (next !== undefined) {
      return "message" in next ? Promise.resolve(next.message) : Promise.reject(next.error);
    }
    if (this.ended !== null) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.receivers.push({ resolve, reject }));
  }

  /** Says goodbye with a close frame, and closes the connection. */
  close(reason = "goodbye"): void {
    if (this.ended !== null) return;
    const writer = new WireWriter();
    writer.u32(5);
    writer.u16(CloseCode.Shutdown);
    writer.string(reason);
    this.sendFrame(writer.finish());
    this.socket.close(1000, "goodbye");
  }

  private sendFrame(payload: Uint8Array): void {
    if (this.ended !== null) throw this.ended;
    if (payload.length > this.welcome.maxFrameLen) {
      throw new RangeError(`a ${payload.length}-byte frame is over the server's ${this.welcome.maxFrameLen}`);
    }
    this.socket.send(payload);
  }

  private listen(): void {
    this.socket.onmessage = (event) => this.onFrame(event.data);
    this.socket.onclose = (event) => this.end(this.closeFrame ?? closedBy(event));
  }

  private onFrame(data: unknown): void {
    try {
      const reader = new WireReader(payloadOf(data));
      const frame = reader.u32();
      switch (frame) {
        case 2: {
          const nonce = reader.u64();
          reader.done();
          const pong = new WireWriter();
          pong.u32(3);
          pong.u64(nonce);
          this.sendFrame(pong.finish());
          return;
        }
        case 3:
          reader.u64();
          reader.done();
          return;
        case 4: {
          const error = new ServerError(reader.u16(), reader.string());
          reader.done();
          this.deliver({ error });
          return;
        }
        case 5:
          this.closeFrame = new ConnectionClosed(reader.u16(), reader.string());
          reader.done();
          return;
        case 6: {
          const message = this.codec.decode(reader);
          reader.done();
          this.deliver({ message });
          return;
        }
        default:
          throw new DecodeError(`frame ${frame} is not one a server sends after the welcome`);
      }
    } catch (error) {
      if (error instanceof DecodeError) {
        this.deliver({ error });
      } else if (!(error instanceof ConnectionClosed)) {
        throw error;
      }
    }
  }

  private deliver(delivery: Delivery<Receive>): void {
    if ("message" in delivery && this.onmessage !== null) {
      this.onmessage(delivery.message);
      return;
    }
    if ("error" in delivery && this.onerror !== null) {
      this.onerror(delivery.error);
      return;
    }
    const receiver = this.receivers.shift();
    if (receiver === undefined) {
      this.waiting.push(delivery);
    } else if ("message" in delivery) {
      receiver.resolve(delivery.message);
    } else {
      receiver.reject(delivery.error);
    }
  }

  private end(closed: ConnectionClosed): void {
    if (this.ended !== null) return;
    this.ended = closed;
    for (const receiver of this.receivers.splice(0)) receiver.reject(closed);
    this.settleClosed(closed);
  }
}

function payloadOf(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new DecodeError("a text message: gamewire sends binary messages only");
}

/** What a WebSocket close says: status 4000 + code carries a gamewire code. */
function closedBy(event: { code: number; reason: string }): ConnectionClosed {
  const code = event.code >= 4000 && event.code < 5000 ? event.code - 4000 : 0;
  return new ConnectionClosed(code, event.reason || `WebSocket closed with status ${event.code}`);
}
