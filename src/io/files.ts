/**
 * File access for vg.io. The library core is platform-neutral: the Node entry registers a provider backed by `fs`
 * (src/io/files-node.ts); in a browser, functions that take a path accept bytes instead (or a URL for reads).
 */
import { VoxgradError, fail } from '../engine/errors.js';

export interface FileSystem {
  readFile(path: string): Promise<Uint8Array>;
  /** Writes through a temporary file in the same folder and renames it over `path`, so a crash never leaves half a file. */
  writeFileAtomic(path: string, bytes: Uint8Array): Promise<void>;
  mkdir(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** Names of the entries of a folder (for dataset layouts whose cases are folders). */
  readdir(path: string): Promise<string[]>;
}

let fileSystem: FileSystem | null = null;

export function setFileSystem(fs: FileSystem): void {
  fileSystem = fs;
}

/** The registered file system, or an error naming the operation and what to pass instead. */
export function files(op: string): FileSystem {
  if (!fileSystem)
    fail(op, 'file paths need Node (import voxgrad in Node); in a browser pass a Uint8Array/ArrayBuffer or fetch the file first');
  return fileSystem;
}

/** Bytes from a path (Node), a URL (fetch), or bytes as given. */
export async function readBytes(op: string, source: string | URL | Uint8Array | ArrayBuffer): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (source instanceof URL || (typeof source === 'string' && /^(https?|blob|data):/.test(source))) {
    const response = await fetch(source);
    if (!response.ok) fail(op, `fetching ${String(source)} failed: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  if (typeof source !== 'string')
    fail(op, `source must be a path, URL, Uint8Array or ArrayBuffer; got ${Object.prototype.toString.call(source)}`);
  try {
    return await files(op).readFile(source);
  } catch (e) {
    if (e instanceof VoxgradError) throw e;
    return fail(op, `cannot read ${source}: ${(e as Error).message}`);
  }
}

async function transform(bytes: Uint8Array, stream: CompressionStream): Promise<Uint8Array> {
  const out = new Blob([bytes as BlobPart]).stream().pipeThrough(stream as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

/** gzip/zlib through the platform's Compression Streams (Node ≥ 18 and every current browser); GunzipReader reads. */
export const gzip = (bytes: Uint8Array) => transform(bytes, new CompressionStream('gzip'));
export const deflate = (bytes: Uint8Array) => transform(bytes, new CompressionStream('deflate'));

/**
 * Compressed bytes fed to the decompressor per step. Deflate expands at most ~1032:1, so one step yields at most
 * ~17 MB however the stream was crafted: browsers' DecompressionStream inflates a whole input chunk at once.
 */
const INFLATE_SLICE = 16 * 1024;

/**
 * A gzip stream decompressed on demand: readers take the header, compute the size it implies, take exactly that and
 * then check that little is left, so a small file that inflates to gigabytes (a gzip bomb, or a header that lies)
 * never gets into memory. Works wherever DecompressionStream does (Node ≥ 18, current browsers).
 */
export class GunzipReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private chunk: Uint8Array = new Uint8Array(0);
  private chunkPos = 0;
  private ended = false;
  /** Decompressed bytes consumed so far (taken or skipped). */
  position = 0;

  /** `op` and `name` (the file) prefix every error. */
  constructor(private readonly op: string, private readonly name: string, compressed: Uint8Array) {
    let at = 0;
    // highWaterMark 0: a slice is produced only when the decompressor asks for one, which it does only once its
    // previous output has been read
    const source = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (at >= compressed.length) controller.close();
          else {
            controller.enqueue(compressed.subarray(at, at + INFLATE_SLICE));
            at += INFLATE_SLICE;
          }
        },
      },
      { highWaterMark: 0 },
    );
    this.reader = source.pipeThrough(new DecompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>).getReader();
  }

  private async fill(): Promise<boolean> {
    while (this.chunkPos >= this.chunk.length) {
      if (this.ended) return false;
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await this.reader.read();
      } catch (e) {
        this.ended = true;
        fail(this.op, `${this.name} is gzip-compressed but does not decompress after ${this.position} bytes (corrupt or truncated gzip stream: ${(e as Error).message})`);
      }
      if (r.done) {
        this.ended = true;
        return false;
      }
      this.chunk = r.value;
      this.chunkPos = 0;
    }
    return true;
  }

  /**
   * The next `n` decompressed bytes, or fewer if the stream ends first. The buffer grows with the data that actually
   * arrives, so a header claiming a huge size costs nothing unless the stream really holds it.
   */
  async take(n: number): Promise<Uint8Array> {
    let out = new Uint8Array(Math.min(n, 1 << 20));
    let have = 0;
    while (have < n && (await this.fill())) {
      const k = Math.min(n - have, this.chunk.length - this.chunkPos);
      if (have + k > out.length) {
        const grown = new Uint8Array(Math.min(n, Math.max(2 * out.length, have + k)));
        grown.set(out.subarray(0, have));
        out = grown;
      }
      out.set(this.chunk.subarray(this.chunkPos, this.chunkPos + k), have);
      this.chunkPos += k;
      have += k;
    }
    this.position += have;
    return have === out.length ? out : out.slice(0, have);
  }

  /** Decompresses and drops up to `n` bytes; returns how many there were. */
  async skip(n: number): Promise<number> {
    let skipped = 0;
    while (skipped < n && (await this.fill())) {
      const k = Math.min(n - skipped, this.chunk.length - this.chunkPos);
      this.chunkPos += k;
      skipped += k;
    }
    this.position += skipped;
    return skipped;
  }

  /**
   * Checks that at most max(1 MiB, `dataBytes`) decompressed bytes follow what was read (dropping them): a longer
   * stream is rejected as a gzip bomb or a header that understates the data, naming both sizes. `dataBytes` is the
   * size of the data the header describes, `expected` says how the header implies what was read.
   */
  async finish(dataBytes: number, expected: string): Promise<void> {
    const read = this.position;
    const slack = Math.max(1 << 20, dataBytes);
    await this.skip(slack);
    if (await this.fill()) {
      await this.reader.cancel().catch(() => undefined);
      fail(
        this.op,
        `${this.name} decompresses to more than ${read + slack} bytes, but ${expected} and at most ${slack} bytes may follow: ` +
          'a gzip bomb, or a header that understates the data (stopped decompressing there)',
      );
    }
  }

  /** Stops decompressing (after an error elsewhere). */
  cancel(): void {
    this.reader.cancel().catch(() => undefined);
  }
}

/** True when the bytes start with the gzip magic number. */
export const isGzip = (bytes: Uint8Array) => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
