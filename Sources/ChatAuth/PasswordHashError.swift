/// Why a password hash could not be made, read or checked.
public enum PasswordHashError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stored hash is not a valid `$scrypt$ln=…,r=…,p=…$salt$hash` string; `reason` says which part.
    case malformed(reason: String)
    /// Parameters out of range.
    case invalidParameters(String)
    /// OpenSSL refused to hash (usually a memory limit); carries OpenSSL's reason.
    case hashingFailed(String)
    /// The system's random generator failed.
    case randomFailed

    public var description: String {
        switch self {
        case let .malformed(reason): return "malformed password hash: \(reason)"
        case let .invalidParameters(message): return "invalid scrypt parameters: \(message)"
        case let .hashingFailed(reason): return "scrypt failed: \(reason)"
        case .randomFailed: return "the system's random generator failed"
        }
    }
}
