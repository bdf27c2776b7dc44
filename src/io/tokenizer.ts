/**
 * Text tokenizers for CLIP's text tower.
 *
 * BpeTokenizer is CLIP's byte-level BPE: it reads the standard files (Hugging Face CLIPTokenizer's vocab.json +
 * merges.txt, or OpenAI's merges list alone, from which CLIP builds its vocabulary). Text is HTML-unescaped (numeric
 * references and the common named ones), whitespace runs collapse, it is stripped and lower-cased (OpenAI also runs
 * ftfy's mojibake repair first, which is not reproduced), then split into the special tokens, the English contractions,
 * letter runs, single digits and runs of other non-space characters. Each piece's UTF-8 bytes become printable
 * characters (byte b → itself for the 188 printable Latin-1 bytes, else the next code point from 256 on), the last one
 * carries the end-of-word suffix '</w>', and the lowest-ranked adjacent pair is merged everywhere until none is ranked.
 *
 * WordTokenizer maps the words of a fixed vocabulary (the captions of a synthetic dataset) to ids.
 *
 * Both put the end-of-text token last in the vocabulary: CLIP's text tower pools the features at each row's largest
 * id.
 */
import { fail } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';
import { tensor } from '../kernels/creation.js';
import { describe } from '../kernels/common.js';
import { readBytes } from './files.js';

const SOT = '<|startoftext|>';
const EOT = '<|endoftext|>';
const SUFFIX = '</w>';
const PIECES = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** CLIP's byte → printable character table (index = byte). */
export function byteCharacters(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : 256 + extra++));
}

function unescapeHtml(s: string): string {
  return s.replace(/&(#\d+|#x[0-9a-f]+|[a-z]+);/gi, (m, body: string) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return NAMED[body.toLowerCase()] ?? m;
  });
}

/** HTML-unescaped twice (as CLIP does), whitespace collapsed, stripped, lower-cased. */
export function cleanText(text: string): string {
  return unescapeHtml(unescapeHtml(text)).replace(/\s+/g, ' ').trim().toLowerCase();
}

export interface TokenizeOptions {
  /** Tokens per row, start and end tokens included; default 77 (CLIP's). */
  contextLength?: number;
  /** Cut texts that are too long (keeping the end token last) instead of failing; default false. */
  truncate?: boolean;
}

/** Rows [SOT, ...ids, EOT, 0...] as an i32 tensor [N, contextLength] (CLIP's clip.tokenize). */
function packRows(op: string, encoded: number[][], sot: number, eot: number, opts: TokenizeOptions): Tensor {
  const L = opts.contextLength ?? 77;
  if (!Number.isInteger(L) || L < 2) fail(op, `contextLength must be an integer >= 2 (room for the start and end tokens), got ${describe(opts.contextLength)}`);
  const out = new Int32Array(encoded.length * L);
  encoded.forEach((ids, r) => {
    let row = [sot, ...ids, eot];
    if (row.length > L) {
      if (!opts.truncate) fail(op, `text ${r} needs ${row.length} tokens, more than contextLength ${L}; pass { truncate: true } to cut it`);
      row = [...row.slice(0, L - 1), eot];
    }
    out.set(row, r * L);
  });
  return tensor(out, [encoded.length, L], { dtype: 'i32' });
}

function textList(op: string, texts: string | readonly string[]): string[] {
  const list = typeof texts === 'string' ? [texts] : texts;
  if (!Array.isArray(list) || list.some((t) => typeof t !== 'string')) fail(op, `texts must be a string or an array of strings, got ${describe(texts)}`);
  return [...list];
}

/** Entries kept by the per-piece cache before it is cleared (captions repeat a few hundred words). */
const CACHE_LIMIT = 10_000;

export class BpeTokenizer {
  readonly encoder: ReadonlyMap<string, number>;
  private readonly decoder: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly byteChar = byteCharacters();
  private readonly charByte = new Map(this.byteChar.map((c, b) => [c, b]));
  private readonly cache = new Map<string, string[]>();
  readonly sotToken: number;
  readonly eotToken: number;

