import ChatSupport

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
        guard var bytes = Base64.decode(encoded, padded: true) else { throw .notBase64 }
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
        Base64.encode([0] + Array(account.utf8) + [0] + password, padded: true)
    }
}
