/**
 * Payloads for the compression cases (groups 12 and 13). Autobahn ships five files (a JSON
 * document, a 512x512 bitmap, Goethe's Faust as text, an HTML page, a PDF); they are not
 * available here, so each is replaced by a generated document of the same kind and roughly the
 * same compressibility, built deterministically from a seeded generator (every run sends the
 * same bytes). Autobahn takes each message from a cursor moving through the file, wrapping
 * around; text documents are cut on code points, binary ones on bytes.
 */

export interface TestDocument {
  readonly key: string;
  readonly description: string;
  /** Sent as binary messages (Autobahn marks the bitmap, the Faust text and the PDF binary). */
  readonly binary: boolean;
  readonly data: Buffer;
}

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)] as T;
}

const FIRST = [
  "Anna",
  "Jürgen",
  "Zoë",
  "François",
  "Søren",
  "Łukasz",
  "Ana",
  "Hiroshi",
  "Ngozi",
  "José",
  "Ingrid",
  "Dmitri",
];
const LAST = [
  "Müller",
  "García",
  "Østergaard",
  "Nakamura",
  "Okafor",
  "Dubois",
  "Kowalski",
  "Smith",
  "Ivanov",
  "Rossi",
];
const CITIES = [
  "München",
  "São Paulo",
  "Zürich",
  "Kraków",
  "Tōkyō",
  "Reykjavík",
  "Lagos",
  "Montréal",
  "Москва",
  "東京",
];
const TAGS = [
  "alpha",
  "beta",
  "gamma",
  "realtime",
  "chat",
  "presence",
  "history",
  "ack",
  "delta",
  "😀",
  "naïve",
  "café",
];

function jsonDocument(): Buffer {
  const rand = prng(0x1234);
  const records: unknown[] = [];
  for (let i = 0; records.length < 900; i++) {
    const first = pick(rand, FIRST);
    const last = pick(rand, LAST);
    records.push({
      id: 100000 + i,
      guid: Array.from({ length: 4 }, () =>
        Math.floor(rand() * 0xffffffff)
          .toString(16)
          .padStart(8, "0"),
      ).join("-"),
      active: rand() < 0.5,
      balance: Math.round(rand() * 1e6) / 100,
      name: { first, last },
      email: `${first}.${last}@example.org`.toLowerCase(),
      city: pick(rand, CITIES),
      location: { lat: rand() * 180 - 90, lon: rand() * 360 - 180 },
      tags: Array.from({ length: 1 + Math.floor(rand() * 5) }, () => pick(rand, TAGS)),
      friends: Array.from({ length: Math.floor(rand() * 4) }, (_, k) => ({
        id: k,
        name: `${pick(rand, FIRST)} ${pick(rand, LAST)}`,
      })),
      greeting: `Hallo ${first}, du hast ${Math.floor(rand() * 20)} ungelesene Nachrichten — 🎉`,
    });
  }
  return Buffer.from(JSON.stringify(records, null, 2), "utf8");
}

const WORDS = (
  "der die das und ist nicht ein eine ich du er sie wir ihr mit von zu auf für bei nach aus " +
  "Habe nun ach Philosophie Juristerei Medizin leider auch Theologie durchaus studiert heißem " +
  "Bemühn Da steh ich nun armer Tor bin so klug als wie zuvor Heiße Magister Doktor gar ziehe " +
  "schon zehen Jahr herauf herab und quer krumm meine Schüler Nase herum sehe dass wir nichts " +
  "wissen können Herz verbrennen Geist Natur Welt Mephistopheles Gretchen Wagner Nacht Studierzimmer " +
  "Straße Garten Kerker Himmel Erde Teufel Seele Wette Augenblick verweile doch bist so schön"
).split(" ");

function germanText(): Buffer {
  const rand = prng(0x2229);
  const lines: string[] = [];
  let size = 0;
  while (size < 260_000) {
    if (rand() < 0.08) {
      const speaker = pick(rand, [
        "FAUST.",
        "MEPHISTOPHELES.",
        "WAGNER.",
        "MARGARETE.",
        "CHOR DER ENGEL.",
      ]);
      lines.push("", speaker);
    }
    const n = 5 + Math.floor(rand() * 8);
    let line = Array.from({ length: n }, () => pick(rand, WORDS)).join(" ");
    line = line[0]?.toUpperCase() + line.slice(1) + pick(rand, [",", ".", "!", "?", ";", ""]);
    lines.push(line);
    size += line.length + 2;
  }
  return Buffer.from(lines.join("\r\n"), "utf8");
}

