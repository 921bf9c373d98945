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
        var scanner = Scanner(bytes: bytes)
        do throws(Problem) {
            scanner.skipSpace()
            try scanner.value(depth: 0)
            scanner.skipSpace()
            if scanner.index < bytes.count { throw scanner.problem("unexpected text after the end of the document") }
            return nil
        } catch {
            return error
        }
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

        mutating func value(depth: Int) throws(Problem) {
            if depth > 64 { throw problem("nested too deeply") }
            guard let c = current else { throw problem("the file ends where a value was expected (truncated?)") }
            switch c {
            case UInt8(ascii: "{"):
                index += 1
                skipSpace()
                if current == UInt8(ascii: "}") { index += 1; return }
                while true {
                    skipSpace()
                    guard current == UInt8(ascii: "\"") else {
                        throw problem(current == nil ? "the file ends inside an object (truncated?)" : "expected a quoted key")
                    }
                    try string()
                    skipSpace()
                    try expect(UInt8(ascii: ":"), "':' after a key")
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if current == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "}"), "',' or '}'")
                    return
                }
            case UInt8(ascii: "["):
                index += 1
                skipSpace()
                if current == UInt8(ascii: "]") { index += 1; return }
                while true {
                    skipSpace()
                    try value(depth: depth + 1)
                    skipSpace()
                    if current == UInt8(ascii: ",") { index += 1; continue }
                    try expect(UInt8(ascii: "]"), "',' or ']'")
                    return
                }
            case UInt8(ascii: "\""):
                try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                try number()
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

        mutating func number() throws(Problem) {
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
        }

        mutating func string() throws(Problem) {
            index += 1
            while let c = current {
                switch c {
                case UInt8(ascii: "\""):
                    index += 1
                    return
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let e = current else { break }
                    if e == UInt8(ascii: "u") {
                        for _ in 0..<4 {
                            index += 1
                            guard let h = current, (h >= 0x30 && h <= 0x39) || (h | 0x20 >= 0x61 && h | 0x20 <= 0x66) else {
                                throw problem("\\u needs four hex digits")
                            }
                        }
                    } else if !"\"\\/bfnrt".utf8.contains(e) {
                        throw problem("unknown escape '\\\(String(UnicodeScalar(e)))'")
                    }
                    index += 1
                case 0..<0x20:
                    throw problem("control character inside a string (a line break must be written \\n)")
                default:
                    index += 1
                }
            }
            throw problem("the file ends inside a string (truncated?)")
        }
    }
}
