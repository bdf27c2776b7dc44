/**
 * The checkpoint file format, without knowing what the tensors belong to: one safetensors file whose tensors keep
 * their names (a model's state-dict keys, so PyTorch users read them with safetensors.torch.load_file) and whose
 * `__metadata__` holds the format name and version, the step, and JSON sections (the random generator, an
 * optimizer's and a scheduler's state, user extras). src/train/checkpoint.ts maps models and optimizers onto it.
 * Reading validates the envelope (format, version, step, JSON, no key that could reach an object's prototype) before
 * returning anything.
 */
import { fail } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import { describe } from '../kernels/common.js';
import { readBytes, sourceName } from './files.js';
import { decodeSafetensors, encodeSafetensors, type SafetensorsSource } from './safetensors.js';

const FORMAT = 'voxgrad.checkpoint';
const VERSION = 1;

/** Keys that assignment into a plain object would turn into a prototype change (`__proto__`) or a global write. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export interface CheckpointData {
  /** Tensors by name (a Map: names come from the file and must never become object keys unchecked). */
  tensors: Map<string, Tensor>;
  step: number;
  /** The JSON sections by name, parsed. */
  sections: Map<string, unknown>;
  /** How errors name the checkpoint: its path, or 'the checkpoint bytes'. */
  label: string;
}

/** Encodes tensors, the step and JSON sections (each JSON-serialisable) as checkpoint bytes. */
export async function encodeCheckpointData(tensors: Record<string, Tensor>, step: number, sections: Record<string, unknown>, op: string): Promise<Uint8Array> {
  if (!Number.isSafeInteger(step) || step < 0) fail(op, `step must be a non-negative integer, got ${describe(step)}`);
  const metadata: Record<string, string> = { format: FORMAT, format_version: String(VERSION), step: String(step) };
  for (const [name, value] of Object.entries(sections)) {
    if (value === undefined) continue;
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (e) {
      fail(op, `${name} must be JSON-serialisable: ${(e as Error).message}`);
    }
    if (json === undefined) fail(op, `${name} must be JSON-serialisable, got ${describe(value)}`);
    metadata[name] = json;
  }
  return encodeSafetensors(tensors, { metadata }, op);
}

/** The name segments of a tensor key or JSON path that would reach a prototype, if any. */
function prototypeKey(key: string): string | undefined {
  return key.split('.').find((segment) => PROTOTYPE_KEYS.has(segment));
}

/**
 * Reads and validates a checkpoint's envelope: format name, version (an integer this voxgrad reads), step, every
 * JSON section, and no tensor name or JSON key that could reach a prototype. The caller owns (and disposes) the tensors.
 */
export async function readCheckpointData(source: SafetensorsSource, op: string): Promise<CheckpointData> {
  const label = sourceName(source, 'the checkpoint bytes');
  const { tensors, metadata } = decodeSafetensors(await readBytes(op, source), op, label);
  const all = new Map(Object.entries(tensors));
  try {
    for (const name of all.keys()) {
      const bad = prototypeKey(name);
      if (bad !== undefined) fail(op, `${label}: tensor '${name}' has the name segment '${bad}', which no checkpoint writes (the file is corrupt or crafted)`);
    }
    if (metadata.format !== FORMAT)
      fail(op, `${label} is not a voxgrad checkpoint (__metadata__.format is ${describe(metadata.format)}); for plain weights use vg.io.readSafetensors + model.loadStateDict`);
    const version = metadata.format_version;
    if (typeof version !== 'string' || !/^[1-9][0-9]{0,8}$/.test(version))
      fail(op, `${label}: __metadata__.format_version is ${describe(version)}, expected a positive integer version (this voxgrad writes ${VERSION})`);
    if (Number(version) > VERSION) fail(op, `${label}: checkpoint format version ${version} is newer than this voxgrad reads (${VERSION}); upgrade voxgrad`);
    const step = Number(metadata.step);
    if (!/^[0-9]+$/.test(metadata.step ?? '') || !Number.isSafeInteger(step))
      fail(op, `${label}: __metadata__.step is ${describe(metadata.step)}, expected a non-negative integer`);
    const sections = new Map<string, unknown>();
    for (const [name, text] of Object.entries(metadata)) {
      if (name === 'format' || name === 'format_version' || name === 'step') continue;
      let value: unknown;
      try {
        value = JSON.parse(text, (key, v: unknown) => {
          if (PROTOTYPE_KEYS.has(key)) throw new PrototypeKeyError(key);
          return v;
        });
      } catch (e) {
        if (e instanceof PrototypeKeyError)
          fail(op, `${label}: __metadata__.${name} holds the key '${e.key}', which no checkpoint writes (the file is corrupt or crafted)`);
        fail(op, `${label}: __metadata__.${name} is not valid JSON (${(e as Error).message}): the checkpoint is corrupt`);
      }
      sections.set(name, value);
    }
    return { tensors: all, step, sections, label };
  } catch (e) {
    for (const t of all.values()) t.dispose();
    throw e;
  }
}

/** Thrown from inside JSON.parse's reviver to stop at the first prototype key. */
class PrototypeKeyError extends Error {
  constructor(readonly key: string) {
    super(key);
  }
}
