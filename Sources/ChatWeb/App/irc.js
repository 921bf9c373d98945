// IRC messages as values: parse and serialise lines (IRCv3 tags included), SASL PLAIN, and the
// splitting of long text into lines the server takes. No DOM, no network: tested on its own.

const tagEscapes = { ":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n" };

function unescapeTag(value) {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === "\\" && i + 1 < value.length) {
      const next = value[++i];
      out += tagEscapes[next] ?? next;
    } else if (c !== "\\") {
      out += c;
    }
  }
  return out;
}

function escapeTag(value) {
  return value.replace(/[\\; \r\n]/g, (c) => ({ "\\": "\\\\", ";": "\\:", " ": "\\s", "\r": "\\r", "\n": "\\n" })[c]);
}

/** One IRC line (without CR LF) to { tags, source, command, params }; null if it has no command. */
export function parse(line) {
  let rest = line;
  const tags = {};
  if (rest.startsWith("@")) {
    const space = rest.indexOf(" ");
    if (space < 0) return null;
    for (const item of rest.slice(1, space).split(";")) {
      if (!item) continue;
      const eq = item.indexOf("=");
      if (eq < 0) tags[item] = "";
      else tags[item.slice(0, eq)] = unescapeTag(item.slice(eq + 1));
    }
    rest = rest.slice(space + 1).replace(/^ +/, "");
  }
  let source = null;
  if (rest.startsWith(":")) {
    const space = rest.indexOf(" ");
    if (space < 0) return null;
    source = rest.slice(1, space);
    rest = rest.slice(space + 1).replace(/^ +/, "");
  }
  const params = [];
  let command = null;
  while (rest.length > 0) {
    if (command !== null && rest.startsWith(":")) {
      params.push(rest.slice(1));
      break;
    }
    const space = rest.indexOf(" ");
    const word = space < 0 ? rest : rest.slice(0, space);
    if (command === null) command = word.toUpperCase();
    else params.push(word);
    rest = space < 0 ? "" : rest.slice(space + 1).replace(/^ +/, "");
  }
  if (!command) return null;
  return { tags, source, command, params };
}

/** A message to one line (without CR LF). Refuses CR, LF and NUL anywhere. */
export function serialize(command, params = [], tags = null) {
  let line = "";
  if (tags && Object.keys(tags).length > 0) {
    line += "@" + Object.entries(tags).map(([k, v]) => (v === "" || v === true ? k : `${k}=${escapeTag(String(v))}`)).join(";") + " ";
  }
  line += command;
  params.forEach((param, index) => {
    if (/[\r\n\0]/.test(param)) throw new Error("a line break cannot be sent inside a message");
    const last = index === params.length - 1;
    if (last && (param === "" || param.includes(" ") || param.startsWith(":"))) line += " :" + param;
    else line += " " + param;
  });
  return line;
}

/** The nick of a source (`nick!user@host`). */
export function nickOf(source) {
  if (!source) return "";
  const bang = source.indexOf("!");
  return bang < 0 ? source : source.slice(0, bang);
}

const encoder = new TextEncoder();

export function utf8Length(text) {
  return encoder.encode(text).length;
}

/** base64 of UTF-8 text, in chunks of 400 as AUTHENTICATE wants ("+" ends an exact multiple). */
export function saslPlain(account, password) {
  const bytes = encoder.encode(`${account}\0${account}\0${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  const encoded = btoa(binary);
  const chunks = [];
  for (let i = 0; i < encoded.length; i += 400) chunks.push(encoded.slice(i, i + 400));
  if (encoded.length % 400 === 0) chunks.push("+");
  return chunks;
}

/**
 * Splits text into pieces of at most `maxBytes` UTF-8 bytes, at spaces where it can and never
 * inside a character, as chat-client does; each piece is sent as its own message.
 */
export function splitText(text, maxBytes) {
  const pieces = [];
  let rest = text;
  while (utf8Length(rest) > maxBytes) {
    // The longest prefix (whole code points) that fits.
    let bytes = 0;
    let end = 0;
    for (const ch of rest) {
      const size = utf8Length(ch);
      if (bytes + size > maxBytes) break;
      bytes += size;
      end += ch.length;
    }
    const space = rest.lastIndexOf(" ", end);
    const cut = space > end / 2 ? space : end;
    pieces.push(rest.slice(0, cut));
    rest = rest.slice(cut).replace(/^ /, "");
  }
  if (rest.length > 0 || pieces.length === 0) pieces.push(rest);
  return pieces;
}

/** IRC formatting codes (bold, colours, …) removed: the app shows plain text. */
export function stripFormatting(text) {
  return text.replace(/\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g, "");
}

/** Case-insensitive comparison key for nicks and rooms (the server's CASEMAPPING=ascii). */
export function fold(name) {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

export function isRoom(target) {
  return target.startsWith("#");
}
