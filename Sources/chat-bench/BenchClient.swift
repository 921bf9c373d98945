import ChatSupport
import ChatAuth
import Dispatch
import Foundation
import Histogram
import IRC
import IRCFraming
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TLS

/// Where a benchmark connects and how it logs in.
struct BenchTarget: Sendable {
    var host: String
    var port: Int
    var context: TLSContext
    var serverName: String
    /// SASL PLAIN with `password` (SecureChat); false for servers without accounts (the anchors).
    var login: Bool
    var password: String
    var accountPrefix: String
    /// Capabilities asked for with sasl (the history scenario's chathistory and batch).
    var capabilities: [String] = []
    /// IRC over WebSocket (SecureChat's web transport) instead of IRC over TLS.
    var websocket = false
}

/// Latency and counters for the connections of one event loop: touched only on that loop, so
/// recording needs no lock; merged at the end.
final class LoopStats: @unchecked Sendable {
    var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000)  // microseconds
    var received = 0
    var disconnects = 0
}

/// Monotonic nanoseconds, comparable across processes on one machine.
@inline(__always) func nowNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// One benchmark connection: registers (with SASL PLAIN or without), answers PING, and on each
/// relayed PRIVMSG whose text starts with "B <nanos> " records the delivery latency.
// @unchecked Sendable: loop-bound: its vars are touched only on its channel's event loop (joins
// and sends are submitted to that loop).
final class BenchConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = InboundLine
    typealias OutboundOut = ByteBuffer

    let nick: String
    let target: BenchTarget
    let registered: EventLoopPromise<Void>
    var joined: EventLoopPromise<Void>?
    /// Rooms whose end of NAMES came: a server that rejoins an account's rooms at login (as
    /// SecureChat does with history on) ignores the JOIN that follows.
    var rooms: Set<String> = []
    let stats: LoopStats
    private var login: SASLClientLogin?
    /// Sees every message that is not a timestamped relay (set and called on the channel's loop).
    var observer: ((IRCMessage) -> Void)?
    private var context: ChannelHandlerContext?
    private var done = false

    init(nick: String, target: BenchTarget, eventLoop: EventLoop, stats: LoopStats) {
        self.nick = nick
        self.target = target
        self.login = target.login ? SASLClientLogin(account: nick, password: Array(target.password.utf8), capabilities: target.capabilities, pipelined: true) : nil
        self.registered = eventLoop.makePromise()
        self.stats = stats
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSEvent {
            if let login {
                send(login.opening.map { $0 + "\r\n" }.joined())
            } else {
                send("NICK \(nick)\r\nUSER \(nick) 0 * :\(nick)\r\n")
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func send(_ text: String) {
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: text)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case let .line(line) = unwrapInboundIn(data) else { return }
        // Hot path: relayed messages, recognised without a full parse, over raw bytes (a generic
        // `firstRange(of:)` here once cost most of this tool's CPU, measuring itself).
        let timestamp: UInt64? = line.withUnsafeReadableBytes { bytes in
            guard let start = Self.endOfMarker(in: bytes) else { return nil }
            var value: UInt64 = 0
            var i = start
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                value = value &* 10 &+ UInt64(bytes[i] - 0x30)
                i += 1
            }
            return value
        }
        if let timestamp {
            let now = nowNanos()
            stats.received += 1
            if now > timestamp { _ = stats.latency.record((now - timestamp) / 1000) }
            return
        }
        let view = line.readableBytesView
        guard let message = try? IRCMessage.parse(view, maximumTagBytes: 8191, maximumLineBytes: 1 << 16) else { return }
        observer?(message)
        switch message.command {
        case "PING":
            send("PONG :\(message.parameters.first ?? "")\r\n")
            return
        case "366":
            if message.parameters.count > 1 { rooms.insert(message.parameters[1].lowercased()) }
            joined?.succeed(())
            joined = nil
            return
        default:
            break
        }
        if login != nil {
            // SecureChat and other SASL servers: the shared client login decides.
            switch login!.receive(message) {
            case .wait: break
            case let .send(lines): send(lines.map { $0 + "\r\n" }.joined())
            case .welcome: registered.succeed(())
            case let .failed(failure): registered.fail(BenchError("\(nick): login failed: \(failure)"))
            }
            return
        }
        switch message.command {
        case "001":
            registered.succeed(())
        case "464", "433", "432", "465":
            registered.fail(BenchError("\(nick): \(message.command) \(message.parameters.last ?? "")"))
        case "ERROR":
            registered.fail(BenchError("\(nick): ERROR \(message.parameters.first ?? "")"))
        default:
            break
        }
    }

    /// The index just past the first " :B " in `bytes`, if there is one.
    @inline(__always)
    static func endOfMarker(in bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var i = 0
        while i <= bytes.count - 4 {
            if bytes[i] == 0x20, bytes[i + 1] == 0x3a, bytes[i + 2] == 0x42, bytes[i + 3] == 0x20 { return i + 4 }
            i += 1
        }
        return nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        registered.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        registered.fail(BenchError("\(nick): connection closed"))
        joined?.fail(BenchError("\(nick): connection closed"))
        stats.disconnects += 1
        context.fireChannelInactive()
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Connects benchmark clients and keeps per-loop statistics.
// @unchecked Sendable: immutable after init (the per-loop table is filled there and only read);
// the connection counter is behind its lock; each loop's statistics are loop-bound.
final class BenchPool: @unchecked Sendable {
    let group: MultiThreadedEventLoopGroup
    let target: BenchTarget
    private var statsByLoop: [ObjectIdentifier: LoopStats] = [:]
    let loops: [EventLoop]
    private let connections = NIOLockedValueBox(0)

    /// - Parameter background: run this pool's loops at nice 19 (Linux), like the server's hashing
    ///   and handshake threads, so that their work yields to the server and to the clients that
    ///   measure: load that would come from other machines in real life. (Not SCHED_IDLE: on
    ///   Linux 6.18 it delayed other threads' wakeups by up to a scheduler tick; with real scrypt
    ///   the storm measured 1.7× with these loops at nice 19 and 5.4–6.2× at SCHED_IDLE, though
    ///   with ln=4 SCHED_IDLE did better, 11–19× against 23×; BENCHMARKS.md, "Login storm".)
    init(target: BenchTarget, threads: Int, background: Bool = false) {
        self.target = target
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        loops = Array(group.makeIterator())
        for loop in loops { statsByLoop[ObjectIdentifier(loop)] = LoopStats() }
        if background {
            for loop in loops { try? loop.submit { WorkerPool.moveCurrentThreadToBackground() }.wait() }
        }
    }

    /// The loopback address client number `n` connects from, when the server is on loopback:
    /// consecutive clients come from different /24 networks, as users on the Internet do (a
    /// server may share its login queue between networks, and limit connections per address).
    static func sourceAddress(_ n: Int) -> String {
        "127.\(1 + (n / 62_500) % 250).\(n % 250).\(1 + (n / 250) % 250)"
    }

    /// Connects and registers `nick`; returns the channel and its handler.
    /// - Parameter port: another port than the target's (a second node of a cluster).
    func connect(_ nick: String, port: Int? = nil) -> EventLoopFuture<(Channel, BenchConnection)> {
        let port = port ?? target.port
        let loop = group.next()
        let handler = BenchConnection(nick: nick, target: target, eventLoop: loop, stats: statsByLoop[ObjectIdentifier(loop)]!)
        let target = self.target
        var bootstrap = ClientBootstrap(group: loop)
        if target.host.hasPrefix("127."), let source = try? SocketAddress(ipAddress: Self.sourceAddress(connections.withLockedValue { n in
            defer { n += 1 }
            return n
        }), port: 0) {
            bootstrap = bootstrap.bind(to: source)
        }
        return bootstrap
            .connectTimeout(.seconds(30))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TLSHandler(context: target.context, serverName: target.serverName, handshakeTimeout: .seconds(60)))
                    if target.websocket {
                        try channel.pipeline.syncOperations.addHandler(BenchWebSocketFraming(host: target.host, port: port))
                    } else {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder(maximumLength: 1 << 16)))
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: target.host, port: port)
            .flatMap { channel in handler.registered.futureResult.map { (channel, handler) } }
    }

    /// Joins `room` and waits for the end of NAMES.
    func join(_ connection: (Channel, BenchConnection), _ room: String) -> EventLoopFuture<Void> {
        let (channel, handler) = connection
        return channel.eventLoop.flatSubmit {
            if handler.rooms.contains(room.lowercased()) { return channel.eventLoop.makeSucceededVoidFuture() }
            let promise = channel.eventLoop.makePromise(of: Void.self)
            handler.joined = promise
            handler.send("JOIN \(room)\r\n")
            return promise.futureResult
        }
    }

    /// Merged statistics (runs a task on every loop).
    func collect() throws -> (latency: Histogram<UInt64>, received: Int, disconnects: Int) {
        var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000)
        var received = 0
        var disconnects = 0
        for loop in loops {
            let stats = statsByLoop[ObjectIdentifier(loop)]!
            let (h, r, d) = try loop.submit { (stats.latency, stats.received, stats.disconnects) }.wait()
            latency.add(h)
            received += r
            disconnects += d
        }
        return (latency, received, disconnects)
    }

    /// Clears latency and counters on every loop.
    func reset() throws {
        for loop in loops {
            let stats = statsByLoop[ObjectIdentifier(loop)]!
            try loop.submit {
                stats.latency = Histogram<UInt64>(highestTrackableValue: 120_000_000)
                stats.received = 0
                stats.disconnects = 0
            }.wait()
        }
    }

    func shutdown() { try? group.syncShutdownGracefully() }
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
func cpuSeconds(pid: Int32) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return nil }
    // After "pid (comm)": state is field 3, utime and stime are fields 14 and 15.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Busy CPU seconds of the whole machine (every process, interrupts, softirqs), from /proc/stat.
///
/// On loopback the TCP path of a segment runs in whichever process makes the kernel send it: a
/// server that leaves Nagle's algorithm on has many of its segments sent when the client's ACK
/// arrives, in the client's process, so its own CPU looks smaller than the work it causes. The
/// machine's total per delivery does not depend on who is billed.
func machineCPUSeconds() -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
          let first = stat.split(separator: "\n").first else { return nil }
    let values = first.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard values.count >= 8 else { return nil }
    // user nice system idle iowait irq softirq steal
    let busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    return busy / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds (user + system) this process has used.
func ownCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

/// Resident memory of a process, from /proc, in KiB.
func residentKiB(pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }
    return nil
}
