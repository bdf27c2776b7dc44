/**
 * A 5×7 bitmap font for figure titles (HD44780-style glyphs). Each glyph is 7 rows of 5 bits, most significant bit
 * leftmost, written as 14 hex digits. Characters without a glyph draw as '?'.
 */
const GLYPHS: Record<string, string> = {
  ' ': '00000000000000', '.': '00000000000C0C', '-': '0000001F000000', _: '0000000000001F', '%': '18190204081303',
  ':': '000C0C000C0C00', '/': '00010204081000', '(': '02040808080402', ')': '08040202020408', ',': '000000000C0408',
  '+': '0004041F040400', '=': '00001F001F0000', '?': '0E110102040004', '±': '04041F0404001F',
  '0': '0E11131519110E', '1': '040C040404040E', '2': '0E11010204081F', '3': '1F02040201110E', '4': '02060A121F0202',
  '5': '1F101E0101110E', '6': '0608101E11110E', '7': '1F010204080808', '8': '0E11110E11110E', '9': '0E11110F01020C',
  A: '0E1111111F1111', B: '1E11111E11111E', C: '0E11101010110E', D: '1C12111111121C', E: '1F10101E10101F',
  F: '1F10101E101010', G: '0E11101711110F', H: '1111111F111111', I: '0E04040404040E', J: '0702020202120C',
  K: '11121418141211', L: '1010101010101F', M: '111B1515111111', N: '11111915131111', O: '0E11111111110E',
  P: '1E11111E101010', Q: '0E11111115120D', R: '1E11111E141211', S: '0F10100E01011E', T: '1F040404040404',
  U: '1111111111110E', V: '11111111110A04', W: '1111111515150A', X: '11110A040A1111', Y: '1111110A040404',
  Z: '1F01020408101F',
  a: '00000E010F110F', b: '1010161911111E', c: '00000E1010110E', d: '01010D1311110F', e: '00000E111F100E',
  f: '0609081C080808', g: '000F11110F010E', h: '10101619111111', i: '04000C0404040E', j: '0200060202120C',
  k: '10101214181412', l: '0C04040404040E', m: '00001A15151111', n: '00001619111111', o: '00000E1111110E',
  p: '00001E111E1010', q: '00000D130F0101', r: '00001619101010', s: '00000E100E011E', t: '08081C08080906',
  u: '0000111111130D', v: '00001111110A04', w: '0000111115150A', x: '0000110A040A11', y: '000011110F010E',
  z: '00001F0204081F',
};

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;

/**
 * The text as a bitmap: `scale` × (7 rows) by `scale` × (6 columns per character, a blank column after each glyph but
 * the last); 1 where ink is.
 */
export function textBitmap(text: string, scale = 1): { width: number; height: number; ink: Uint8Array } {
  const chars = [...text];
  const width = chars.length ? (chars.length * (GLYPH_WIDTH + 1) - 1) * scale : 0;
  const height = GLYPH_HEIGHT * scale;
  const ink = new Uint8Array(width * height);
  chars.forEach((ch, k) => {
    const hex = GLYPHS[ch] ?? GLYPHS['?'];
    for (let row = 0; row < GLYPH_HEIGHT; row++) {
      const bits = parseInt(hex.slice(2 * row, 2 * row + 2), 16);
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        if (!((bits >> (GLYPH_WIDTH - 1 - col)) & 1)) continue;
        for (let dy = 0; dy < scale; dy++)
          for (let dx = 0; dx < scale; dx++) ink[(row * scale + dy) * width + (k * (GLYPH_WIDTH + 1) + col) * scale + dx] = 1;
      }
    }
  });
  return { width, height, ink };
}
