/// Names on the network: nicks (which are account names) and rooms (channels), with the `ascii`
/// casemapping the server advertises.
public enum IRCName {
    /// Longest nick (the account-name limit).
    public static let nickLength = 32
    /// Longest room name, '#' included.
    public static let roomLength = 50

    /// Lower-cases A–Z only (`CASEMAPPING=ascii`).
    public static func fold(_ name: String) -> String {
        var bytes = Array(name.utf8)
        var changed = false
        for k in bytes.indices where bytes[k] >= 0x41 && bytes[k] <= 0x5a {
            bytes[k] += 0x20
            changed = true
        }
        return changed ? String(decoding: bytes, as: UTF8.self) : name
    }

    /// Letters, digits and `-_[]\`^{}|`, starting with a letter, at most 32 bytes.
    public static func isValidNick(_ nick: String) -> Bool {
        let bytes = nick.utf8
        guard let first = bytes.first, bytes.count <= nickLength, isLetter(first) else { return false }
        return bytes.allSatisfy { isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) || "-_[]\\`^{}|".utf8.contains($0) }
    }

    /// '#' then 1 to 49 bytes of UTF-8 without spaces, commas or colons, and without anything
    /// that is invisible or changes how the text around it is shown: C0 and C1 controls, Unicode
    /// format characters (bidi overrides and isolates, zero-width characters), line and
    /// paragraph separators, other spaces, default-ignorable, private-use and unassigned code
    /// points. So no name can look like another or rearrange a line it is shown in. Names are
    /// compared by canonical equivalence (Swift's `String` equality and hashing), so "é" typed
    /// as one code point or as e + U+0301 is the same room.
    public static func isValidRoom(_ room: String) -> Bool {
        let bytes = room.utf8
        guard bytes.first == UInt8(ascii: "#"), bytes.count >= 2, bytes.count <= roomLength else { return false }
        guard bytes.dropFirst().allSatisfy({ $0 > 0x20 && $0 != 0x7f && $0 != UInt8(ascii: ",") && $0 != UInt8(ascii: ":") }) else { return false }
        return room.unicodeScalars.allSatisfy(isVisible)
    }

    static func isVisible(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return true }
        let properties = scalar.properties
        switch properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .spaceSeparator, .privateUse, .surrogate, .unassigned:
            return false
        default:
            return !properties.isDefaultIgnorableCodePoint
        }
    }

    static func isLetter(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) }
}
