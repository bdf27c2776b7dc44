/**
 * File access for vg.io. The library core is platform-neutral: the Node entry registers a provider backed by `fs`
 * (src/io/files-node.ts). In a browser, readers take URLs (relative ones resolve against the page or worker location),
 * File/Blob, fetch Responses or bytes, and writers' errors name the encoder that makes the bytes (see download()).
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

/**
 * What readers take: a file path (Node), a URL or URL string (in a page or Worker a relative one resolves against its
 * location), a File or Blob (file inputs, drag and drop), a fetch Response, or the bytes themselves.
 */
export type ByteSource = string | URL | Uint8Array | ArrayBuffer | Blob | Response;

let fileSystem: FileSystem | null = null;

export function setFileSystem(fs: FileSystem): void {
  fileSystem = fs;
}

/**
 * The registered file system, or an error naming the operation and what to do instead. `encoder` is the function that
 * makes a writer's bytes without a file system (e.g. 'vg.io.encodeNifti'): in a page the error says to save those.
 */
export function files(op: string, encoder?: string): FileSystem {
  if (!fileSystem) {
    if (encoder)
      fail(op, `writing a file path needs Node's file system; in a browser make the bytes with ${encoder}(...) and save them with vg.io.download(name, bytes) (or keep them in memory)`);
    fail(op, 'file paths need Node (import voxgrad in Node); in a browser pass a URL, a File or Blob, a fetch Response or the bytes');
  }
  return fileSystem;
}

/** A readable name for a source in error messages: the path or URL, a File's name, or what kind of object it is. */
export function sourceName(source: ByteSource, bytesName = 'the given buffer'): string {
  if (typeof source === 'string') return source;
  if (source instanceof URL) return source.href;
  if (typeof File !== 'undefined' && source instanceof File) return source.name;
  if (typeof Blob !== 'undefined' && source instanceof Blob) return 'the given Blob';
  if (typeof Response !== 'undefined' && source instanceof Response) return source.url || 'the given Response';
  return bytesName;
}

// two or more letters: a Windows drive (C:\\data) is a path
const ABSOLUTE_URL = /^[a-z][a-z0-9+.-]+:/i;

/** A URL string or URL to fetch: absolute as given, relative against the page's or worker's location. */
function resolveUrl(op: string, source: string | URL): URL {
  if (source instanceof URL) return source;
  if (ABSOLUTE_URL.test(source)) return new URL(source);
  const base = (globalThis as { location?: { href: string } }).location?.href;
  if (!base)
    fail(op, `${source} is a relative path, but there is no file system (Node's entry registers one) and no page or worker location to resolve it against; pass an absolute URL, a File or Blob, a Response or the bytes`);
  return new URL(source, base);
}

async function responseBytes(op: string, response: Response, name: string): Promise<Uint8Array> {
  if (!response.ok) fail(op, `fetching ${name} failed: HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`);
  if (response.bodyUsed) fail(op, `the Response for ${name} was already read; pass a fresh Response (or response.clone())`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Bytes from any ByteSource. Strings are file paths where a file system is registered (Node) unless they start with
 * a URL scheme (https:, blob:, data:, ...); without one (browsers) every string is a URL.
 */
export async function readBytes(op: string, source: ByteSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
  if (typeof Response !== 'undefined' && source instanceof Response) return responseBytes(op, source, sourceName(source));
  if (!(source instanceof URL) && typeof source !== 'string')
    fail(op, `source must be a path, URL, File, Blob, Response, Uint8Array or ArrayBuffer; got ${Object.prototype.toString.call(source)}`);
  if (source instanceof URL || !fileSystem || ABSOLUTE_URL.test(source)) {
    const url = resolveUrl(op, source);
    // fetch has no file: scheme in Node; the file system reads those
    if (url.protocol === 'file:' && fileSystem) return readBytes(op, decodeURIComponent(url.pathname));
    let response: Response;
    try {
      response = await fetch(url);
    } catch (e) {
      return fail(op, `fetching ${url.href} failed: ${(e as Error).message}`);
    }
    return responseBytes(op, response, url.href);
  }
  try {
    return await fileSystem.readFile(source);
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
