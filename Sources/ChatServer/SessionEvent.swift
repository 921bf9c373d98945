/// Why a connection must end, sent by `ConnectionGuard` (keepalive, flood control, the send
/// queue) down the pipeline to `ClientConnection`, which closes with the reason.
public enum SessionEvent: Sendable, Equatable {
    /// No successful login within the registration timeout.
    case registrationTimedOut(seconds: Double)
    /// No answer to PING within the ping timeout.
    case pingTimedOut(seconds: Double)
    /// The client sent far more lines than flood control lets it queue.
    case excessFlood
    /// The client stopped reading: its send queue stayed above the limit.
    case sendQueueExceeded
    /// The server is shutting down.
    case shutdown

    /// The reason given to the client (`ERROR`) and to its rooms (`QUIT`).
    public var reason: String {
        switch self {
        case let .registrationTimedOut(seconds): return "Registration timed out: log in within \(Self.format(seconds)) seconds"
        case let .pingTimedOut(seconds): return "Ping timeout: \(Self.format(seconds)) seconds"
        case .excessFlood: return "Excess flood"
        case .sendQueueExceeded: return "SendQ exceeded"
        case .shutdown: return "Server shutting down"
        }
    }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds))" : "\(seconds)"
    }
}

/// Fired by `ClientConnection` from the head of the pipeline when registration completes, so the
/// guard's keepalive switches from the registration timeout to PING.
public struct SessionRegistered: Sendable, Equatable {
    public init() {}
}

/// Flood control's request to stop or restart reading from the socket; `ClientConnection`, at the
/// tail of the pipeline where `read` requests start, carries it out.
public enum ReadPressure: Sendable, Equatable {
    case pause, resume
}
