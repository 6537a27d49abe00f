// Names, sizes and times as people read them, and names as URLs carry them.
//
// A name is data: it is only ever put into the page as text (textContent), never
// as markup. Names that are not valid UTF-8 arrive as lone surrogates \udc80-\udcff
// (Python's surrogateescape, as zdir --json writes them): each stands for one byte.

const ESCAPES = {'\x07': '\\a', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\v': '\\v',
                 '\f': '\\f', '\r': '\\r', '\\': '\\\\'};
// What Python's str.isprintable() refuses: controls, format characters (such as the
// right-to-left override), surrogates, private use, unassigned, separators but space.
const UNPRINTABLE = /[\p{C}\p{Z}\\]/u;
const encoder = new TextEncoder();

const octal = (byte) => '\\' + byte.toString(8).padStart(3, '0');

// The name as `zdir` and `ls -b` print it: one line, nothing hidden, nothing reordered.
export function showName(name) {
  if (!UNPRINTABLE.test(name.replace(/ /g, '')) && !hasLoneSurrogate(name)) return name;
  let out = '';
  for (const char of name) {
    const code = char.codePointAt(0);
    if (ESCAPES[char]) out += ESCAPES[char];
    else if (code >= 0xdc80 && code <= 0xdcff) out += octal(code - 0xdc00);
    else if (char !== ' ' && (UNPRINTABLE.test(char) || (code >= 0xd800 && code <= 0xdfff))) {
      for (const byte of encoder.encode(char)) out += octal(byte);
    } else out += char;
  }
  return out;
}

function hasLoneSurrogate(text) {
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?:[^\ud800-\udbff]|^)[\udc00-\udfff]/.test(text);
}

// The exact bytes of a name: UTF-8, and one byte per surrogate escape.
function nameBytes(name) {
  const bytes = [];
  for (const char of name) {
    const code = char.codePointAt(0);
    if (code >= 0xdc80 && code <= 0xdcff) bytes.push(code - 0xdc00);
    else for (const byte of encoder.encode(char)) bytes.push(byte);
  }
  return bytes;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

// A path ("a/b c") percent-encoded byte by byte, slashes kept: "a/b%20c".
export function pathToUrl(path) {
  let out = '';
  for (const byte of nameBytes(path)) {
    const char = String.fromCharCode(byte);
    out += byte < 0x80 && (UNRESERVED.test(char) || char === '/')
      ? char : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

// Sizes as `ls -lh`: powers of 1024, one decimal below 10, rounded up.
const SUFFIXES = 'KMGTPEZYRQ';
export function humanSize(size) {
  if (size === null || size === undefined) return '';
  if (size < 1024) return String(size);
  let power = 1024;
  let exponent = 0;
  while (size >= power * 1024 && exponent < SUFFIXES.length - 1) {
    power *= 1024;
    exponent += 1;
  }
  if (size < 10 * power) {
    const tenths = Math.ceil((size * 10) / power);
    if (tenths < 100) return `${Math.floor(tenths / 10)}.${tenths % 10}${SUFFIXES[exponent]}`;
  }
  const whole = Math.ceil(size / power);
  if (whole === 1024 && exponent < SUFFIXES.length - 1) return `1.0${SUFFIXES[exponent + 1]}`;
  return `${whole}${SUFFIXES[exponent]}`;
}

const pad = (n) => String(n).padStart(2, '0');

// 2024-03-30 23:45 in the browser's time zone (long-iso), and the full time for a tooltip.
export function shortTime(mtime) {
  if (mtime === null || mtime === undefined) return '';
  const d = new Date(mtime * 1000);
  if (Number.isNaN(d.getTime())) return '?';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fullTime(mtime) {
  if (mtime === null || mtime === undefined) return '';
  const d = new Date(mtime * 1000);
  return Number.isNaN(d.getTime()) ? '?' : `${shortTime(mtime)}:${pad(d.getSeconds())}` +
    `.${String(Math.round((mtime % 1) * 1e6)).padStart(6, '0')} (${mtime})`;
}

// 12,345: by hand, as toLocaleString costs more than a whole batch of rows.
export const count = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

// The directory holding a relative path ("" at the top).
export const dirname = (path) => path.slice(0, Math.max(0, path.lastIndexOf('/')));
