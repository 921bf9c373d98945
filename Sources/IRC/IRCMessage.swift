/// One IRC message: IRCv3 tags, an optional source, a command and its parameters.
///
/// Pure values: parsing and serialising do no I/O and read no clock. Parsing follows the Modern
/// IRC client protocol and IRCv3 message-tags: `[@tags ][:source ]COMMAND[ params][ :trailing]`.
public struct IRCMessage: Sendable, Hashable {
    /// Tags in the order received; a tag without a value has `value == nil`.
    public var tags: [IRCTag]
    /// The `:source` prefix, without the colon.
    public var source: String?
    /// The command, upper-cased ("PRIVMSG"), or a three-digit numeric ("001").
    public var command: String
    /// Parameters, the trailing one included, without its colon.
    public var parameters: [String]

    public init(tags: [IRCTag] = [], source: String? = nil, command: String, parameters: [String] = []) {
        self.tags = tags
        self.source = source
        self.command = command
        self.parameters = parameters
    }

    /// The limits from the specifications.
    public enum Limits {
        /// Bytes of a line without its tags, CRLF included.
        public static let line = 512
        /// Bytes of the tags section a server may send, the '@' and the space included.
        public static let tags = 8191
        /// Bytes of tags a client may send (without '@' and the space).
        public static let clientTags = 4094
        /// Parameters a message may carry.
        public static let parameters = 15
    }

    /// The value of the tag `key`, or nil if absent ("" for a tag without value).
    public func tag(_ key: String) -> String? {
        tags.first { $0.key == key }.map { $0.value ?? "" }
    }
}

/// One IRCv3 message tag.
public struct IRCTag: Sendable, Hashable {
    public var key: String
    public var value: String?

    public init(_ key: String, _ value: String? = nil) {
        self.key = key
        self.value = value
    }

    /// Client-only tags start with '+'; a server relays them only to clients with message-tags.
    public var isClientOnly: Bool { key.hasPrefix("+") }
}

/// Why a line is not an acceptable IRC message.
public enum IRCParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing but spaces.
    case empty
    /// The part without tags is longer than 510 bytes (512 with CRLF).
    case lineTooLong
    /// The tags are longer than allowed.
    case tagsTooLong
    /// The line is not valid UTF-8.
    case invalidUTF8
    /// A NUL byte, which IRC forbids.
    case containsNUL
    /// A CR or LF inside the line (a bare CR would end the line early in some clients: a way to
    /// forge a second line). The whole line is refused.
    case containsLineBreak
    /// No command, or a command that is neither letters nor three digits.
    case invalidCommand
    /// More than 15 parameters.
    case tooManyParameters

    public var description: String {
        switch self {
        case .empty: return "empty line"
        case .lineTooLong: return "line longer than 512 bytes"
        case .tagsTooLong: return "message tags too long"
        case .invalidUTF8: return "not valid UTF-8"
        case .containsNUL: return "contains a NUL byte"
        case .containsLineBreak: return "contains a CR or LF inside the line"
        case .invalidCommand: return "missing or invalid command"
        case .tooManyParameters: return "more than 15 parameters"
        }
    }
}

extension IRCMessage {
    /// Parses one line (without CR LF). Tags longer than `maximumTagBytes` or a rest longer than
    /// 510 bytes are refused, as is invalid UTF-8.
    public static func parse<Bytes: Collection>(_ line: Bytes, maximumTagBytes: Int = Limits.clientTags, maximumLineBytes: Int = Limits.line) throws(IRCParseError) -> IRCMessage where Bytes.Element == UInt8 {
        let bytes = Array(line)
        return try bytes.withUnsafeBufferPointer { (buffer) throws(IRCParseError) -> IRCMessage in
            try parse(buffer: buffer, maximumTagBytes: maximumTagBytes, maximumLineBytes: maximumLineBytes)
        }
    }

    /// Parses a line in place (no copy of the input). `maximumLineBytes` counts CR LF, as the
    /// 512 of the specifications does.
    public static func parse(buffer bytes: UnsafeBufferPointer<UInt8>, maximumTagBytes: Int = Limits.clientTags, maximumLineBytes: Int = Limits.line) throws(IRCParseError) -> IRCMessage {
        var i = 0
        let n = bytes.count
        for byte in bytes where byte <= 0x0d {
            if byte == 0 { throw .containsNUL }
            if byte == 0x0d || byte == 0x0a { throw .containsLineBreak }
        }
        if !isValidUTF8(bytes) { throw .invalidUTF8 }
        func skipSpaces() { while i < n && bytes[i] == 0x20 { i += 1 } }
        func string(_ start: Int, _ end: Int) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
        skipSpaces()
        if i == n { throw .empty }
        var tags: [IRCTag] = []
        if bytes[i] == UInt8(ascii: "@") {
            let start = i + 1
            while i < n && bytes[i] != 0x20 { i += 1 }
            if i - start > maximumTagBytes { throw .tagsTooLong }
            tags = parseTags(bytes, start, i)
            skipSpaces()
        }
        let restStart = i
        if n - restStart > maximumLineBytes - 2 { throw .lineTooLong }
        var source: String?
        if i < n && bytes[i] == UInt8(ascii: ":") {
            let start = i + 1
            while i < n && bytes[i] != 0x20 { i += 1 }
            source = string(start, i)
            skipSpaces()
        }
        let commandStart = i
        while i < n && bytes[i] != 0x20 { i += 1 }
        if i == commandStart { throw .invalidCommand }
        var command = [UInt8](UnsafeBufferPointer(rebasing: bytes[commandStart..<i]))
        let allLetters = command.allSatisfy { ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7a }
        let numeric = command.count == 3 && command.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        guard allLetters || numeric else { throw .invalidCommand }
        for k in command.indices where command[k] >= 0x61 { command[k] -= 0x20 }
        var parameters: [String] = []
        while i < n {
            skipSpaces()
            if i == n { break }
            if bytes[i] == UInt8(ascii: ":") {
                parameters.append(string(i + 1, n))
                i = n
                break
            }
            let start = i
            while i < n && bytes[i] != 0x20 { i += 1 }
            parameters.append(string(start, i))
            if parameters.count > Limits.parameters { throw .tooManyParameters }
        }
        if parameters.count > Limits.parameters { throw .tooManyParameters }
        return IRCMessage(tags: tags, source: source, command: String(decoding: command, as: UTF8.self), parameters: parameters)
    }

