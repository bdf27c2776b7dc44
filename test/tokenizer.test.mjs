// vg.io.BpeTokenizer and WordTokenizer: CLIP's byte-level BPE on a small vocab.json/merges.txt pair the test writes
// (learned by test/fixtures/gen_tokenizer.py, which also encodes known strings with its own implementation of the
// scheme), read both ways (vocab + merges, merges alone); clip.tokenize's packing and truncation; the word-level
// tokenizer; errors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertThrowsWith, setup, vg } from './helpers.mjs';
import { rejectsWith } from './io-helpers.mjs';

test.before(setup);

const fixture = JSON.parse(fs.readFileSync(new URL('./fixtures/tokenizer.json', import.meta.url), 'utf8'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vg-tok-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const vocabPath = path.join(tmp, 'vocab.json');
const mergesPath = path.join(tmp, 'merges.txt');
fs.writeFileSync(vocabPath, JSON.stringify(fixture.vocab));
fs.writeFileSync(mergesPath, fixture.merges_txt);

test('byteCharacters is a bijection onto printable characters (CLIP: printable Latin-1 kept, others from U+0100)', () => {
  const t = vg.io.byteCharacters();
  assert.is(new Set(t).size, 256);
  assert.is(t[0x41], 'A');
  assert.is(t[0x20], String.fromCodePoint(256 + 32)); // bytes 0..32 come first among the shifted ones
  assert.is(t[0xad], String.fromCodePoint(256 + 67)); // the soft hyphen is the last shifted byte
});

for (const [label, load] of [
  ['vocab.json + merges.txt', () => vg.io.BpeTokenizer.fromFiles(vocabPath, mergesPath)],
  ['merges.txt alone (CLIP builds the vocab)', () => vg.io.BpeTokenizer.fromFiles(null, mergesPath)],
  ['bytes', () => vg.io.BpeTokenizer.fromFiles(new Uint8Array(fs.readFileSync(vocabPath)), new Uint8Array(fs.readFileSync(mergesPath)))],
]) {
  test(`BpeTokenizer (${label}) encodes and decodes known strings as the reference does`, async () => {
    const tok = await load();
    assert.is(tok.encoder.size, Object.keys(fixture.vocab).length);
    for (const c of fixture.cases) {
      assert.equal(tok.encode(c.text), c.ids, `encode ${JSON.stringify(c.text)}`);
      assert.is(tok.decode(c.ids), c.decoded, `decode ${JSON.stringify(c.text)}`);
    }
  });
}

test('BpeTokenizer.tokenize packs [SOT, ids, EOT, 0...] rows and truncates on request', async () => {
  const tok = await vg.io.BpeTokenizer.fromFiles(vocabPath, mergesPath);
  const [a, b] = fixture.cases;
  const t = tok.tokenize([a.text, b.text], { contextLength: 10 });
  assert.is(t.dtype, 'i32');
  assert.equal([...t.shape], [2, 10]);
  const rows = Array.from(await t.data());
  const row = (ids) => [tok.sotToken, ...ids, tok.eotToken, ...new Array(8 - ids.length).fill(0)];
  assert.equal(rows, [...row(a.ids), ...row(b.ids)]);
  assert.is(tok.eotToken, Math.max(...Object.values(fixture.vocab)), 'the end token has the largest id (CLIP pools there)');
  t.dispose();
  assertThrowsWith(() => tok.tokenize(b.text, { contextLength: 5 }), ['BpeTokenizer.tokenize', 'needs 8 tokens', 'contextLength 5', 'truncate']);
  const cut = tok.tokenize(b.text, { contextLength: 5, truncate: true });
  assert.equal(Array.from(await cut.data()), [tok.sotToken, ...b.ids.slice(0, 3), tok.eotToken]);
  cut.dispose();
  const d = tok.tokenize('a photo');
  assert.equal([...d.shape], [1, 77]);
  d.dispose();
});

test('BpeTokenizer rejects mismatched or malformed files', async () => {
  await rejectsWith(vg.io.BpeTokenizer.fromFiles(new TextEncoder().encode('{nope'), mergesPath), ['BpeTokenizer.fromFiles', 'not valid JSON']);
  assertThrowsWith(() => vg.io.BpeTokenizer.parseMerges('#version: 0.2\na b c\n'), ['parseMerges', 'line 1', 'two symbols']);
  const { '<|endoftext|>': _, ...noEot } = fixture.vocab;
  assertThrowsWith(() => new vg.io.BpeTokenizer(noEot, []), ['BpeTokenizer', 'lacks the special token <|endoftext|>']);
  assertThrowsWith(() => new vg.io.BpeTokenizer({ a: 0 }, []), ['BpeTokenizer', 'lacks the byte character']);
  // merges producing a symbol the vocab lacks
  const tok = new vg.io.BpeTokenizer(fixture.vocab, [['q', 'q</w>']]);
  assertThrowsWith(() => tok.encode('qq'), ['BpeTokenizer.encode', "'qq</w>'", 'do not belong together']);
  assertThrowsWith(() => tok.decode([1e6]), ['BpeTokenizer.decode', 'id 1000000']);
  assertThrowsWith(() => tok.tokenize([1]), ['BpeTokenizer.tokenize', 'array of strings']);
  assertThrowsWith(() => tok.tokenize('a', { contextLength: 1 }), ['contextLength must be an integer >= 2']);
});

test('WordTokenizer: fixed vocabulary, <unk>, end token last, same packing', async () => {
  const tok = new vg.io.WordTokenizer(['a', 'photo', 'of', 'bird', 'water', 'land']);
  assert.is(tok.vocabSize, 10);
  assert.equal(tok.encode('A photo of a  BIRD on water!'), [2, 3, 4, 2, 5, 1, 6]);
  assert.is(tok.decode([8, 2, 3, 1, 9, 0, 0]), '<|startoftext|> a photo <unk> <|endoftext|>');
  const t = tok.tokenize(['a bird', 'land'], { contextLength: 5 });
  assert.equal(Array.from(await t.data()), [8, 2, 5, 9, 0, 8, 7, 9, 0, 0]);
  t.dispose();
  assertThrowsWith(() => new vg.io.WordTokenizer(['Bird']), ['WordTokenizer', 'lower-case']);
  assertThrowsWith(() => new vg.io.WordTokenizer(['a', 'a']), ['WordTokenizer', 'distinct']);
  assertThrowsWith(() => tok.decode([10]), ['WordTokenizer.decode', 'id 10']);
});

test.run();
