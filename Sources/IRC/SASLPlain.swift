/// SASL PLAIN (RFC 4616) as carried by IRC's `AUTHENTICATE`: base64 of
/// `authzid NUL authcid NUL password`, sent in chunks of 400 characters.
public enum SASLPlain {
    /// Longest encoded payload accepted (the password limit is 1024 bytes).
    public static let maximumEncodedLength = 4096

    /// Why a payload was refused.
    public enum Failure: Error, Sendable, Equatable {
        case notBase64, wrongShape, identityMismatch, tooLong
    }

    /// Decodes a complete payload into the account name and password bytes. An authorization
    /// identity, if present, must equal the authentication identity.
    public static func decode(_ encoded: [UInt8]) throws(Failure) -> (account: String, password: [UInt8]) {
        if encoded.count > maximumEncodedLength { throw .tooLong }
        guard var bytes = base64Decode(encoded) else { throw .notBase64 }
        defer { for k in bytes.indices { bytes[k] = 0 } }
        let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[1].isEmpty else { throw .wrongShape }
        guard let authcid = String(validating: parts[1], as: UTF8.self) else { throw .wrongShape }
        if !parts[0].isEmpty {
            guard let authzid = String(validating: parts[0], as: UTF8.self), IRCName.fold(authzid) == IRCName.fold(authcid) else { throw .identityMismatch }
        }
        return (authcid, Array(parts[2]))
    }

    /// Encodes a payload (for clients and tests).
    public static func encode(account: String, password: [UInt8]) -> String {
        base64Encode([0] + Array(account.utf8) + [0] + password)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func base64Encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            let n = UInt32(b0) << 16 | UInt32(b1) << 8 | UInt32(b2)
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(n & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Standard base64 with padding required (as RFC 4648 and the IRC SASL spec use it).
    static func base64Decode(_ chars: [UInt8]) -> [UInt8]? {
        guard chars.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 4 * 3)
        var k = 0
        while k < chars.count {
            var values = [UInt32](repeating: 0, count: 4)
            var padding = 0
            for j in 0..<4 {
                let c = chars[k + j]
                if c == UInt8(ascii: "=") {
                    guard k + 4 == chars.count, j >= 2 else { return nil }
                    padding += 1
                    continue
                }
                guard padding == 0, let v = value(c) else { return nil }
                values[j] = v
            }
            let n = values[0] << 18 | values[1] << 12 | values[2] << 6 | values[3]
            out.append(UInt8(n >> 16 & 0xff))
            if padding < 2 { out.append(UInt8(n >> 8 & 0xff)) }
            if padding < 1 { out.append(UInt8(n & 0xff)) }
            k += 4
        }
        return out
    }

    private static func value(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return UInt32(c - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt32(c - UInt8(ascii: "a") + 26)
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0") + 52)
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }
}
