/// scrypt's cost parameters: N = 2^ln (CPU and memory), r (block size), p (parallelism).
///
/// Memory per hash is about 128·r·N bytes. OWASP's equivalent rows for scrypt are N=2^17 r=8 p=1,
/// N=2^16 r=8 p=2, N=2^15 r=8 p=3, N=2^14 r=8 p=5 and N=2^13 r=8 p=10; SecureChat's default is
/// the middle row (32 MiB, about 0.25 s on this project's reference machine; see the README).
public struct ScryptParameters: Sendable, Hashable, Codable, CustomStringConvertible {
    /// log2 of N.
    public var ln: Int
    public var r: Int
    public var p: Int

    public init(ln: Int, r: Int, p: Int) {
        self.ln = ln
        self.r = r
        self.p = p
    }

    /// The default: OWASP's N=2^15, r=8, p=3 row.
    public static let `default` = ScryptParameters(ln: 15, r: 8, p: 3)

    /// OWASP's minimum rows, strongest memory first.
    public static let owaspRows: [ScryptParameters] = [
        .init(ln: 17, r: 8, p: 1), .init(ln: 16, r: 8, p: 2), .init(ln: 15, r: 8, p: 3),
        .init(ln: 14, r: 8, p: 5), .init(ln: 13, r: 8, p: 10),
    ]

    /// Limits that keep a single hash within what a server can afford and OpenSSL accepts.
    public static let lnRange = 1...22
    public static let rRange = 1...32
    public static let pRange = 1...16

    public var n: UInt64 { 1 << UInt64(ln) }

    /// Bytes of memory one hash uses.
    public var memoryBytes: UInt64 { 128 * UInt64(r) * (n + 2) + 128 * UInt64(r) * UInt64(p) }

    /// The `maxmem` to pass to OpenSSL: the hash's need plus slack. OpenSSL's default (32 MiB)
    /// would reject N=2^15 r=8, so it is always passed explicitly.
    public var maxMemory: UInt64 { memoryBytes + (1 << 20) }

    /// Whether every parameter is at least that of `other`.
    public func isAtLeast(_ other: ScryptParameters) -> Bool {
        ln >= other.ln && r >= other.r && p >= other.p
    }

    /// Whether these meet OWASP's floor: at least one of its rows in every parameter.
    public var meetsOWASPFloor: Bool {
        Self.owaspRows.contains { isAtLeast($0) }
    }

    /// Whether a record hashed with these is below `policy` (it is re-hashed at the next login).
    public func isWeaker(than policy: ScryptParameters) -> Bool {
        !isAtLeast(policy)
    }

    /// Checks the ranges; the message names the parameter and the allowed range.
    public func validate() throws(PasswordHashError) {
        if !Self.lnRange.contains(ln) { throw .invalidParameters("ln must be in \(Self.lnRange), got \(ln)") }
        if !Self.rRange.contains(r) { throw .invalidParameters("r must be in \(Self.rRange), got \(r)") }
        if !Self.pRange.contains(p) { throw .invalidParameters("p must be in \(Self.pRange), got \(p)") }
    }

    public var description: String { "ln=\(ln),r=\(r),p=\(p)" }
}
