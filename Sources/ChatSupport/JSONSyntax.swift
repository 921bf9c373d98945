/// Finds where JSON text first goes wrong, as a 1-based line and column and a reason.
///
/// Foundation's decoder says only "not valid JSON"; a person fixing a file by hand needs the
/// place. This is a validating scanner (RFC 8259), not a decoder: the decoder runs after it.
public enum JSONSyntax {
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var column: Int
        public var reason: String
        public var description: String { "line \(line), column \(column): \(reason)" }
    }

    /// The first syntax problem in `bytes`, or nil if they are one valid JSON value.
    public static func firstProblem(in bytes: [UInt8]) -> Problem? {
        do throws(Problem) {
            _ = try parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    /// The value of one JSON document: `[String: Any]` for an object, `[Any]` for a list,
    /// `String`, `Bool`, `JSONNumber` or `JSONNull`. (Full Foundation's JSONSerialization, which
    /// the server no longer links, gave NSNumber for both numbers and booleans.)
    public static func parse(_ bytes: [UInt8]) throws(Problem) -> Any {
        var scanner = Scanner(bytes: bytes)
        scanner.skipSpace()
        let value = try scanner.value(depth: 0)
        scanner.skipSpace()
        if scanner.index < bytes.count { throw scanner.problem("unexpected text after the end of the document") }
        return value
    }

    /// `value` (what `parse` gives, or Int, Double, String, Bool, lists and objects of them,
    /// nil as null) as compact JSON text, object keys sorted.
    public static func text(_ value: Any?) -> String {
        var out = ""
        write(value, into: &out)
        return out
    }

    private static func write(_ value: Any?, into out: inout String) {
        switch value {
        case nil, is JSONNull: out += "null"
        case let b as Bool: out += b ? "true" : "false"
        case let n as JSONNumber: out += n.text
        case let n as Int: out += String(n)
        case let n as Int64: out += String(n)
        case let n as Double: out += n.isFinite ? (n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)) : "null"
        case let s as String: quote(s, into: &out)
        case let list as [Any?]:
            out += "["
            for (i, item) in list.enumerated() {
                if i > 0 { out += "," }
                write(item, into: &out)
            }
            out += "]"
        case let object as [String: Any?]:
            out += "{"
            for (i, key) in object.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                quote(key, into: &out)
                out += ":"
                write(object[key] ?? nil, into: &out)
            }
            out += "}"
        default:
            quote("\(value!)", into: &out)
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        func problem(_ reason: String) -> Problem {
            var line = 1
            var column = 1
            for b in bytes[0..<min(index, bytes.count)] {
                if b == 0x0a { line += 1; column = 1 } else if b & 0xc0 != 0x80 { column += 1 }
            }
            return Problem(line: line, column: column, reason: reason)
        }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let c = current, c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09 { index += 1 }
        }

        mutating func expect(_ c: UInt8, _ what: String) throws(Problem) {
            guard current == c else {
                throw problem(current == nil ? "the file ends where \(what) was expected (truncated?)" : "expected \(what), found '\(String(UnicodeScalar(current!)))'")
            }
            index += 1
        }

        mutating func value(depth: Int) throws(Problem) -> Any {
            if depth > 64 { throw problem("nested too deeply") }
            guard let c = current else { throw problem("the file ends where a value was expected (truncated?)") }
            switch c {
            case UInt8(ascii: "{"):
                index += 1
                skipSpace()
                var object: [String: Any] = [:]
                if current == UInt8(ascii: "}") { index += 1; return object }
                while true {
                    skipSpace()
                    guard current == UInt8(ascii: "\"") else {
                        throw problem(current == nil ? "the file ends inside an object (truncated?)" : "expected a quoted key")
                    }
                    let key = try string()
                    skipSpace()
                    try expect(UInt8(ascii: ":"), "':' after a key")
                    skipSpace()
                    object[key] = try value(depth: depth + 1)
                    skipSpace()
                    if current == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "}"), "',' or '}'")
                    return object
                }
            case UInt8(ascii: "["):
                index += 1
                skipSpace()
                var list: [Any] = []
                if current == UInt8(ascii: "]") { index += 1; return list }
                while true {
                    skipSpace()
                    list.append(try value(depth: depth + 1))
                    skipSpace()
                    if current == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "]"), "',' or ']'")
                    return list
                }
            case UInt8(ascii: "\""):
                return try string()
            case UInt8(ascii: "t"): try literal("true"); return true
            case UInt8(ascii: "f"): try literal("false"); return false
            case UInt8(ascii: "n"): try literal("null"); return JSONNull()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try number()
            default:
                throw problem("unexpected character '\(String(UnicodeScalar(c)))'")
            }
        }

        mutating func literal(_ word: String) throws(Problem) {
            for b in word.utf8 {
                guard current == b else { throw problem("expected '\(word)'") }
                index += 1
            }
        }

        mutating func number() throws(Problem) -> JSONNumber {
            let start = index
            if current == UInt8(ascii: "-") { index += 1 }
            var digits = 0
            if current == UInt8(ascii: "0") {
                index += 1  // no leading zeros: "0" stands alone
                digits = 1
            } else {
                while let c = current, c >= 0x30 && c <= 0x39 { index += 1; digits += 1 }
            }
            if digits == 0 { throw problem("a number needs digits") }
            if current == UInt8(ascii: ".") {
                index += 1
                var fraction = 0
                while let c = current, c >= 0x30 && c <= 0x39 { index += 1; fraction += 1 }
                if fraction == 0 { throw problem("a number needs digits after '.'") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                var exponent = 0
                while let c = current, c >= 0x30 && c <= 0x39 { index += 1; exponent += 1 }
                if exponent == 0 { throw problem("a number needs digits in its exponent") }
            }
            return JSONNumber(text: String(decoding: bytes[start..<index], as: UTF8.self))
        }

        mutating func string() throws(Problem) -> String {
            index += 1
            var text: [UInt8] = []
            /// A \\u escape's high surrogate, waiting for its low half.
            var high: UInt32?
            func append(_ scalar: UInt32) {
                let value = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                text.append(contentsOf: Array(String(value).utf8))
            }
            while let c = current {
                if c != UInt8(ascii: "\\"), let pending = high {
                    append(pending)
                    high = nil
                }
                switch c {
                case UInt8(ascii: "\""):
                    index += 1
                    if let pending = high { append(pending) }
                    return String(decoding: text, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let e = current else { break }
                    if e == UInt8(ascii: "u") {
                        var code: UInt32 = 0
                        for _ in 0..<4 {
                            index += 1
                            guard let h = current, (h >= 0x30 && h <= 0x39) || (h | 0x20 >= 0x61 && h | 0x20 <= 0x66) else {
                                throw problem("\\u needs four hex digits")
                            }
                            code = code * 16 + UInt32(h <= 0x39 ? h - 0x30 : (h | 0x20) - 0x61 + 10)
                        }
                        if let pending = high {
                            high = nil
                            if (0xDC00...0xDFFF).contains(code) {
                                append(0x10000 + ((pending - 0xD800) << 10) + (code - 0xDC00))
                            } else {
                                append(pending)
                                if (0xD800...0xDBFF).contains(code) { high = code } else { append(code) }
                            }
                        } else if (0xD800...0xDBFF).contains(code) {
                            high = code
                        } else {
                            append(code)
                        }
                    } else {
                        if let pending = high { append(pending); high = nil }
                        switch e {
                        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(e)
                        case UInt8(ascii: "b"): text.append(0x08)
                        case UInt8(ascii: "f"): text.append(0x0c)
                        case UInt8(ascii: "n"): text.append(0x0a)
                        case UInt8(ascii: "r"): text.append(0x0d)
                        case UInt8(ascii: "t"): text.append(0x09)
                        default: throw problem("unknown escape '\\\(String(UnicodeScalar(e)))'")
                        }
                    }
                    index += 1
                case 0..<0x20:
                    throw problem("control character inside a string (a line break must be written \\n)")
                default:
                    text.append(c)
                    index += 1
                }
            }
            throw problem("the file ends inside a string (truncated?)")
        }
    }
}

/// A JSON number as written, with its value.
public struct JSONNumber: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    public var double: Double { Double(text) ?? .nan }
    /// The value if it is a whole number that fits an Int (`3`, `3.0`, `3e2`), else nil.
    public var integer: Int? {
        if let whole = Int(text) { return whole }
        let d = double
        guard d.isFinite, d == d.rounded(), abs(d) < 9.0e18 else { return nil }
        return Int(d)
    }
    public var description: String { text }
}

extension JSONNumber {
    /// A number from `parse`, or one a program put in a dictionary (Int, Double); nil for
    /// anything else, booleans included.
    public static func double(_ value: Any?) -> Double? {
        switch value {
        case let n as JSONNumber: return n.double
        case let n as Int: return Double(n)
        case let n as Double: return n
        default: return nil
        }
    }

    /// As `double`, for whole numbers that fit an Int.
    public static func integer(_ value: Any?) -> Int? {
        switch value {
        case let n as JSONNumber: return n.integer
        case let n as Int: return n
        case let n as Double: return JSONNumber(text: String(n)).integer
        default: return nil
        }
    }
}

/// JSON's null.
public struct JSONNull: Sendable, Equatable {}
