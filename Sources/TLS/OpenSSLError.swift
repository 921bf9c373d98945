import COpenSSL

/// One entry of OpenSSL's thread-local error queue: the packed code and OpenSSL's own text.
///
/// The text is what `ERR_error_string_n` prints, for example
/// `error:0A000086:SSL routines::certificate verify failed`; `reason` is its last part.
public struct OpenSSLError: Sendable, Hashable, CustomStringConvertible {
    /// OpenSSL's packed error code.
    public let code: UInt
    /// The full text from `ERR_error_string_n`.
    public let text: String

    /// The reason part of `text` ("certificate verify failed").
    public var reason: String {
        if let lastColon = text.lastIndex(of: ":") {
            return String(text[text.index(after: lastColon)...])
        }
        return text
    }

    public var description: String { text }

    /// Empties the calling thread's OpenSSL error queue and returns what was in it, oldest first.
    ///
    /// OpenSSL's error queue is thread-local: call this on the same thread, right after the failing
    /// call, with no `await` in between.
    public static func drain() -> [OpenSSLError] {
        var errors: [OpenSSLError] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            errors.append(OpenSSLError(code: code, text: String(cString: buffer)))
        }
        return errors
    }
}

extension Array where Element == OpenSSLError {
    /// The reasons joined for a message: "no such file; system lib".
    var reasons: String {
        isEmpty ? "no detail from OpenSSL" : map(\.reason).joined(separator: "; ")
    }
}
