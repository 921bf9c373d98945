// tls-bench: SecureChat's TLSHandler (system OpenSSL) against swift-nio-ssl's NIOSSLHandler
// (BoringSSL) in the same NIO echo pipeline with the same ECDSA P-256 certificate, alternating
// in one run. Loopback only; every phase bounded in count and time.
//
//   tls-bench [--handshakes N] [--megabytes N] [--connections N] [--rounds N]
//   tls-bench serve --impl ours|niossl|plain --dir DIR     (child process for the memory figure)
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import TLS

enum Impl: String, CaseIterable {
    case ours, niossl, plain
}

struct Certs {
    let dir: String
    var ca: String { dir + "/ca.crt" }
    var cert: String { dir + "/server.crt" }
    var key: String { dir + "/server.key" }
}

/// Both libraries' contexts for one side, built once.
struct Contexts: @unchecked Sendable {
    let oursServer: TLS.TLSContext
    let oursClient: TLS.TLSContext
    let nioServer: NIOSSLContext
    let nioClient: NIOSSLContext

    init(_ certs: Certs) throws {
        oursServer = try TLS.TLSContext(configuration: .server(certificateChainFile: certs.cert, privateKeyFile: certs.key))
        oursClient = try TLS.TLSContext(configuration: .client(trust: .caFile(certs.ca)))
        var server = NIOSSL.TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certs.cert).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certs.key, format: .pem)))
        server.minimumTLSVersion = .tlsv12
        nioServer = try NIOSSLContext(configuration: server)
        var client = NIOSSL.TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .file(certs.ca)
        client.minimumTLSVersion = .tlsv12
        nioClient = try NIOSSLContext(configuration: client)
    }

    func addServerHandler(_ impl: Impl, to channel: Channel) throws {
        switch impl {
        case .ours: try channel.pipeline.syncOperations.addHandler(TLSHandler(context: oursServer))
        case .niossl: try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: nioServer))
        case .plain: break
        }
    }

    func addClientHandler(_ impl: Impl, to channel: Channel) throws {
        switch impl {
        case .ours: try channel.pipeline.syncOperations.addHandler(TLSHandler(context: oursClient, serverName: "localhost"))
        case .niossl: try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: nioClient, serverHostname: "localhost"))
        case .plain: break
        }
    }
}

/// Echoes on the server; on the client, completes promises on handshake and after `expect` bytes.
final class Probe: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    let echo: Bool
    let ready: EventLoopPromise<Void>
    var expect: Int = 0
    var received = 0
    var done: EventLoopPromise<Void>?
    let isPlain: Bool

    init(echo: Bool, eventLoop: EventLoop, plain: Bool) {
        self.echo = echo
        self.ready = eventLoop.makePromise()
        self.isPlain = plain
    }

    func channelActive(context: ChannelHandlerContext) {
        if isPlain { ready.succeed(()) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSEvent || event is TLSUserEvent { ready.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if echo {
            context.writeAndFlush(data, promise: nil)
            return
        }
        received += buffer.readableBytes
        if received >= expect, let done {
            self.done = nil
            done.succeed(())
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        ready.fail(error)
        done?.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ready.fail(ChannelError.ioOnClosedChannel)
        done?.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)

func startServer(_ impl: Impl, contexts: Contexts, echo: Bool, sink: Probe? = nil) throws -> Channel {
    try ServerBootstrap(group: group)
        .serverChannelOption(.backlog, value: 4096)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try contexts.addServerHandler(impl, to: channel)
                let probe = sink ?? Probe(echo: echo, eventLoop: channel.eventLoop, plain: impl == .plain)
                try channel.pipeline.syncOperations.addHandler(probe)
            }
        }
        .bind(host: "127.0.0.1", port: 0).wait()
}

func connect(_ impl: Impl, contexts: Contexts, port: Int) -> EventLoopFuture<(Channel, Probe)> {
    let eventLoop = group.next()
    let probe = Probe(echo: false, eventLoop: eventLoop, plain: impl == .plain)
    return ClientBootstrap(group: eventLoop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try contexts.addClientHandler(impl, to: channel)
                try channel.pipeline.syncOperations.addHandler(probe)
            }
        }
        .connect(host: "127.0.0.1", port: port)
        .flatMap { channel in probe.ready.futureResult.map { (channel, probe) } }
}

