// Seeded mutations of real files for the fuzzing harness: byte-level damage common to every format, and per-format
// header lies (NIfTI fields, safetensors JSON, NRRD fields, checkpoint metadata, CLI configs). Every case is a pure
// function of (seed, case index), so `--seed S` reproduces a run and one case can be rebuilt alone.
import zlib from 'node:zlib';
import { gzipBomb } from './bytes.mjs';
import { rng as testRng } from '../../test/helpers.mjs';

/** The tests' seeded generator (mulberry32), with inclusive integer ranges, picks and coin flips. */
export function rng(seed) {
  const base = testRng(seed);
  return { next: base.next, int: (lo, hi) => base.int(lo, hi + 1), pick: (list) => list[base.int(0, list.length)], chance: (p) => base.next() < p };
}

/** Numbers a header lie draws from: edges of every integer width, non-finite floats, huge and tiny values. */
const LIES = [0, 1, -1, 2, 3, 7, 8, 9, 127, 128, 255, 256, 32767, -32768, 65535, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, 2 ** 53, 1e30, -1e30, 1e-30, 0.5, NaN, Infinity, -Infinity];

// ---- byte-level damage ---------------------------------------------------------------------------------------------

export function damage(r, bytes) {
  const b = Uint8Array.from(bytes);
  switch (r.int(0, 5)) {
    case 0: // truncation
      return { what: 'truncated', bytes: b.slice(0, r.int(0, Math.max(0, b.length - 1))) };
    case 1: {
      // random byte flips
      const n = r.int(1, 8);
      for (let i = 0; i < n && b.length; i++) b[r.int(0, b.length - 1)] ^= 1 << r.int(0, 7);
      return { what: `${n} bit flips`, bytes: b };
    }
    case 2: {
      // random bytes overwritten
      const n = r.int(1, 16);
      for (let i = 0; i < n && b.length; i++) b[r.int(0, b.length - 1)] = r.int(0, 255);
      return { what: `${n} random bytes`, bytes: b };
    }
    case 3: {
      // a chunk removed
      const at = r.int(0, b.length);
      const len = r.int(1, 64);
      return { what: `${len} bytes removed at ${at}`, bytes: new Uint8Array([...b.subarray(0, at), ...b.subarray(at + len)]) };
    }
    case 4: {
      // garbage inserted
      const at = r.int(0, b.length);
      const junk = Array.from({ length: r.int(1, 64) }, () => r.int(0, 255));
      return { what: `${junk.length} bytes inserted at ${at}`, bytes: new Uint8Array([...b.subarray(0, at), ...junk, ...b.subarray(at)]) };
    }
    default: // garbage appended
      return { what: 'garbage appended', bytes: new Uint8Array([...b, ...Array.from({ length: r.int(1, 4096) }, () => r.int(0, 255))]) };
  }
}

// ---- NIfTI ---------------------------------------------------------------------------------------------------------

/** Header fields per version: [offset, kind] with kind i16/i32/i64/f32/f64 (dim and pixdim arrays listed per entry). */
const NIFTI_FIELDS = {
  1: {
    sizeof_hdr: [0, 'i32'], dim: [40, 'i16', 8], intent_code: [68, 'i16'], datatype: [70, 'i16'], bitpix: [72, 'i16'],
    pixdim: [76, 'f32', 8], vox_offset: [108, 'f32'], scl_slope: [112, 'f32'], scl_inter: [116, 'f32'],
    qform_code: [252, 'i16'], sform_code: [254, 'i16'], quatern: [256, 'f32', 6], srow: [280, 'f32', 12], magic: [344, 'magic'],
  },
  2: {
    sizeof_hdr: [0, 'i32'], magic: [4, 'magic'], datatype: [12, 'i16'], bitpix: [14, 'i16'], dim: [16, 'i64', 8],
    pixdim: [104, 'f64', 8], vox_offset: [168, 'i64'], scl_slope: [176, 'f64'], scl_inter: [184, 'f64'],
    qform_code: [344, 'i32'], sform_code: [348, 'i32'], quatern: [352, 'f64', 6], srow: [400, 'f64', 12], intent_code: [504, 'i32'],
  },
};
const DATATYPE_CODES = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304, 3, 99, -1, 32767];

