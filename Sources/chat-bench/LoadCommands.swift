import ArgumentParser
import Dispatch
import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TLS

/// Options every load scenario shares.
struct TargetOptions: ParsableArguments {
    @Option(help: "Server host (loopback only).") var host = "127.0.0.1"
    @Option(help: "Server TLS port.") var port = 21567
    @Option(help: "The server's CA certificate (PEM).") var ca = "Certs/ca.crt"
    @Option(help: "Name to verify in the server's certificate.") var serverName = "localhost"
    @Flag(inversion: .prefixedNo, help: "Log in with SASL PLAIN (SecureChat). --no-login for servers without accounts.") var login = true
    @Option(help: "Account names are PREFIX0, PREFIX1, …") var accountPrefix = "bench"
    @Option(help: "Password of every bench account.") var password = "bench-password"
    @Option(help: "Event loop threads in this load generator.") var threads = 2
    @Option(help: "A label for the JSON line (the server's name).") var label = "securechat"
    @Flag(help: "Speak IRC over WebSocket (text.ircv3.net) on the same port, as the web app does (SecureChat only).") var websocket = false

    func validateLoopback() throws {
        let allowed = ["127.0.0.1", "::1", "localhost"]
        guard allowed.contains(host) || host.hasPrefix("127.") else {
            throw ValidationError("chat-bench talks only to loopback (127.0.0.0/8, ::1, localhost), not \(host)")
        }
    }

    func makeTarget() throws -> BenchTarget {
        try validateLoopback()
        let context = try TLSContext(configuration: .client(trust: .caFile(ca)))
        var target = BenchTarget(host: host, port: port, context: context, serverName: serverName, login: login, password: password, accountPrefix: accountPrefix)
        target.websocket = websocket
        return target
    }
}

func seconds(since start: UInt64) -> Double { Double(nowNanos() - start) / 1e9 }

func ms(_ micros: UInt64) -> String { String(format: "%.2f", Double(micros) / 1000) }

/// Prints a human table row block and one JSON line.
func report(_ scenario: String, _ label: String, _ fields: [(String, String)]) {
    print("\(scenario) [\(label)]")
    for (key, value) in fields { print("  \(key.padding(toLength: 22, withPad: " ", startingAt: 0)) \(value)") }
    let json = (["\"scenario\":\"\(scenario)\"", "\"server\":\"\(label)\""] + fields.map { key, value in
        Double(value) != nil ? "\"\(key)\":\(value)" : "\"\(key)\":\"\(value)\""
    }).joined(separator: ",")
    print("{\(json)}")
    fflush(nil)
}

/// Connects clients `first..<first+count` with at most `inflight` in progress; returns the
/// connections, the time to 001 of each (µs) and the failures.
func connectMany(_ pool: BenchPool, count: Int, first: Int = 0, inflight: Int, keep: Bool, room: (@Sendable (Int) -> String?)? = nil,
                 port: (@Sendable (Int) -> Int?)? = nil) async -> (connections: [(Channel, BenchConnection)], times: Histogram<UInt64>, failures: [String]) {
    // @unchecked Sendable: lock: the connecting tasks touch its vars only with `lock` held; they
    // are read without it only after every task has ended.
    final class Shared: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
        var connections: [(Channel, BenchConnection)] = []
        var times = Histogram<UInt64>(highestTrackableValue: 600_000_000)
        var failures: [String] = []
        func take() -> Int { lock.lock(); defer { lock.unlock() }; next += 1; return next - 1 }
        func succeeded(_ elapsed: UInt64, _ connection: (Channel, BenchConnection)?) {
            lock.lock(); defer { lock.unlock() }
            _ = times.record(elapsed)
            if let connection { connections.append(connection) }
        }
        func failed(_ error: Error) { lock.lock(); defer { lock.unlock() }; failures.append("\(error)") }
    }
    let shared = Shared()
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<max(1, min(inflight, count)) {
            group.addTask {
                while true {
                    let i = shared.take()
                    if i >= count { return }
                    let nick = "\(pool.target.accountPrefix)\(first + i)"
                    let start = nowNanos()
                    do {
                        let connection = try await pool.connect(nick, port: port?(i)).get()
                        let elapsed = (nowNanos() - start) / 1000
                        if let name = room?(i) { try await pool.join(connection, name).get() }
                        shared.succeeded(elapsed, keep ? connection : nil)
                        if !keep { try? await connection.0.close() }
                    } catch {
                        shared.failed(error)
                    }
                }
            }
        }
    }
    return (shared.connections, shared.times, shared.failures)
}