/// Full handshakes per second, client and server in this process, `inflight` at a time.
func handshakeRate(_ impl: Impl, contexts: Contexts, count: Int, inflight: Int = 32) throws -> Double {
    let server = try startServer(impl, contexts: contexts, echo: true)
    defer { try? server.close().wait() }
    let port = server.localAddress!.port!
    let start = DispatchTime.now()
    let semaphore = DispatchSemaphore(value: inflight)
    let finished = DispatchGroup()
    let failures = ManagedAtomicCounter()
    for _ in 0..<count {
        semaphore.wait()
        finished.enter()
        connect(impl, contexts: contexts, port: port).flatMap { channel, _ in channel.close() }
            .whenComplete { result in
                if case .failure = result { failures.increment() }
                semaphore.signal()
                finished.leave()
            }
    }
    guard finished.wait(timeout: .now() + 300) == .success else { fatalError("handshakes did not finish in 300 s") }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    if failures.value > 0 { fatalError("\(failures.value) handshakes failed") }
    return Double(count) / seconds
}

/// MB/s of application data from client to server through one connection.
func throughput(_ impl: Impl, contexts: Contexts, megabytes: Int) throws -> Double {
    let total = megabytes * 1024 * 1024
    let sinkLoop = group.next()
    let sink = Probe(echo: false, eventLoop: sinkLoop, plain: impl == .plain)
    sink.expect = total
    let done = sinkLoop.makePromise(of: Void.self)
    sink.done = done
    let server = try ServerBootstrap(group: sinkLoop)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try contexts.addServerHandler(impl, to: channel)
                try channel.pipeline.syncOperations.addHandler(sink)
            }
        }
        .bind(host: "127.0.0.1", port: 0).wait()
    defer { try? server.close().wait() }
    let (channel, _) = try connect(impl, contexts: contexts, port: server.localAddress!.port!).wait()
    let chunk = channel.allocator.buffer(bytes: [UInt8](repeating: 0x5a, count: 64 * 1024))
    let start = DispatchTime.now()
    try channel.eventLoop.submit {
        var sent = 0
        func pump() {
            while sent < total {
                sent += chunk.readableBytes
                let future = channel.write(chunk)
                if sent % (1024 * 1024) == 0 {
                    channel.flush()
                    // Window of 4 MiB in flight: wait for this write before continuing.
                    if sent % (4 * 1024 * 1024) == 0 {
                        future.whenComplete { _ in pump() }
                        return
                    }
                }
            }
            channel.flush()
        }
        pump()
    }.wait()
    guard (try? done.futureResult.wait()) != nil else { fatalError("throughput transfer failed") }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    try channel.close().wait()
    return Double(total) / 1_000_000 / seconds
}

/// Resident memory per idle connection of a server in a child process, after `count` clients
/// completed a handshake and one echo each. Returns (KiB per connection, RSS before, RSS after).
func idleMemory(_ impl: Impl, contexts: Contexts, certs: Certs, count: Int) throws -> (Double, Int, Int) {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    child.arguments = ["serve", "--impl", impl.rawValue, "--dir", certs.dir]
    let pipe = Pipe()
    child.standardOutput = pipe
    try child.run()
    defer { child.terminate(); child.waitUntilExit() }
    var line = ""
    while !line.hasSuffix("\n") {
        let byte = pipe.fileHandleForReading.readData(ofLength: 1)
        if byte.isEmpty { fatalError("server child exited") }
        line += String(decoding: byte, as: UTF8.self)
    }
    let port = Int(line.split(separator: " ")[1].trimmingCharacters(in: .whitespacesAndNewlines))!
    Thread.sleep(forTimeInterval: 0.5)
    let before = rssKiB(pid: child.processIdentifier)
    // Same client for every server: ours for the TLS servers, plain for the plain one.
    let clientImpl: Impl = impl == .plain ? .plain : .ours
    var channels: [Channel] = []
    let batch = 100
    var opened = 0
    while opened < count {
        let n = min(batch, count - opened)
        let futures = (0..<n).map { _ in
            connect(clientImpl, contexts: contexts, port: port).flatMap { channel, probe -> EventLoopFuture<Channel> in
                probe.expect = 6
                let done = channel.eventLoop.makePromise(of: Void.self)
                probe.done = done
                return channel.writeAndFlush(channel.allocator.buffer(string: "hello\n")).flatMap { done.futureResult }.map { channel }
            }
        }
        for future in futures { channels.append(try future.wait()) }
        opened += n
    }
    Thread.sleep(forTimeInterval: 2)
    let after = rssKiB(pid: child.processIdentifier)
    for channel in channels { channel.close(promise: nil) }
    return (Double(after - before) / Double(count), before, after)
}

func rssKiB(pid: Int32) -> Int {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
    }
    return 0
}

final class ManagedAtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

// MARK: Command line

func option(_ name: String, default value: Int) -> Int {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count, let v = Int(args[i + 1]) { return v }
    return value
}

func stringOption(_ name: String) -> String? {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    return nil
}

