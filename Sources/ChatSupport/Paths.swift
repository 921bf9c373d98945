/// File paths as text, without Foundation's NSString (the server links only FoundationEssentials).
public enum Paths {
    /// The folder `path` is in: "/a/b/c" → "/a/b", "/c" → "/", "c" → "" (as NSString's
    /// deletingLastPathComponent).
    public static func folder(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        if slash == trimmed.startIndex { return "/" }
        var folder = trimmed[..<slash]
        while folder.count > 1 && folder.hasSuffix("/") { folder = folder.dropLast() }
        return String(folder)
    }

    /// The last component: "/a/b.json" → "b.json".
    public static func name(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// `folder` and `name` joined by one slash ("" + "x" → "x").
    public static func join(_ folder: String, _ name: String) -> String {
        if folder.isEmpty { return name }
        return folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// An absolute path without "." components, repeated or trailing slashes, and with ".."
    /// taken back: "/etc/securechat/../x//y/." → "/etc/x/y" (text only; symbolic links stay). A
    /// relative path is returned as it is (as NSString's standardizingPath does).
    public static func standardized(_ path: String) -> String {
        let absolute = path.hasPrefix("/")
        guard absolute else { return path }
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                if let last = parts.last, last != ".." { parts.removeLast() } else if !absolute { parts.append(part) }
            default: parts.append(part)
            }
        }
        let joined = parts.joined(separator: "/")
        return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
    }
}

/// URL percent-decoding ("%40" → "@"), as Foundation's `removingPercentEncoding`.
public enum PercentEncoding {
    /// The text with every `%XX` decoded; nil if a `%` is not followed by two hex digits or the
    /// bytes are not UTF-8.
    public static func decode(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        func hex(_ b: UInt8?) -> UInt8? {
            guard let b else { return nil }
            switch b {
            case 0x30...0x39: return b - 0x30
            case 0x41...0x46: return b - 0x41 + 10
            case 0x61...0x66: return b - 0x61 + 10
            default: return nil
            }
        }
        while let b = iterator.next() {
            if b == UInt8(ascii: "%") {
                guard let high = hex(iterator.next()), let low = hex(iterator.next()) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(b)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
