/// Account names: the IRC nick rules the server uses, so that a nick is always an account name.
///
/// Letters, digits and `-_[]\`^{}|`, starting with a letter, 1 to 32 characters (ASCII only).
/// Two names are the same account when they are equal ignoring ASCII case.
public enum AccountName {
    public static let maximumLength = 32

    /// Why `name` is not a valid account name, or nil if it is.
    public static func problem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        guard let first = bytes.first else { return "an account name cannot be empty" }
        if bytes.count > maximumLength {
            return "'\(name.prefix(40))' is longer than \(maximumLength) characters"
        }
        if !isLetter(first) {
            return "'\(name)' must start with a letter (a-z, A-Z)"
        }
        for byte in bytes where !isLetter(byte) && !isDigit(byte) && !isSpecial(byte) {
            let shown = byte < 0x20 || byte >= 0x7f ? String(format2: byte) : String(UnicodeScalar(byte))
            return "'\(name)' contains \(shown); use letters, digits and - _ [ ] \\ ` ^ { } |"
        }
        return nil
    }

    /// Whether `name` is a valid account name.
    public static func isValid(_ name: String) -> Bool { problem(name) == nil }

    /// The key two names share when they name the same account (ASCII lower case).
    public static func folded(_ name: String) -> String {
        String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5a ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    static func isLetter(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) }
    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
    static func isSpecial(_ b: UInt8) -> Bool { "-_[]\\`^{}|".utf8.contains(b) }
}

extension String {
    /// "byte 0x0A" for a byte that should not be shown as itself.
    fileprivate init(format2 byte: UInt8) {
        let hex = String(byte, radix: 16, uppercase: true)
        self = "byte 0x" + (byte < 16 ? "0" : "") + hex
    }
}