function bitmap(): Buffer {
  // 512x512, 8 bits per pixel, grey palette: a smooth picture with some sensor noise.
  const rand = prng(0x512);
  const w = 512;
  const hgt = 512;
  const pixels = w * hgt;
  const offset = 14 + 40 + 256 * 4;
  const out = Buffer.alloc(offset + pixels);
  out.write("BM", 0, "latin1");
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(offset, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(w, 18);
  out.writeInt32LE(hgt, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(8, 28);
  out.writeUInt32LE(pixels, 34);
  out.writeUInt32LE(256, 46);
  for (let i = 0; i < 256; i++) {
    out[54 + i * 4] = i;
    out[55 + i * 4] = i;
    out[56 + i * 4] = i;
  }
  for (let y = 0; y < hgt; y++) {
    for (let x = 0; x < w; x++) {
      const dx = x - 256;
      const dy = y - 220;
      const r = Math.sqrt(dx * dx + dy * dy);
      let v = 128 + 60 * Math.sin(x / 37) * Math.cos(y / 23) + 50 * Math.cos(r / 18);
      if (r < 90) v = 200 - r;
      v += (rand() - 0.5) * 24;
      out[offset + y * w + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return out;
}

function htmlDocument(): Buffer {
  const rand = prng(0x4711);
  const parts: string[] = [
    '<!DOCTYPE html>\n<html lang="de">\n<head>\n<meta charset="utf-8">\n<title>Übersicht — Nachrichten</title>\n',
    '<link rel="stylesheet" href="/static/site.css">\n</head>\n<body>\n<nav class="top"><ul>',
  ];
  for (let i = 0; i < 12; i++) parts.push(`<li><a href="/section/${i}">Abschnitt ${i}</a></li>`);
  parts.push("</ul></nav>\n<main>\n");
  let size = 0;
  for (let i = 0; size < 300_000; i++) {
    const title = Array.from({ length: 4 + Math.floor(rand() * 5) }, () => pick(rand, WORDS)).join(
      " ",
    );
    const body = Array.from({ length: 40 + Math.floor(rand() * 60) }, () => pick(rand, WORDS)).join(
      " ",
    );
    const chunk =
      `<article id="post-${i}" class="post ${pick(rand, ["news", "blog", "note"])}">\n` +
      `  <h2><a href="/posts/${i}">${title}</a></h2>\n` +
      `  <p class="meta">von ${pick(rand, FIRST)} ${pick(rand, LAST)} · ${pick(rand, CITIES)} · ${1 + Math.floor(rand() * 28)}.${1 + Math.floor(rand() * 12)}.2024</p>\n` +
      `  <p>${body}.</p>\n` +
      `  <ul class="tags">${Array.from({ length: 3 }, () => `<li>${pick(rand, TAGS)}</li>`).join("")}</ul>\n` +
      "</article>\n";
    parts.push(chunk);
    size += chunk.length;
  }
  parts.push("</main>\n<footer>&copy; 2024 Beispiel GmbH</footer>\n</body>\n</html>\n");
  return Buffer.from(parts.join(""), "utf8");
}

function pdfLike(): Buffer {
  // Text objects (compressible) interleaved with streams of random bytes standing for the
  // already-compressed images and fonts of a real PDF.
  const rand = prng(0x105);
  const parts: Buffer[] = [Buffer.from("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "latin1")];
  let size = 0;
  for (let obj = 1; size < 400_000; obj++) {
    let chunk: Buffer;
    if (rand() < 0.45) {
      const n = 2000 + Math.floor(rand() * 12000);
      const data = Buffer.alloc(n);
      for (let i = 0; i < n; i++) data[i] = Math.floor(rand() * 256);
      chunk = Buffer.concat([
        Buffer.from(`${obj} 0 obj\n<< /Length ${n} /Filter /FlateDecode >>\nstream\n`, "latin1"),
        data,
        Buffer.from("\nendstream\nendobj\n", "latin1"),
      ]);
    } else {
      const text = Array.from({ length: 80 + Math.floor(rand() * 200) }, () =>
        pick(rand, WORDS),
      ).join(" ");
      chunk = Buffer.from(
        `${obj} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nBT /F1 11 Tf 72 720 Td (${text}) Tj ET\nendobj\n`,
        "latin1",
      );
    }
    parts.push(chunk);
    size += chunk.length;
  }
  parts.push(Buffer.from("trailer\n<< /Root 1 0 R >>\n%%EOF\n", "latin1"));
  return Buffer.concat(parts);
}

let cache: TestDocument[] | null = null;

/** The five documents, in Autobahn's order of cases 12.1-12.5. */
export function testDocuments(): readonly TestDocument[] {
  cache ??= [
    { key: "json", description: "JSON document (generated)", binary: false, data: jsonDocument() },
    {
      key: "bitmap",
      description: "Bitmap 512x512, 8-bit grey (generated)",
      binary: true,
      data: bitmap(),
    },
    {
      key: "text",
      description: "Human readable German text (generated)",
      binary: true,
      data: germanText(),
    },
    { key: "html", description: "HTML document (generated)", binary: false, data: htmlDocument() },
    {
      key: "pdf",
      description: "PDF-like document with incompressible streams (generated)",
      binary: true,
      data: pdfLike(),
    },
  ];
  return cache;
}

/**
 * Successive messages of `length` units (code points for text, bytes for binary) cut from a
 * document, wrapping around at its end.
 */
export class MessageCursor {
  private readonly units: readonly string[] | Buffer;
  private at = 0;
  private readonly length: number;

  constructor(doc: TestDocument, length: number) {
    this.units = doc.binary ? doc.data : Array.from(doc.data.toString("utf8"));
    this.length = length;
  }

  next(): Buffer {
    const n = this.units.length;
    if (this.length === 0) return Buffer.alloc(0);
    const from = this.at;
    const to = (from + this.length) % n;
    this.at = to;
    if (Buffer.isBuffer(this.units)) {
      return to > from
        ? Buffer.from(this.units.subarray(from, to))
        : Buffer.concat([this.units.subarray(from), this.units.subarray(0, to)]);
    }
    const units = this.units as readonly string[];
    const text =
      to > from
        ? units.slice(from, to).join("")
        : units.slice(from).join("") + units.slice(0, to).join("");
    return Buffer.from(text, "utf8");
  }
}