function setField(view, kind, at, value, le) {
  const int = (lo, hi) => (Number.isFinite(value) ? Math.max(lo, Math.min(hi, Math.trunc(value))) : 0);
  if (kind === 'i16') view.setInt16(at, int(-32768, 32767), le);
  else if (kind === 'i32') view.setInt32(at, int(-(2 ** 31), 2 ** 31 - 1), le);
  else if (kind === 'i64') view.setBigInt64(at, BigInt(int(-(2 ** 53), 2 ** 53)), le);
  else if (kind === 'f32') view.setFloat32(at, value, le);
  else view.setFloat64(at, value, le);
}

/** One header lie in an uncompressed NIfTI-1/2 image (the seed's byte order is kept). */
function niftiLie(r, bytes) {
  const b = Uint8Array.from(bytes);
  const view = new DataView(b.buffer);
  const le = view.getInt32(0, true) === 348 || view.getInt32(0, true) === 540;
  const version = view.getInt32(0, le) === 540 ? 2 : 1;
  const fields = NIFTI_FIELDS[version];
  const name = r.pick(Object.keys(fields));
  const [at, kind, count = 1] = fields[name];
  if (kind === 'magic') {
    const magic = r.pick(['ni1\0', 'n+2\0', 'n+1\0', 'ni2\0', 'xyz\0', '\0\0\0\0']);
    for (let i = 0; i < 4; i++) b[at + i] = magic.charCodeAt(i);
    return { what: `magic ${JSON.stringify(magic)}`, bytes: b };
  }
  const size = { i16: 2, i32: 4, i64: 8, f32: 4, f64: 8 }[kind];
  const i = r.int(0, count - 1);
  let value = r.pick(LIES);
  if (name === 'datatype') value = r.pick(DATATYPE_CODES);
  else if (name === 'dim' && r.chance(0.5)) value = r.pick([0, 1, 2, 3, 4, 5, 7, 8, 9, -1, 1000, 32767]);
  else if (name === 'vox_offset' && r.chance(0.6)) value = r.pick([0, 347, 348, 351, 352, 353, 540, 541, 543, 544, 545, 4096, 2 ** 31, NaN, Infinity, -1, 352.5]);
  else if ((name === 'qform_code' || name === 'sform_code') && r.chance(0.6)) value = r.int(-3, 8);
  else if (name === 'bitpix' && r.chance(0.5)) value = r.pick([0, 1, 8, 16, 32, 64, 128]);
  setField(view, kind, at + i * size, value, le);
  return { what: `${name}${count > 1 ? `[${i}]` : ''} = ${value}`, bytes: b };
}

async function niftiCase(r, seed) {
  const gz = seed.name.endsWith('.gz');
  const plain = gz ? new Uint8Array(zlib.gunzipSync(seed.bytes)) : seed.bytes;
  const kind = r.int(0, 9);
  if (kind <= 4) {
    // header lies (1 to 3), then compressed again for .nii.gz seeds
    let m = { what: '', bytes: plain };
    const lies = [];
    for (let n = r.int(1, 3); n > 0; n--) {
      m = niftiLie(r, m.bytes);
      lies.push(m.what);
    }
    return { what: lies.join(', '), bytes: gz ? new Uint8Array(zlib.gzipSync(m.bytes)) : m.bytes };
  }
  if (kind === 5 && gz) {
    // a gzip bomb: the true file, then zeros (2 to 256 MiB)
    const zeros = r.int(2, 256) << 20;
    return { what: `gzip bomb, ${zeros >> 20} MiB of zeros after the data`, bytes: await gzipBomb(plain, zeros), bomb: true };
  }
  if (kind === 6) {
    // damage before compression (the gzip stream stays valid)
    const m = damage(r, plain);
    return { what: `${m.what} (inside the gzip)`, bytes: gz ? new Uint8Array(zlib.gzipSync(m.bytes)) : m.bytes };
  }
  return damage(r, seed.bytes);
}

// ---- safetensors ---------------------------------------------------------------------------------------------------

const PROTO_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '__defineGetter__', 'valueOf'];
const ST_DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL', 'F8_E4M3', 'F8_E5M2', 'f32', 'Q4', '', 'constructor'];

function splitSafetensors(bytes) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')), data: bytes.subarray(8 + n) };
}

