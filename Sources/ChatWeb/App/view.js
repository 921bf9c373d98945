// Building the page from data. Text from the network only ever becomes text nodes or attribute
// values set through the DOM, never parsed as markup; links are made only for http and https URLs.

/** An element with attributes and children (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

const urlPattern = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/** Text with its http(s) links made clickable; everything else stays text. */
export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(urlPattern)) {
    let url = match[0];
    // Punctuation that ends a sentence is not part of the link.
    const trailing = url.match(/[.,;:!?)\]]+$/);
    if (trailing && !(trailing[0].startsWith(")") && url.includes("("))) url = url.slice(0, url.length - trailing[0].length);
    let href;
    try {
      href = new URL(url);
    } catch {
      continue;
    }
    if (href.protocol !== "https:" && href.protocol !== "http:") continue;
    fragment.append(text.slice(last, match.index));
    fragment.append(el("a", { href: href.href, target: "_blank", rel: "noopener noreferrer nofollow" }, url));
    last = match.index + url.length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

export function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}`;
}

export function dayLabel(date, now = new Date()) {
  if (dayKey(date) === dayKey(now)) return "Today";
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (dayKey(date) === dayKey(yesterday)) return "Yesterday";
  return dayFormat.format(date);
}

/** A stable colour for a nick, from a small palette that keeps AA contrast in both themes. */
export function nickClass(nick) {
  let h = 0;
  for (const c of nick) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return `nick nick-${h % 8}`;
}

/**
 * The rows of a conversation: day separators, the "new messages" line (before the first message
 * from someone else after `lineMarker`), messages grouped by
 * sender (a new group after five minutes or anything else in between), quiet events folded.
 */
export function renderConversation(list, conversation, me) {
  const rows = [];
  let previous = null;
  let day = null;
  let markerShown = false;
  for (const item of conversation.items) {
    const date = item.time;
    if (dayKey(date) !== day) {
      day = dayKey(date);
      rows.push(el("li", { class: "day", role: "separator" }, el("span", {}, dayLabel(date))));
      previous = null;
    }
    if (!markerShown && conversation.lineMarker && item.kind === "message" && item.nick !== me && date > conversation.lineMarker) {
      markerShown = true;
      rows.push(el("li", { class: "unread-line", role: "separator", "aria-label": "new messages" }, el("span", {}, "new messages")));
      previous = null;
    }
    if (item.kind === "event") {
      if (previous && previous.kind === "event" && previous.row) {
        previous.row.querySelector(".event-text").append(", " + item.text);
        continue;
      }
      const row = el("li", { class: "event" }, el("time", { datetime: date.toISOString(), title: fullFormat.format(date) }, timeFormat.format(date)),
        el("span", { class: "event-text", dir: "auto" }, item.text));
      rows.push(row);
      previous = { kind: "event", row };
      continue;
    }
    const grouped = previous && previous.kind === "message" && previous.nick === item.nick && !item.action && !previous.action &&
      date - previous.time < 5 * 60 * 1000;
    const classes = ["message"];
    if (grouped) classes.push("grouped");
    if (item.notice) classes.push("notice");
    if (item.action) classes.push("action");
    if (item.mention) classes.push("mention");
    if (item.failed) classes.push("failed");
    const body = el("span", { class: "text", dir: "auto" });
    if (item.action) body.append(el("span", { class: nickClass(item.nick) }, item.nick), " ");
    body.append(linkify(item.text));
    const row = el("li", { class: classes.join(" "), "data-msgid": item.msgid || null },
      el("time", { datetime: date.toISOString(), title: fullFormat.format(date) }, timeFormat.format(date)),
      grouped || item.action ? el("span", { class: "sender", "aria-hidden": grouped ? "true" : null }, grouped ? "" : "*")
        : el("span", { class: "sender " + nickClass(item.nick) }, item.notice ? `-${item.nick}-` : item.nick),
      body);
    rows.push(row);
    previous = { kind: "message", nick: item.nick, time: date, action: item.action };
  }
  list.replaceChildren(...rows);
}

/** The member list: operators first, then voiced, then the rest, each alphabetically. */
export function renderMembers(list, members) {
  const rank = (m) => (m.prefix.includes("@") ? 0 : m.prefix.includes("+") ? 1 : 2);
  const sorted = [...members.values()].sort((a, b) => rank(a) - rank(b) || a.nick.localeCompare(b.nick));
  list.replaceChildren(...sorted.map((m) =>
    el("li", { class: m.away ? "away" : "", title: m.away ? `${m.nick} is away: ${m.away}` : m.nick },
      el("span", { class: "prefix", "aria-label": m.prefix.includes("@") ? "operator" : m.prefix.includes("+") ? "voice" : null }, m.prefix.slice(0, 1)),
      el("span", { class: nickClass(m.nick) }, m.nick),
      m.away ? el("span", { class: "away-mark" }, " (away)") : null)));
}