struct ConnectBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "N clients do TCP + TLS + login + registration up to 001, at most --inflight at a time; rate and p50/p99 time to 001.")
    @OptionGroup var target: TargetOptions
    @Option(help: "Clients.") var clients = 1000
    @Option(help: "Connections in progress at once.") var inflight = 50
    @Option(help: "The server's process id: adds the server's CPU time per connection (from /proc/PID/stat).") var serverPid: Int32?

    func run() async throws {
        if let serverPid, cpuSeconds(pid: serverPid) == nil { throw ValidationError("no process \(serverPid): pass the server's PID with --server-pid") }
        let pool = BenchPool(target: try target.makeTarget(), threads: target.threads)
        defer { pool.shutdown() }
        let serverCPUBefore = serverPid.flatMap(cpuSeconds(pid:))
        let start = nowNanos()
        // Connections are kept until all are up, so that the server's CPU covers handshakes and
        // registrations only, not the goodbyes.
        let result = await connectMany(pool, count: clients, inflight: inflight, keep: true)
        let elapsed = seconds(since: start)
        var cpu: [(String, String)] = []
        if let before = serverCPUBefore, let serverPid, let after = cpuSeconds(pid: serverPid) {
            cpu = [("server_cpu_s", String(format: "%.3f", after - before)),
                   ("server_ms_per_connection", String(format: "%.3f", (after - before) * 1000 / Double(max(1, result.times.totalCount))))]
        }
        report("connect", target.label + (target.login ? "+login" : ""), [
            ("clients", "\(clients)"), ("inflight", "\(inflight)"), ("completed", "\(result.times.totalCount)"),
            ("failed", "\(result.failures.count)"), ("per_second", String(format: "%.1f", Double(result.times.totalCount) / elapsed)),
            ("p50_ms", ms(result.times.valueAtPercentile(50))), ("p99_ms", ms(result.times.valueAtPercentile(99))),
        ] + cpu)
        for (channel, _) in result.connections { channel.close(promise: nil) }
        if let first = result.failures.first { FileHandle.standardError.write(Data("first failure: \(first)\n".utf8)) }
    }
}

struct IdleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle",
        abstract: "N logged-in clients in rooms of --room-size, held; the server's resident memory before and after (by --server-pid), KiB per connection.")
    @OptionGroup var target: TargetOptions
    @Option(help: "Clients.") var clients = 1000
    @Option(help: "Members per room.") var roomSize = 50
    @Option(help: "Connections in progress at once.") var inflight = 50
    @Option(help: "The server's process id, for /proc/PID/status.") var serverPid: Int32
    @Option(help: "Seconds to hold the connections before measuring.") var settle = 2.0

    func run() async throws {
        guard let before = residentKiB(pid: serverPid) else { throw ValidationError("no process \(serverPid): pass the server's PID with --server-pid") }
        let pool = BenchPool(target: try target.makeTarget(), threads: target.threads)
        defer { pool.shutdown() }
        let roomSize = max(1, self.roomSize)
        let result = await connectMany(pool, count: clients, inflight: inflight, keep: true) { "#idle\($0 / roomSize)" }
        try await Task.sleep(nanoseconds: UInt64(settle * 1e9))
        let after = residentKiB(pid: serverPid) ?? 0
        let held = result.connections.count
        report("idle", target.label + (target.login ? "+login" : ""), [
            ("clients", "\(clients)"), ("held", "\(held)"), ("failed", "\(result.failures.count)"), ("room_size", "\(roomSize)"),
            ("rss_before_kib", "\(before)"), ("rss_after_kib", "\(after)"),
            ("kib_per_connection", String(format: "%.2f", Double(after - before) / Double(max(1, held)))),
        ])
        if let first = result.failures.first { FileHandle.standardError.write(Data("first failure: \(first)\n".utf8)) }
        for (channel, _) in result.connections { channel.close(promise: nil) }
    }
}

