/// What went wrong talking to PostgreSQL, said so that an operator knows where to look.
public enum PostgresError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The fields of a server's ErrorResponse or NoticeResponse.
    public struct Fields: Sendable, Equatable {
        public var severity = ""
        /// The SQLSTATE, e.g. 23505 for a unique violation.
        public var code = ""
        public var message = ""
        public var detail: String?
        public var hint: String?
        public init() {}
    }

    /// No connection could be made (address, port, refused).
    case connectFailed(String)
    /// The server said no to a query or to the login.
    case server(Fields)
    /// The login needs something this client does not do, or the password is missing.
    case authentication(String)
    /// The server does not offer TLS, or the TLS handshake failed.
    case tls(String)
    /// The connection closed (or was closed) before the answer came.
    case connectionClosed
    /// The server sent something that breaks the protocol.
    case protocolViolation(String)
    /// No answer within the time allowed.
    case timedOut(String)

    public var description: String {
        switch self {
        case let .connectFailed(reason): return "cannot connect to PostgreSQL: \(reason)"
        case let .server(fields):
            var text = "PostgreSQL: \(fields.message) (SQLSTATE \(fields.code))"
            if let detail = fields.detail { text += ": \(detail)" }
            if let hint = fields.hint { text += " — \(hint)" }
            return text
        case let .authentication(reason): return "PostgreSQL login failed: \(reason)"
        case let .tls(reason): return "TLS to PostgreSQL failed: \(reason)"
        case .connectionClosed: return "the connection to PostgreSQL closed"
        case let .protocolViolation(reason): return "PostgreSQL sent something unexpected: \(reason)"
        case let .timedOut(what): return "PostgreSQL did not answer in time: \(what)"
        }
    }

    /// The SQLSTATE of a server error, else nil.
    public var sqlState: String? {
        if case let .server(fields) = self { return fields.code }
        return nil
    }
}