function joinSafetensors(headerText, data, lengthLie) {
  const json = Buffer.from(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthLie ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** One lie in a safetensors header (an object of entries, edited in place); returns its description. */
function safetensorsLie(r, header) {
  const names = Object.keys(header).filter((k) => k !== '__metadata__' && header[k] && typeof header[k] === 'object' && Array.isArray(header[k].data_offsets));
  if (!names.length) return 'no entry left to change';
  const name = r.pick(names);
  const e = header[name];
  switch (r.int(0, 8)) {
    case 0:
      e.dtype = r.pick(ST_DTYPES);
      return `${name}.dtype = ${e.dtype}`;
    case 1: {
      const shapes = [[], [0], [-1], [1.5], ['2'], Array(9).fill(1), Array(r.int(9, 1100)).fill(1), [2 ** 31, 2 ** 31], [2 ** 53], null, 'x'];
      e.shape = r.pick(shapes);
      return `${name}.shape = ${JSON.stringify(e.shape)?.slice(0, 40)}`;
    }
    case 2: {
      const [a, b] = e.data_offsets;
      e.data_offsets = r.pick([[b, a], [a, b + 4], [a - 4, b], [a, 2 ** 60], [-4, b], [a + 0.5, b], [a], null, [String(a), b]]);
      return `${name}.data_offsets = ${JSON.stringify(e.data_offsets)}`;
    }
    case 3: {
      // renamed to a prototype member (the data keep their place)
      const to = r.pick(PROTO_NAMES);
      delete header[name];
      Object.defineProperty(header, to, { value: e, enumerable: true, configurable: true, writable: true });
      return `${name} renamed '${to}'`;
    }
    case 4: {
      const meta = { ...(header.__metadata__ ?? {}) };
      const key = r.pick([...PROTO_NAMES, 'format', 'step']);
      Object.defineProperty(meta, key, { value: r.pick(['x', 1, null, { a: 1 }, ['x'], '{"__proto__":{"polluted":1}}']), enumerable: true, configurable: true, writable: true });
      header.__metadata__ = r.chance(0.2) ? r.pick([null, 'x', [1], 5]) : meta;
      return `__metadata__ ${JSON.stringify(header.__metadata__)?.slice(0, 60)}`;
    }
    case 5:
      header[name] = r.pick([null, 1, 'x', [], {}, { dtype: 'F32' }]);
      return `${name} = ${JSON.stringify(header[name])}`;
    case 6:
      delete header[name];
      return `${name} removed`;
    case 7:
      e.extra = { __proto__: { polluted: 1 } };
      return `${name} has extra fields`;
    default: {
      // a duplicate of another entry under a new name
      const copy = `${name}_copy`;
      header[copy] = { ...e };
      return `${copy} duplicates ${name}`;
    }
  }
}

function safetensorsCase(r, seed) {
  const kind = r.int(0, 9);
  if (kind <= 4) {
    const { header, data } = splitSafetensors(seed.bytes);
    const lies = [];
    for (let n = r.int(1, 3); n > 0; n--) lies.push(safetensorsLie(r, header));
    let text = JSON.stringify(header);
    if (text.length % 8) text += ' '.repeat(8 - (text.length % 8));
    return { what: lies.join(', '), bytes: joinSafetensors(text, data) };
  }
  if (kind === 5) {
    // JSON garbage: truncated text, bad UTF-8, duplicate keys, deep nesting, a non-object
    const { header, data } = splitSafetensors(seed.bytes);
    const text = JSON.stringify(header);
    const garbage = r.pick([
      text.slice(0, r.int(0, text.length - 1)),
      text.replace('{', '{"a":1,"a":2,'),
      `${'['.repeat(r.int(1, 100000))}`,
      '[]', 'null', '1e309', '"x"', text.replace(/"F32"/, '"\udce9"'), `${text.slice(0, -1)},}`,
      text.replace(/"shape":\[/, '"shape":[1e400,'),
      `{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
    ]);
    return { what: `JSON garbage ${JSON.stringify(garbage.slice(0, 40))}`, bytes: joinSafetensors(garbage, data) };
  }
  if (kind === 6) {
    // a header length that lies
    const { header, data } = splitSafetensors(seed.bytes);
    const text = JSON.stringify(header);
    const lie = r.pick([0, 1, 7, text.length - 1, text.length + 1, 2 ** 32, 99_999_999, 100_000_001, 2 ** 53]);
    return { what: `header length ${lie}`, bytes: joinSafetensors(text, data, lie) };
  }
  return damage(r, seed.bytes);
}

// ---- NRRD ----------------------------------------------------------------------------------------------------------

function misspell(r, word) {
  const i = r.int(0, word.length - 1);
  switch (r.int(0, 3)) {
    case 0:
      return word.slice(0, i) + word.slice(i + 1);
    case 1:
      return word.slice(0, i) + word[i] + word.slice(i);
    case 2:
      return word.slice(0, i) + String.fromCharCode(97 + r.int(0, 25)) + word.slice(i + 1);
    default:
      return i + 1 < word.length ? word.slice(0, i) + word[i + 1] + word[i] + word.slice(i + 2) : `${word}s`;
  }
}

function nrrdCase(r, seed) {
  const text = Buffer.from(seed.bytes).toString('latin1');
  const cut = text.indexOf('\n\n') + 2;
  const lines = text.slice(0, cut - 2).split('\n');
  let payload = seed.bytes.subarray(cut);
  const kind = r.int(0, 9);
  if (kind <= 5) {
    const lies = [];
    for (let n = r.int(1, 3); n > 0; n--) {
      const i = r.int(1, lines.length - 1);
      const [field, value] = lines[i].split(': ');
      switch (r.int(0, 7)) {
        case 0:
          lines[i] = `${misspell(r, field)}: ${value}`;
          lies.push(`field '${field}' misspelled`);
          break;
        case 1: {
          const v = r.pick(['-1', '0', '2 2 2 2 2 2 2 2 2 2', '1e9 1e9 1e9', '3.5', 'none', '(1,0,0) (0,0,0) (0,0,1)', '(nan,0,0) (0,1,0) (0,0,1)',
            '(1,0) (0,1,0) (0,0,1)', 'constructor', '__proto__', 'double', 'bzip2', 'hex', 'big', 'ascii', 'raw', 'gzip', '-1 2', '']);
          lines[i] = `${field}: ${v}`;
          lies.push(`${field}: ${v}`);
          break;
        }
        case 2:
          lines.splice(i, 1);
          lies.push(`field '${field}' removed`);
          break;
        case 3:
          lines.splice(i, 0, lines[i]);
          lies.push(`field '${field}' twice`);
          break;
        case 4: {
          const kv = r.pick(['__proto__:=x', 'constructor:=1', 'polluted:=1', 'a:=b:=c', ':=empty key', 'data file: other.raw', 'line skip: 2', 'byte skip: -1', 'byte skip: 99999999']);
          lines.splice(i, 0, kv);
          lies.push(kv);
          break;
        }
        case 5:
          lines[i] = lines[i].replace(': ', ':');
          lies.push(`'${field}' without a space`);
          break;
        case 6:
          lines[0] = r.pick(['NRRD0006', 'NRRD000', 'nrrd0004', 'NRRD0001']);
          lies.push(`magic ${lines[0]}`);
          break;
        default:
          lines[i] = `${field}: ${value} ${value}`;
          lies.push(`${field} doubled`);
      }
    }
    return { what: lies.join(', '), bytes: new Uint8Array(Buffer.concat([Buffer.from(`${lines.join('\n')}\n\n`, 'latin1'), payload])) };
  }
  if (kind === 6 && /encoding: ascii/.test(text)) {
    const values = Buffer.from(payload).toString('latin1').trim().split(/\s+/);
    const i = r.int(0, values.length - 1);
    values[i] = String(r.pick(['300', '-5', '1.5', 'nan', 'inf', '1e400', '0x10', '', 'abc', '-0', '65536', '2147483648']));
    payload = Buffer.from(`${values.join(' ')}\n`);
    return { what: `ascii value ${i} = '${values[i]}'`, bytes: new Uint8Array(Buffer.concat([Buffer.from(text.slice(0, cut), 'latin1'), payload])) };
  }
  return damage(r, seed.bytes);
}

// ---- checkpoints ---------------------------------------------------------------------------------------------------

function checkpointCase(r, seed) {
  const kind = r.int(0, 9);
  if (kind === 7) {
    // a change that keeps the checkpoint valid: the load must succeed
    const { header, data } = splitSafetensors(seed.bytes);
    const meta = header.__metadata__;
    const [key, value] = r.pick([['step', String(r.int(0, 1e6))], ['extra', JSON.stringify({ best: r.next(), tag: 'x' })], ['extra', 'null']]);
    meta[key] = value;
    let text = JSON.stringify(header);
    if (text.length % 8) text += ' '.repeat(8 - (text.length % 8));
    return { what: `valid __metadata__.${key} = ${value}`, bytes: joinSafetensors(text, data) };
  }
  if (kind <= 6) {
    const { header, data } = splitSafetensors(seed.bytes);
    const meta = header.__metadata__;
    const lies = [];
    for (let n = r.int(1, 2); n > 0; n--) {
      const which = r.int(0, 4);
      if (which === 0) {
        const key = r.pick(Object.keys(meta));
        meta[key] = r.pick(['abc', '', '{', 'null', '1e400', '-1', '2', '1.5', '{"__proto__":{"polluted":1}}', '{"seed":"x","offset":-1}', '{"type":"Adam","param_groups":[],"state":{"__proto__":{"polluted":1}}}',
          '{"type":"Adam","param_groups":[{"lr":"abc"}],"state":{}}', '{"last_epoch":"x"}', '[]', JSON.stringify(meta[key]).slice(1, -1)]);
        lies.push(`__metadata__.${key} = ${meta[key].slice(0, 40)}`);
      } else if (which === 1) {
        // an optimizer-state tensor renamed to a prototype path
        const name = r.pick(Object.keys(header).filter((k) => k.startsWith('optimizer.state.')).concat(Object.keys(header).filter((k) => k !== '__metadata__')));
        const to = r.pick(['optimizer.state.__proto__.polluted', 'optimizer.state.constructor.polluted', 'optimizer.state.0.__proto__', 'optimizer.state.prototype.x', '__proto__', 'constructor', 'optimizer.state.', 'optimizer.state.99.exp_avg']);
        const e = header[name];
        delete header[name];
        Object.defineProperty(header, to, { value: e, enumerable: true, configurable: true, writable: true });
        lies.push(`${name} renamed '${to}'`);
      } else lies.push(safetensorsLie(r, header));
    }
    let text = JSON.stringify(header);
    if (text.length % 8) text += ' '.repeat(8 - (text.length % 8));
    return { what: lies.join(', '), bytes: joinSafetensors(text, data) };
  }
  return damage(r, seed.bytes);
}

// ---- CLI configs ---------------------------------------------------------------------------------------------------

const CONFIG_VALUES = [0, -1, 1, 1e308, -1e308, 1.5, 2 ** 53, 'abc', '', true, false, null, [], [1], [0, -1], [1e9], {}, { a: 1 }, '1e400', 'NaN', [8, 'x']];

/** A config case: the JSON text of --config (or null) and --set arguments, built from a recipe's defaults. */
function configCase(r, seed) {
  const config = { ...seed.defaults };
  const set = [];
  const lies = [];
  const keys = Object.keys(seed.defaults);
  for (let n = r.int(1, 3); n > 0; n--) {
    const kind = r.int(0, 5);
    if (kind === 0) {
      const k = r.pick(keys);
      config[k] = r.pick(CONFIG_VALUES);
      lies.push(`${k} = ${JSON.stringify(config[k])}`);
    } else if (kind === 1) {
      const k = r.pick([...PROTO_NAMES, 'recipe', 'unknownSetting', misspell(r, r.pick(keys))]);
      Object.defineProperty(config, k, { value: r.pick(CONFIG_VALUES), enumerable: true, configurable: true, writable: true });
      lies.push(`config key '${k}'`);
    } else if (kind === 2) {
      const k = r.pick([...keys, ...PROTO_NAMES, misspell(r, r.pick(keys))]);
      const v = r.pick(['1', '-1', 'abc', '', 'true', '[1,2', '[1,2]', '[]', '[1e400]', '{"a":1}', '=', '1e400', 'NaN', '0x10']);
      set.push(r.chance(0.1) ? v : `${k}=${v}`);
      lies.push(`--set ${set.at(-1)}`);
    } else if (kind === 3) delete config[r.pick(keys)];
    else if (kind === 4) config.recipe = r.pick(['unet-phantom', 'reg', 'other', 1, null]);
    else lies.push('unchanged');
  }
  let text = JSON.stringify(config);
  if (r.chance(0.15)) {
    text = r.pick([text.slice(0, r.int(0, text.length - 1)), '[]', 'null', '1', '"x"', '{"a":}', `${text.slice(0, -1)},}`, '\ufeff' + text, '{"__proto__":{"steps":1}}']);
    lies.push(`JSON ${JSON.stringify(text.slice(0, 30))}`);
  }
  return { what: lies.join(', '), config: text, set };
}

/** Builds case `index` of `format` from the seeds (a pure function of seed and index). */
export async function makeCase(format, seeds, seed, index) {
  const r = rng((seed * 1_000_003 + index * 7919) >>> 0);
  const base = r.pick(seeds);
  const m =
    format === 'nifti' ? await niftiCase(r, base)
      : format === 'safetensors' ? safetensorsCase(r, base)
        : format === 'nrrd' ? nrrdCase(r, base)
          : format === 'checkpoint' ? checkpointCase(r, base)
            : configCase(r, base);
  return { ...m, seed: base.name, what: `${base.name}: ${m.what}` };
}