struct FanoutBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "M members in one room, S of them sending timestamped messages, paced (--rate) or saturating (--saturate); deliveries per second, p50/p99/max latency, lost messages, disconnects.")
    @OptionGroup var target: TargetOptions
    @Option(help: "Members of the room.") var members = 100
    @Option(help: "Members that send.") var senders = 10
    @Option(help: "Messages per second from all senders together (paced mode).") var rate = 200.0
    @Flag(help: "Send as fast as the server takes them (a window of --window unacknowledged writes per sender).") var saturate = false
    @Option(help: "Writes in flight per sender when saturating.") var window = 8
    @Option(help: "Seconds of sending.") var duration = 5.0
    @Option(help: "Seconds the deliveries may take to drain after the sending, before what is missing counts as lost (a cluster's saturated backlog takes longer).")
    var drainLimit = 30.0
    @Option(help: "The server's process id: adds the CPU time it used per delivery (from /proc/PID/stat) and this tool's own.") var serverPid: Int32?
    @Option(help: "Another server process whose CPU counts with the server's (a cluster's other nodes); repeat for several.") var alsoPid: [Int32] = []
    @Option(help: "Members that do not send connect to this port (a second node of a cluster; the senders use --port).") var receiverPort: Int?
    @Option(help: "A cluster's nodes as PORT,PORT,... on --host: members, senders included, connect to them in turn (instead of --port and --receiver-port).")
    var nodes: String?

    /// CPU seconds of the server and every --also-pid.
    func serverCPU() -> Double? {
        guard let serverPid, var total = cpuSeconds(pid: serverPid) else { return nil }
        for pid in alsoPid { total += cpuSeconds(pid: pid) ?? 0 }
        return total
    }

    func run() async throws {
        if let serverPid, cpuSeconds(pid: serverPid) == nil { throw ValidationError("no process \(serverPid): pass the server's PID with --server-pid") }
        for pid in alsoPid where cpuSeconds(pid: pid) == nil { throw ValidationError("no process \(pid) (--also-pid)") }
        let pool = BenchPool(target: try target.makeTarget(), threads: target.threads)
        defer { pool.shutdown() }
        let senderCount = max(1, min(self.senders, members))
        let receiverPort = self.receiverPort
        let nodes: [Int] = try nodes.map { text in
            try text.split(separator: ",").map { part -> Int in
                guard let port = Int(part), (1...65535).contains(port) else { throw ValidationError("--nodes '\(text)': expected ports like 6697,6698") }
                return port
            }
        } ?? []
        let setup = await connectMany(pool, count: members, inflight: 50, keep: true, room: { _ in "#fanout" },
                                      port: { i -> Int? in nodes.isEmpty ? (i < senderCount ? nil : receiverPort) : nodes[i % nodes.count] })
        guard setup.failures.isEmpty else { throw BenchError("setup failed: \(setup.failures.first!)") }
        try await Task.sleep(nanoseconds: 1_000_000_000)  // joins seen by everyone
        try pool.reset()
        // The senders are the first members (connections come back in completion order).
        let senderNicks = Set((0..<senderCount).map { "\(target.accountPrefix)\($0)" })
        let senders = setup.connections.filter { senderNicks.contains($0.1.nick) }
        let sent = NIOLockedValueBox(0)
        let serverCPUBefore = serverCPU()
        let machineCPUBefore = machineCPUSeconds()
        let benchCPUBefore = ownCPUSeconds()
        let start = nowNanos()
        let end = start + UInt64(duration * 1e9)
        await withTaskGroup(of: Void.self) { group in
            for (index, connection) in senders.enumerated() {
                let channel = connection.0
                let interval = Double(senders.count) / rate
                group.addTask {
                    var seq = 0
                    var next = nowNanos() + UInt64(Double(index) * interval / Double(senders.count) * 1e9)
                    while nowNanos() < end && channel.isActive {
                        if saturate {
                            var futures: [EventLoopFuture<Void>] = []
                            for _ in 0..<window {
                                futures.append(channel.writeAndFlush(channel.allocator.buffer(string: "PRIVMSG #fanout :B \(nowNanos()) \(seq)\r\n")))
                                seq += 1
                            }
                            for future in futures { try? await future.get() }
                        } else {
                            let now = nowNanos()
                            if now < next { try? await Task.sleep(nanoseconds: next - now) }
                            channel.writeAndFlush(channel.allocator.buffer(string: "PRIVMSG #fanout :B \(nowNanos()) \(seq)\r\n"), promise: nil)
                            seq += 1
                            next += UInt64(interval * 1e9)
                        }
                    }
                    sent.withLockedValue { $0 += seq }
                }
            }
        }
        let sendSeconds = seconds(since: start)
        // Let deliveries drain: stop when the count has not moved for a second (at most
        // --drain-limit seconds).
        var last = -1
        var still = 0
        for _ in 0..<max(1, Int(drainLimit * 2)) {
            let now = try pool.collect().received
            still = now == last ? still + 1 : 0
            if still >= 2 || now >= sent.withLockedValue({ $0 }) * (members - 1) { break }
            last = now
            try await Task.sleep(nanoseconds: 500_000_000)
        }
        let stats = try pool.collect()
        let sentTotal = sent.withLockedValue { $0 }
        let expected = sentTotal * (members - 1)
        let deliverSeconds = seconds(since: start)
        var cpu: [(String, String)] = []
        if let before = serverCPUBefore, let after = serverCPU() {
            // The drain's idle second is in the window: compare CPU per delivery, not cores used.
            cpu = [("server_cpu_s", String(format: "%.2f", after - before)),
                   ("server_us_per_delivery", String(format: "%.2f", (after - before) * 1e6 / Double(max(1, stats.received)))),
                   ("bench_cpu_s", String(format: "%.2f", ownCPUSeconds() - benchCPUBefore))]
        }
        if let before = machineCPUBefore, let after = machineCPUSeconds() {
            cpu.append(("machine_us_per_delivery", String(format: "%.2f", (after - before) * 1e6 / Double(max(1, stats.received)))))
        }
        report("fanout", target.label + (target.login ? "+login" : ""), [
            ("mode", saturate ? "saturate" : "paced"), ("members", "\(members)"), ("senders", "\(senders.count)"),
            ("rate", saturate ? "max" : String(format: "%.0f", rate)), ("sent", "\(sentTotal)"),
            ("sent_per_second", String(format: "%.1f", Double(sentTotal) / sendSeconds)),
            ("delivered", "\(stats.received)"), ("delivered_per_second", String(format: "%.0f", Double(stats.received) / deliverSeconds)),
            ("lost", "\(max(0, expected - stats.received))"), ("disconnects", "\(stats.disconnects)"),
            ("p50_ms", ms(stats.latency.valueAtPercentile(50))), ("p99_ms", ms(stats.latency.valueAtPercentile(99))), ("max_ms", ms(stats.latency.max)),
        ] + cpu)
        for (channel, _) in setup.connections { channel.close(promise: nil) }
    }
}


