import NIOConcurrencyHelpers

/// Counts connections in total and per address, so that limits are enforced when a TCP
/// connection is accepted — before a TLS handshake costs anything.
// @unchecked Sendable: `total` and `perAddress` are only touched with `lock` held.
public final class ConnectionLimiter: @unchecked Sendable {
    private let lock = NIOLock()
    private var total = 0
    private var perAddress: [String: Int] = [:]
    public let maximum: Int
    public let maximumPerAddress: Int

    public init(maximum: Int, maximumPerAddress: Int) {
        self.maximum = maximum
        self.maximumPerAddress = maximumPerAddress
    }

    public enum Verdict: Equatable { case admitted, serverFull, addressFull }

    public func admit(_ address: String) -> Verdict {
        lock.withLock {
            if total >= maximum { return .serverFull }
            if perAddress[address, default: 0] >= maximumPerAddress { return .addressFull }
            total += 1
            perAddress[address, default: 0] += 1
            return .admitted
        }
    }

    public func release(_ address: String) {
        lock.withLock {
            total -= 1
            if let count = perAddress[address] {
                perAddress[address] = count > 1 ? count - 1 : nil
            }
        }
    }

    public var current: Int { lock.withLock { total } }
}