  /** vocab: token → id; merges: pairs in rank order (the first merges first). */
  constructor(vocab: Record<string, number>, merges: readonly (readonly [string, string])[]) {
    const op = 'BpeTokenizer';
    if (vocab === null || typeof vocab !== 'object') fail(op, `vocab must be an object of token → id, got ${describe(vocab)}`);
    const enc = new Map<string, number>();
    for (const [t, id] of Object.entries(vocab)) {
      if (!Number.isInteger(id) || id < 0) fail(op, `vocab id of '${t}' must be a non-negative integer, got ${describe(id)}`);
      enc.set(t, id);
      this.decoder[id] = t;
    }
    this.encoder = enc;
    merges.forEach(([a, b], i) => {
      const key = `${a} ${b}`;
      if (!this.ranks.has(key)) this.ranks.set(key, i);
    });
    for (const c of this.byteChar)
      if (!enc.has(c) && !enc.has(c + SUFFIX)) fail(op, `vocab lacks the byte character '${c}' (U+${c.codePointAt(0)!.toString(16)}); not a byte-level BPE vocabulary`);
    const special = (t: string) => {
      const id = enc.get(t);
      if (id === undefined) fail(op, `vocab lacks the special token ${t}`);
      return id;
    };
    this.sotToken = special(SOT);
    this.eotToken = special(EOT);
  }

  /** Parses merges.txt: one pair per line, separated by a space; a first line starting with '#version' is skipped. */
  static parseMerges(text: string, maxMerges = Infinity): [string, string][] {
    const lines = text.split('\n').filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith('#version')));
    return lines.slice(0, maxMerges).map((l, i) => {
      const parts = l.split(' ');
      if (parts.length !== 2) fail('BpeTokenizer.parseMerges', `merges line ${i + 1} must be two symbols separated by one space, got ${JSON.stringify(l)}`);
      return [parts[0], parts[1]];
    });
  }

  /** CLIP's vocabulary from its merges alone: the byte characters, the same with '</w>', the merges, SOT, EOT. */
  static fromMerges(merges: readonly (readonly [string, string])[]): BpeTokenizer {
    const chars = byteCharacters();
    const list = [...chars, ...chars.map((c) => c + SUFFIX), ...merges.map(([a, b]) => a + b), SOT, EOT];
    return new BpeTokenizer(Object.fromEntries(list.map((t, i) => [t, i])), merges);
  }

  /**
   * From files (paths in Node, URLs or bytes): vocab.json + merges.txt (Hugging Face), or merges alone (vocab null:
   * OpenAI's bpe_simple_vocab file, gunzipped; `maxMerges` 48 894 reproduces CLIP's 49 408-token vocabulary).
   */
  static async fromFiles(vocab: string | Uint8Array | null, merges: string | Uint8Array, opts: { maxMerges?: number } = {}): Promise<BpeTokenizer> {
    const op = 'BpeTokenizer.fromFiles';
    const text = (b: Uint8Array) => new TextDecoder('utf-8', { fatal: false }).decode(b);
    const pairs = BpeTokenizer.parseMerges(text(await readBytes(op, merges)), opts.maxMerges);
    if (vocab === null) return BpeTokenizer.fromMerges(pairs);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text(await readBytes(op, vocab)));
    } catch (e) {
      fail(op, `vocab is not valid JSON: ${(e as Error).message}`);
    }
    return new BpeTokenizer(parsed as Record<string, number>, pairs);
  }

  private bpe(piece: string): string[] {
    const hit = this.cache.get(piece);
    if (hit) return hit;
    const bytes = new TextEncoder().encode(piece);
    let word = Array.from(bytes, (b) => this.byteChar[b]);
    word[word.length - 1] += SUFFIX;
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      const [a, b] = [word[best], word[best + 1]];
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          merged.push(a + b);
          i++;
        } else merged.push(word[i]);
      }
      word = merged;
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(piece, word);
    return word;
  }

  /** Token ids of a text (no start/end tokens). */
  encode(text: string): number[] {
    if (typeof text !== 'string') fail('BpeTokenizer.encode', `text must be a string, got ${describe(text)}`);
    const ids: number[] = [];
    for (const piece of cleanText(text).match(PIECES) ?? []) {
      if (piece === SOT || piece === EOT) {
        ids.push(this.encoder.get(piece)!);
        continue;
      }
      for (const sym of this.bpe(piece)) {
        const id = this.encoder.get(sym);
        if (id === undefined) fail('BpeTokenizer.encode', `the merges produce '${sym}', which the vocab lacks (vocab and merges files do not belong together)`);
        ids.push(id);
      }
    }
    return ids;
  }

  /** Text of token ids: bytes decoded as UTF-8 (invalid sequences → U+FFFD), each '</w>' a space. */
  decode(ids: readonly number[]): string {
    const chars = ids.map((id) => {
      const t = this.decoder[id];
      if (t === undefined) fail('BpeTokenizer.decode', `id ${String(id)} is not in the vocab (${this.decoder.length} ids)`);
      return t;
    });
    const bytes = Array.from(chars.join(''), (c) => this.charByte.get(c) ?? 0x3f);
    return new TextDecoder('utf-8').decode(new Uint8Array(bytes)).replaceAll(SUFFIX, ' ');
  }

  /** CLIP's clip.tokenize: i32 [N, contextLength] rows of start token, ids, end token, zeros. */
  tokenize(texts: string | readonly string[], opts: TokenizeOptions = {}): Tensor {
    const op = 'BpeTokenizer.tokenize';
    return packRows(op, textList(op, texts).map((t) => this.encode(t)), this.sotToken, this.eotToken, opts);
  }
}