struct StormBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storm",
        abstract: "A restart stampede: N clients log in at once while K connected clients chat at a paced rate; their latency before and during the storm, and the storm's logins per second. The storm's clients run on their own event loops at nice 19, so that on a shared machine the tool's own handshakes do not count as the server's delay.")
    @OptionGroup var target: TargetOptions
    @Option(help: "Clients logging in at once.") var clients = 500
    @Option(help: "Connected clients chatting during the storm.") var chatters = 10
    @Option(help: "Messages per second among the chatters.") var rate = 50.0
    @Option(help: "Seconds of chat before the storm (the baseline).") var baseline = 3.0

    func run() async throws {
        let pool = BenchPool(target: try target.makeTarget(), threads: target.threads)
        defer { pool.shutdown() }
        let setup = await connectMany(pool, count: chatters, inflight: chatters, keep: true) { _ in "#storm" }
        guard setup.failures.isEmpty else { throw BenchError("setup failed: \(setup.failures.first!)") }
        try await Task.sleep(nanoseconds: 500_000_000)
        try pool.reset()
        let stopped = NIOLockedValueBox(false)
        let chat = Task {
            var seq = 0
            let interval = 1 / rate
            var next = nowNanos()
            while !stopped.withLockedValue({ $0 }) {
                let channel = setup.connections[seq % setup.connections.count].0
                channel.writeAndFlush(channel.allocator.buffer(string: "PRIVMSG #storm :B \(nowNanos()) \(seq)\r\n"), promise: nil)
                seq += 1
                next += UInt64(interval * 1e9)
                let now = nowNanos()
                if now < next { try? await Task.sleep(nanoseconds: next - now) }
            }
        }
        try await Task.sleep(nanoseconds: UInt64(baseline * 1e9))
        let quiet = try pool.collect()
        try pool.reset()
        let start = nowNanos()
        // The storm's clients run on their own event loops, in the background: their TLS
        // handshakes must not delay the chatters' reads or take the server's cores, or the tool
        // would measure itself (real clients would be on other machines).
        let stormPool = BenchPool(target: pool.target, threads: target.threads, background: true)
        defer { stormPool.shutdown() }
        let storm = await connectMany(stormPool, count: clients, first: chatters, inflight: clients, keep: true)
        let stormSeconds = seconds(since: start)
        // Measure the chat over at least one second, even if the storm was shorter.
        if stormSeconds < 1 { try await Task.sleep(nanoseconds: UInt64((1 - stormSeconds) * 1e9)) }
        let during = try pool.collect()
        stopped.withLockedValue { $0 = true }
        await chat.value
        report("storm", target.label + (target.login ? "+login" : ""), [
            ("clients", "\(clients)"), ("logged_in", "\(storm.times.totalCount)"), ("failed", "\(storm.failures.count)"),
            ("logins_per_second", String(format: "%.1f", Double(storm.times.totalCount) / stormSeconds)),
            ("login_p99_ms", ms(storm.times.valueAtPercentile(99))),
            ("chat_p50_ms_before", ms(quiet.latency.valueAtPercentile(50))), ("chat_p99_ms_before", ms(quiet.latency.valueAtPercentile(99))),
            ("chat_p50_ms_during", ms(during.latency.valueAtPercentile(50))), ("chat_p99_ms_during", ms(during.latency.valueAtPercentile(99))),
            ("p99_ratio", String(format: "%.2f", Double(during.latency.valueAtPercentile(99)) / Double(max(1, quiet.latency.valueAtPercentile(99))))),
        ])
        if let first = storm.failures.first { FileHandle.standardError.write(Data("first failure: \(first)\n".utf8)) }
        for (channel, _) in setup.connections + storm.connections { channel.close(promise: nil) }
    }
}