    private static func parseTags(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> [IRCTag] {
        var tags: [IRCTag] = []
        var i = start
        while i < end {
            let keyStart = i
            while i < end && bytes[i] != UInt8(ascii: "=") && bytes[i] != UInt8(ascii: ";") { i += 1 }
            let key = String(decoding: UnsafeBufferPointer(rebasing: bytes[keyStart..<i]), as: UTF8.self)
            var value: String?
            if i < end && bytes[i] == UInt8(ascii: "=") {
                i += 1
                let valueStart = i
                while i < end && bytes[i] != UInt8(ascii: ";") { i += 1 }
                value = unescapeTagValue(UnsafeBufferPointer(rebasing: bytes[valueStart..<i]))
            }
            if i < end { i += 1 }  // ';'
            if isValidTagKey(key) {
                if let existing = tags.firstIndex(where: { $0.key == key }) {
                    tags[existing].value = value  // the last of duplicate keys wins
                } else {
                    tags.append(IRCTag(key, value))
                }
            }
        }
        return tags
    }

    /// An IRCv3 tag key: an optional `+` (client-only), then letters, digits, `-`, `.` and `/`
    /// (a vendor prefix). Tags with other keys are dropped.
    static func isValidTagKey(_ key: String) -> Bool {
        let body = key.utf8.first == UInt8(ascii: "+") ? key.utf8.dropFirst() : key.utf8[...]
        return !body.isEmpty && body.allSatisfy { b in
            (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7a || b >= 0x30 && b <= 0x39 || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "/")
        }
    }

    /// IRCv3 tag value unescaping: \: ; \s space, \\ backslash, \r CR, \n LF; a lone trailing
    /// backslash is dropped; other escaped characters stand for themselves.
    static func unescapeTagValue(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\") {
                i += 1
                if i == bytes.count { break }
                switch bytes[i] {
                case UInt8(ascii: ":"): out.append(UInt8(ascii: ";"))
                case UInt8(ascii: "s"): out.append(0x20)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "n"): out.append(0x0a)
                default: out.append(bytes[i])
                }
            } else {
                out.append(b)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Escapes a tag value for the wire.
    public static func escapeTagValue(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case ";": out += "\\:"
            case " ": out += "\\s"
            case "\\": out += "\\\\"
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The message as it goes on the wire, with CR LF. The last parameter gets a colon when it is
    /// empty, contains a space or starts with a colon. A CR, LF or NUL inside any part (which the
    /// parser never lets in, but a caller could build) goes out as a space: nothing sent can ever
    /// split into two lines.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + parameters.reduce(0) { $0 + $1.utf8.count + 1 })
        if !tags.isEmpty {
            out.append(UInt8(ascii: "@"))
            for (k, tag) in tags.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ";")) }
                Self.appendSafely(tag.key, to: &out)
                if let value = tag.value, !value.isEmpty {
                    out.append(UInt8(ascii: "="))
                    Self.appendSafely(Self.escapeTagValue(value), to: &out)
                }
            }
            out.append(0x20)
        }
        if let source {
            out.append(UInt8(ascii: ":"))
            Self.appendSafely(source, to: &out)
            out.append(0x20)
        }
        Self.appendSafely(command, to: &out)
        for (k, parameter) in parameters.enumerated() {
            out.append(0x20)
            let isLast = k == parameters.count - 1
            if isLast && (parameter.isEmpty || parameter.utf8.contains(0x20) || parameter.utf8.first == UInt8(ascii: ":")) {
                out.append(UInt8(ascii: ":"))
            }
            Self.appendSafely(parameter, to: &out)
        }
        out.append(0x0d)
        out.append(0x0a)
        return out
    }

    @inline(__always)
    private static func appendSafely(_ text: String, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: text.utf8)
        for k in start..<out.count where out[k] <= 0x0d && (out[k] == 0 || out[k] == 0x0d || out[k] == 0x0a) {
            out[k] = 0x20
        }
    }
}

/// Strict UTF-8 validation without allocating (overlongs, surrogates and values past U+10FFFF
/// are invalid).
public func isValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    var i = 0
    let n = bytes.count
    while i < n {
        let b = bytes[i]
        if b < 0x80 { i += 1; continue }
        var need = 0
        var minimum: UInt32 = 0
        var scalar: UInt32 = 0
        switch b {
        case 0xc2...0xdf: need = 1; scalar = UInt32(b & 0x1f); minimum = 0x80
        case 0xe0...0xef: need = 2; scalar = UInt32(b & 0x0f); minimum = 0x800
        case 0xf0...0xf4: need = 3; scalar = UInt32(b & 0x07); minimum = 0x10000
        default: return false
        }
        for k in 1...need {
            guard i + k < n else { return false }
            let c = bytes[i + k]
            if c & 0xc0 != 0x80 { return false }
            scalar = scalar << 6 | UInt32(c & 0x3f)
        }
        if scalar < minimum || scalar > 0x10ffff || (scalar >= 0xd800 && scalar <= 0xdfff) { return false }
        i += need + 1
    }
    return true
}
