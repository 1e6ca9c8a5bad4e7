/**
 * The UTF-8 sequences of Autobahn cases 6.5.x-6.23.x, which follow Markus Kuhn's "UTF-8 decoder
 * capability and stress test" (https://www.cl.cam.ac.uk/~mgk25/ucs/examples/UTF-8-test.txt).
 * Each subgroup keeps Autobahn's order, so entry j of subgroup i is case 6.i.j.
 *
 * Validity is stated by hand (RFC 3629: no surrogates, nothing above U+10FFFF, no overlongs, no
 * 5/6-byte forms; non-characters and specials are valid) and cross-checked against a strict
 * decoder by test/conformance/model.test.ts.
 */

export interface Utf8Sequence {
  readonly hex: string;
  readonly valid: boolean;
}

export interface Utf8Group {
  readonly title: string;
  readonly sequences: readonly Utf8Sequence[];
}

const KOSME = "ceba e1bdb9 cf83 cebc ceb5".replace(/ /g, "");

const ok = (hex: string): Utf8Sequence => ({ hex: hex.replace(/ /g, ""), valid: true });
const bad = (hex: string): Utf8Sequence => ({ hex: hex.replace(/ /g, ""), valid: false });
const h = (n: number): string => n.toString(16).padStart(2, "0");

/** Text around a code point, as Autobahn's 6.5 cases ("hello<cp>world"). */
const hello = (cp: string): Utf8Sequence => ok(`68656c6c6f${cp}776f726c64`);

function prefixes(): Utf8Sequence[] {
  // Ends of code points in κόσμε (2, 3, 2, 2, 2 bytes): a prefix is valid only there.
  const ends = new Set([2, 5, 7, 9, 11]);
  const out: Utf8Sequence[] = [];
  for (let n = 1; n <= KOSME.length / 2; n++) {
    out.push({ hex: KOSME.slice(0, 2 * n), valid: ends.has(n) });
  }
  return out;
}

function range(from: number, to: number, each: (b: number) => string): string {
  let s = "";
  for (let b = from; b < to; b++) s += each(b);
  return s;
}

const missingLast = [
  "c0",
  "e080",
  "f08080",
  "f8808080",
  "fc80808080",
  "df",
  "efbf",
  "f7bfbf",
  "fbbfbfbf",
  "fdbfbfbfbf",
];

function nonCharacters(): Utf8Sequence[] {
  const out = [ok("efbfbe"), ok("efbfbf")];
  for (const lead of [0xf0, 0xf1, 0xf2, 0xf3, 0xf4]) {
    for (const second of [0x8f, 0x9f, 0xaf, 0xbf]) {
      if (lead === 0xf4 && second !== 0x8f) continue; // beyond U+10FFFF
      for (const last of [0xbe, 0xbf]) {
        const seq = `${h(lead)}${h(second)}bf${h(last)}`;
        if (seq === "f08fbfbe" || seq === "f08fbfbf") continue; // overlong forms
        out.push(ok(seq));
      }
    }
  }
  return out;
}

/** Subgroups 6.5 .. 6.23, in order. */
export const UTF8_GROUPS: readonly Utf8Group[] = [
  {
    title: "Some valid UTF-8 sequences",
    sequences: [hello("24"), hello("c2a2"), hello("e282ac"), hello("f0a4ada2"), ok(KOSME)],
  },
  {
    title: "All prefixes of a valid UTF-8 string that contains multi-byte code points",
    sequences: prefixes(),
  },
  {
    title: "First possible sequence of a certain length",
    sequences: [ok("00"), ok("c280"), ok("e0a080"), ok("f0908080")],
  },
  {
    title: "First possible sequence length 5/6 (invalid codepoints)",
    sequences: [bad("f888808080"), bad("fc8480808080")],
  },
  {
    title: "Last possible sequence of a certain length",
    sequences: [ok("7f"), ok("dfbf"), ok("efbfbf"), ok("f48fbfbf")],
  },
  {
    title: "Last possible sequence length 4/5/6 (invalid codepoints)",
    sequences: [bad("f7bfbfbf"), bad("fbbfbfbfbf"), bad("fdbfbfbfbfbf")],
  },
  {
    title: "Other boundary conditions",
    sequences: [ok("ed9fbf"), ok("ee8080"), ok("efbfbd"), ok("f48fbfbf"), bad("f4908080")],
  },
  {
    title: "Unexpected continuation bytes",
    sequences: [
      bad("80"),
      bad("bf"),
      bad("80bf"),
      bad("80bf80"),
      bad("80bf80bf"),
      bad("80bf80bf80"),
      bad("80bf80bf80bf"),
      bad(range(0x80, 0xbf, h)),
    ],
  },
  {
    title: "Lonely start characters",
    sequences: [
      [0xc0, 0xdf],
      [0xe0, 0xef],
      [0xf0, 0xf7],
      [0xf8, 0xfb],
      [0xfc, 0xfd],
    ].map(([from, to]) => bad(range(from ?? 0, to ?? 0, (b) => `${h(b)}20`))),
  },
  {
    title: "Sequences with last continuation byte missing",
    sequences: missingLast.map(bad),
  },
  {
    title: "Concatenation of incomplete sequences",
    sequences: [bad(missingLast.join(""))],
  },
  {
    title: "Impossible bytes",
    sequences: [bad("fe"), bad("ff"), bad("fefeffff")],
  },
  {
    title: "Examples of an overlong ASCII character",
    sequences: [
      bad("c0af"),
      bad("e080af"),
      bad("f08080af"),
      bad("f8808080af"),
      bad("fc80808080af"),
    ],
  },
  {
    title: "Maximum overlong sequences",
    sequences: [
      bad("c1bf"),
      bad("e09fbf"),
      bad("f08fbfbf"),
      bad("f887bfbfbf"),
      bad("fc83bfbfbfbf"),
    ],
  },
  {
    title: "Overlong representation of the NUL character",
    sequences: [
      bad("c080"),
      bad("e08080"),
      bad("f0808080"),
      bad("f880808080"),
      bad("fc8080808080"),
    ],
  },
  {
    title: "Single UTF-16 surrogates",
    sequences: ["eda080", "edadbf", "edae80", "edafbf", "edb080", "edbe80", "edbfbf"].map(bad),
  },
  {
    title: "Paired UTF-16 surrogates",
    sequences: [
      "eda080edb080",
      "eda080edbfbf",
      "edadbfedb080",
      "edadbfedbfbf",
      "edae80edb080",
      "edae80edbfbf",
      "edafbfedb080",
      "edafbfedbfbf",
    ].map(bad),
  },
  {
    title: "Non-character code points (valid UTF-8)",
    sequences: nonCharacters(),
  },
  {
    title: "Unicode specials (i.e. replacement char)",
    sequences: ["efbfb9", "efbfba", "efbfbb", "efbfbc", "efbfbd", "efbfbe", "efbfbf"].map(ok),
  },
];

/** First subgroup number of the table (6.5). */
export const UTF8_FIRST_SUBGROUP = 5;