/**
 * Word-level tokenizer over a fixed word list: id 0 pads, 1 is <unk>, the words follow in the given order, then
 * <|startoftext|> and <|endoftext|> (the largest id). Text is cleaned as for BPE and split into letter/digit runs.
 */
export class WordTokenizer {
  readonly vocab: readonly string[];
  private readonly ids: Map<string, number>;
  readonly padToken = 0;
  readonly unkToken = 1;
  readonly sotToken: number;
  readonly eotToken: number;

  constructor(words: readonly string[]) {
    const op = 'WordTokenizer';
    if (!Array.isArray(words) || words.some((w) => typeof w !== 'string' || !/^[\p{L}\p{N}]+$/u.test(w) || w !== w.toLowerCase()))
      fail(op, `words must be an array of lower-case letter/digit strings, got ${describe(words)}`);
    if (new Set(words).size !== words.length) fail(op, 'words must be distinct');
    this.vocab = ['<pad>', '<unk>', ...words, SOT, EOT];
    this.ids = new Map(this.vocab.map((w, i) => [w, i]));
    this.sotToken = this.vocab.length - 2;
    this.eotToken = this.vocab.length - 1;
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  encode(text: string): number[] {
    if (typeof text !== 'string') fail('WordTokenizer.encode', `text must be a string, got ${describe(text)}`);
    return (cleanText(text).match(/[\p{L}\p{N}]+/gu) ?? []).map((w) => this.ids.get(w) ?? this.unkToken);
  }

  decode(ids: readonly number[]): string {
    return ids
      .filter((id) => id !== this.padToken)
      .map((id) => {
        const w = this.vocab[id];
        if (w === undefined) fail('WordTokenizer.decode', `id ${String(id)} is not in the vocab (${this.vocab.length} ids)`);
        return w;
      })
      .join(' ');
  }

  tokenize(texts: string | readonly string[], opts: TokenizeOptions = {}): Tensor {
    const op = 'WordTokenizer.tokenize';
    return packRows(op, textList(op, texts).map((t) => this.encode(t)), this.sotToken, this.eotToken, opts);
  }
}
