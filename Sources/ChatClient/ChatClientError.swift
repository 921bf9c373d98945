import TLS

/// Why connecting or logging in failed; each has its own exit status in `chat-client`.
public enum ChatClientError: Error, Sendable, Equatable, CustomStringConvertible {
    case connectionFailed(host: String, port: Int, reason: String)
    case tls(TLSError)
    case wrongPassword
    case accountLocked(String)
    case serverBusy(String)
    case rateLimited(String)
    case loginRefused(String)
    case disconnected(String)
    case timedOut(String)

    public var description: String {
        switch self {
        case let .connectionFailed(host, port, reason):
            return "cannot connect to \(host):\(port): \(reason) — is the server running, and are the host and port right?"
        case let .tls(error):
            return "\(error)"
        case .wrongPassword:
            return "login failed: wrong account name or password"
        case let .accountLocked(text):
            return "login refused: \(text)"
        case let .serverBusy(text):
            return "login refused: \(text)"
        case let .rateLimited(text):
            return "login refused: \(text)"
        case let .loginRefused(text):
            return "login refused: \(text)"
        case let .disconnected(reason):
            return "disconnected by the server: \(reason)"
        case let .timedOut(what):
            return "timed out \(what)"
        }
    }

    /// The process exit status `chat-client` uses for this error.
    public var exitStatus: Int32 {
        switch self {
        case .connectionFailed: return 3
        case .tls: return 4
        case .wrongPassword, .loginRefused: return 5
        case .accountLocked: return 6
        case .serverBusy, .rateLimited: return 7
        case .disconnected, .timedOut: return 8
        }
    }
}
