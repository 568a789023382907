// The QR encoder's structure (the Chromium test reads its codes back with a real decoder, zbarimg):
//   node --test test/
import assert from "node:assert/strict";
import { test } from "node:test";
import { qrMatrix, qrPath } from "../src/qr.js";

const finderAt = (m, x0, y0) => {
  for (let dy = 0; dy < 7; dy++) {
    for (let dx = 0; dx < 7; dx++) {
      const ring = Math.max(Math.abs(dx - 3), Math.abs(dy - 3));
      if (m[y0 + dy][x0 + dx] !== (ring !== 2)) return false;
    }
  }
  return true;
};

test("the smallest version that holds the text, with its three finder patterns and timing lines", () => {
  // Level M's byte capacities (ISO/IEC 18004 table 7): version 1 holds 14, 2 holds 26, 7 holds 122.
  const cases = [["hello", 1], ["x".repeat(14), 1], ["x".repeat(15), 2], ["x".repeat(26), 2], ["x".repeat(122), 7], ["x".repeat(123), 8]];
  for (const [text, version] of cases) {
    const m = qrMatrix(text);
    assert.equal(m.length, version * 4 + 17, text.length);
    assert.ok(finderAt(m, 0, 0) && finderAt(m, m.length - 7, 0) && finderAt(m, 0, m.length - 7));
    for (let i = 8; i < m.length - 8; i++) assert.equal(m[6][i], i % 2 === 0);
    assert.equal(m[m.length - 8][8], true); // the dark module
  }
});

test("an otpauth URI fits a small code; text past version 40's capacity is refused", () => {
  const uri = "otpauth://totp/Medama:someone%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Medama&algorithm=SHA1&digits=6&period=30";
  assert.ok(qrMatrix(uri).length <= 8 * 4 + 17);
  assert.throws(() => qrMatrix("x".repeat(2400)), /too long/);
});

test("the SVG path draws one square per dark module, inside the quiet zone", () => {
  const m = qrMatrix("hi");
  const squares = qrPath(m).match(/M\d+ \d+h1v1h-1z/g);
  assert.equal(squares.length, m.flat().filter(Boolean).length);
  assert.ok(qrPath(m).startsWith("M4 4"));
});
