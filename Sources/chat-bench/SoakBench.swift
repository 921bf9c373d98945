import ArgumentParser
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Open file descriptors of a process, from /proc.
func openFiles(pid: Int32) -> Int? {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
}

struct SoakBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Clients join, chat, part and reconnect for --duration seconds while --stayers chat the whole time; afterwards the server's memory and file descriptors must return near their baseline, and no message among the stayers may be lost.")
    @OptionGroup var target: TargetOptions
    @Option(help: "The server's process id.") var serverPid: Int32
    @Option(help: "Seconds of churn.") var duration = 60.0
    @Option(help: "Clients connected all along, chatting in #soak.") var stayers = 10
    @Option(help: "Clients coming and going at the same time.") var churners = 50
    @Option(help: "Messages per second among the stayers.") var rate = 50.0
    @Option(help: "Allowed growth of resident memory after the soak, in KiB.") var memoryMargin = 16384
    @Option(help: "Allowed growth of open file descriptors after the soak.") var fdMargin = 5

    func run() async throws {
        let pool = BenchPool(target: try target.makeTarget(), threads: target.threads)
        defer { pool.shutdown() }
        // Warm up with one round of the same churn, so the baseline is the allocator's steady state.
        await churn(pool, seconds: min(5, duration / 4), first: stayers)
        try await Task.sleep(nanoseconds: 2_000_000_000)
        guard let baseRSS = residentKiB(pid: serverPid), let baseFDs = openFiles(pid: serverPid) else {
            throw ValidationError("no process \(serverPid): pass the server's PID with --server-pid")
        }
        let setup = await connectMany(pool, count: stayers, inflight: stayers, keep: true) { _ in "#soak" }
        guard setup.failures.isEmpty else { throw BenchError("stayers failed: \(setup.failures.first!)") }
        try await Task.sleep(nanoseconds: 500_000_000)
        try pool.reset()
        let stopped = NIOLockedValueBox(false)
        let sent = NIOLockedValueBox(0)
        let chatter = Task {
            var seq = 0
            var next = nowNanos()
            while !stopped.withLockedValue({ $0 }) {
                let channel = setup.connections[seq % setup.connections.count].0
                channel.writeAndFlush(channel.allocator.buffer(string: "PRIVMSG #soak :B \(nowNanos()) \(seq)\r\n"), promise: nil)
                seq += 1
                next += UInt64(1e9 / rate)
                let now = nowNanos()
                if now < next { try? await Task.sleep(nanoseconds: next - now) }
            }
            sent.withLockedValue { $0 += seq }
        }
        let churned = await churn(pool, seconds: duration, first: stayers)
        stopped.withLockedValue { $0 = true }
        await chatter.value
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let stats = try pool.collect()
        let sentTotal = sent.withLockedValue { $0 }
        let expected = sentTotal * (stayers - 1)
        for (channel, _) in setup.connections { try? await channel.close() }
        try await Task.sleep(nanoseconds: 3_000_000_000)
        let endRSS = residentKiB(pid: serverPid) ?? 0
        let endFDs = openFiles(pid: serverPid) ?? 0
        let lost = max(0, expected - stats.received)
        let ok = lost == 0 && endRSS - baseRSS <= memoryMargin && endFDs - baseFDs <= fdMargin
        report("soak", target.label, [
            ("seconds", String(format: "%.0f", duration)), ("sessions_churned", "\(churned)"), ("stayer_messages", "\(sentTotal)"),
            ("delivered", "\(stats.received)"), ("lost", "\(lost)"),
            ("rss_baseline_kib", "\(baseRSS)"), ("rss_after_kib", "\(endRSS)"), ("rss_growth_kib", "\(endRSS - baseRSS)"),
            ("fds_baseline", "\(baseFDs)"), ("fds_after", "\(endFDs)"), ("result", ok ? "pass" : "FAIL"),
        ])
        if !ok { throw ExitCode(1) }
    }

    /// Churners connect, join a room, say something, part and leave, over and over.
    @discardableResult
    func churn(_ pool: BenchPool, seconds: Double, first: Int) async -> Int {
        let end = nowNanos() + UInt64(seconds * 1e9)
        let count = NIOLockedValueBox(0)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<churners {
                group.addTask {
                    var round = 0
                    while nowNanos() < end {
                        round += 1
                        guard let connection = try? await pool.connect("\(pool.target.accountPrefix)\(first + worker)").get() else {
                            try? await Task.sleep(nanoseconds: 100_000_000)
                            continue
                        }
                        let room = "#churn\(worker % 5)"
                        try? await pool.join(connection, room).get()
                        let channel = connection.0
                        try? await channel.writeAndFlush(channel.allocator.buffer(string: "PRIVMSG \(room) :round \(round)\r\nPART \(room)\r\nQUIT :bye\r\n"))
                        try? await channel.closeFuture.get()
                        count.withLockedValue { $0 += 1 }
                    }
                }
            }
        }
        return count.withLockedValue { $0 }
    }
}