if CommandLine.arguments.contains("--help") {
    print("""
    tls-bench: SecureChat's TLSHandler (OpenSSL) vs swift-nio-ssl's NIOSSLHandler (BoringSSL), side by side.
      --handshakes N    full handshakes per implementation per round (default 2000)
      --megabytes N     MiB sent through one connection per round (default 512)
      --connections N   idle connections held by a server child for the memory figure (default 5000)
      --rounds N        rounds; implementations alternate within each (default 2)
      --only handshakes|throughput|memory   one measurement only (for profiling)
      --impl ours|niossl                    one implementation only (for profiling)
      --default-malloc  keep glibc's default trim/mmap thresholds (see BENCHMARKS.md)
    Prints a Markdown table and one JSON line per measurement.
    """)
    exit(0)
}

if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "serve" {
    if !CommandLine.arguments.contains("--default-malloc") {
        MallocTuning.apply()
    }
    let impl = Impl(rawValue: stringOption("--impl") ?? "ours")!
    let certs = Certs(dir: stringOption("--dir")!)
    let contexts = try Contexts(certs)
    let server = try startServer(impl, contexts: contexts, echo: true)
    print("PORT \(server.localAddress!.port!)")
    fflush(nil)
    try server.closeFuture.wait()
    exit(0)
}

// glibc returns freed heap memory to the kernel eagerly (128 KiB trim threshold), so a bulk
// transfer page-faults on fresh pages for every buffer. Servers usually raise these; set the same
// process-wide values for both implementations (`--default-malloc` measures without them).
if !CommandLine.arguments.contains("--default-malloc") {
    MallocTuning.apply()
}

let handshakes = option("--handshakes", default: 2000)
let megabytes = option("--megabytes", default: 512)
let connections = option("--connections", default: 5000)
let rounds = option("--rounds", default: 2)

let dir = NSTemporaryDirectory() + "tls-bench-\(getpid())"
let certs = Certs(dir: dir)
try DevelopmentCertificates(directory: dir).create()
let contexts = try Contexts(certs)
defer { try? FileManager.default.removeItem(atPath: dir) }

var results: [String: [Impl: [Double]]] = [:]
@MainActor func record(_ metric: String, _ impl: Impl, _ value: Double, extra: String = "") {
    results[metric, default: [:]][impl, default: []].append(value)
    print("{\"metric\":\"\(metric)\",\"impl\":\"\(impl.rawValue)\",\"value\":\(String(format: "%.2f", value))\(extra)}")
    fflush(nil)
}

// Warm-up (page in code, fill allocator caches).
_ = try handshakeRate(.ours, contexts: contexts, count: 100)
_ = try handshakeRate(.niossl, contexts: contexts, count: 100)

let only = stringOption("--only")
let onlyImpl = stringOption("--impl").flatMap(Impl.init(rawValue:))
for round in 0..<rounds {
    var order: [Impl] = round % 2 == 0 ? [.ours, .niossl] : [.niossl, .ours]
    if let onlyImpl { order = [onlyImpl] }
    if only == nil || only == "handshakes" {
        for impl in order { record("handshakes_per_s", impl, try handshakeRate(impl, contexts: contexts, count: handshakes)) }
    }
    if only == nil || only == "throughput" {
        for impl in order { record("throughput_MB_s", impl, try throughput(impl, contexts: contexts, megabytes: megabytes)) }
    }
    for impl in order + [.plain] where only == nil || only == "memory" {
        let (perConnection, before, after) = try idleMemory(impl, contexts: contexts, certs: certs, count: connections)
        record("idle_KiB_per_conn", impl, perConnection, extra: ",\"rss_before_kib\":\(before),\"rss_after_kib\":\(after),\"connections\":\(connections)")
    }
}

func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(max(values.count, 1)) }
print("")
print("| metric | SecureChat TLSHandler (\(OpenSSLLibrary.version)) | NIOSSLHandler (BoringSSL) | ratio ours/NIOSSL | plain TCP (NIO alone) |")
print("|---|---|---|---|---|")
for metric in ["handshakes_per_s", "throughput_MB_s", "idle_KiB_per_conn"] {
    let ours = mean(results[metric]?[.ours] ?? [])
    let nio = mean(results[metric]?[.niossl] ?? [])
    let plain = results[metric]?[.plain].map { String(format: "%.1f", mean($0)) } ?? "–"
    let oursAll = (results[metric]?[.ours] ?? []).map { String(format: "%.1f", $0) }.joined(separator: ", ")
    let nioAll = (results[metric]?[.niossl] ?? []).map { String(format: "%.1f", $0) }.joined(separator: ", ")
    print("| \(metric) | \(String(format: "%.1f", ours)) (\(oursAll)) | \(String(format: "%.1f", nio)) (\(nioAll)) | \(String(format: "%.2f", ours / nio)) | \(plain) |")
}
