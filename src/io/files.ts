/**
 * File access for vg.io. The library core is platform-neutral: the Node entry registers a provider backed by `fs`
 * (src/io/files-node.ts); in a browser, functions that take a path accept bytes instead (or a URL for reads).
 */
import { fail } from '../engine/errors.js';

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
  return files(op).readFile(source);
}

async function transform(bytes: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const out = new Blob([bytes as BlobPart]).stream().pipeThrough(stream as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

/** gzip/zlib through the platform's Compression Streams (Node ≥ 18 and every current browser). */
export const gzip = (bytes: Uint8Array) => transform(bytes, new CompressionStream('gzip'));
export const gunzip = (bytes: Uint8Array) => transform(bytes, new DecompressionStream('gzip'));
export const deflate = (bytes: Uint8Array) => transform(bytes, new CompressionStream('deflate'));

/** True when the bytes start with the gzip magic number. */
export const isGzip = (bytes: Uint8Array) => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
