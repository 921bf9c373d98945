import ArgumentParser
import Foundation
import Histogram
import IRC
import NIOCore
import NIOPosix

/// CHATHISTORY latency on a server whose database already holds the messages (filled by
/// `Benchmarks/history-bench.sh`): LATEST and BEFORE, one request at a time, from clients that
/// each stay within the server's per-client request budget.
struct HistoryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "CHATHISTORY LATEST * and BEFORE timestamp=… (random, within --span-days) in --room, one request at a time; p50/p99/max from request to the end of its batch, and messages per answer.")
    @OptionGroup var target: TargetOptions
    @Option(help: "The room whose history is read (the clients join it).") var room = "#history-bench"
    @Option(help: "Requests in all, half LATEST, half BEFORE.") var requests = 2000
    @Option(help: "Messages per request.") var limit = 100
    @Option(help: "Requests per client (the server allows a burst of 20 per client).") var perClient = 20
    @Option(help: "BEFORE picks a time in the last DAYS days.") var spanDays = 30.0

    func run() async throws {
        var benchTarget = try target.makeTarget()
        benchTarget.capabilities = ["batch", "server-time", "message-tags", "draft/chathistory"]
        let pool = BenchPool(target: benchTarget, threads: 1)
        defer { pool.shutdown() }
        var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000)
        var latestLatency = Histogram<UInt64>(highestTrackableValue: 60_000_000)
        var beforeLatency = Histogram<UInt64>(highestTrackableValue: 60_000_000)
        var counts: [Int] = []
        var failures: [String] = []
        let clients = (requests + perClient - 1) / perClient
        let now = Date().timeIntervalSince1970
        var done = 0
        for c in 0..<clients {
            let connection = try await pool.connect("\(target.accountPrefix)\(c)").get()
            try await pool.join(connection, room).get()
            for _ in 0..<min(perClient, requests - done) {
                let latest = done % 2 == 0
                let line: String
                if latest {
                    line = "CHATHISTORY LATEST \(room) * \(limit)"
                } else {
                    let time = Date(timeIntervalSince1970: now - Double.random(in: 0..<(spanDays * 86400)))
                    line = "CHATHISTORY BEFORE \(room) timestamp=\(ServerTime.string(time)) \(limit)"
                }
                let start = nowNanos()
                let answer = try await Self.ask(line, on: connection)
                let elapsed = (nowNanos() - start) / 1000
                if let failure = answer.failure { failures.append(failure) } else { counts.append(answer.messages) }
                _ = latency.record(elapsed)
                _ = (latest ? latestLatency.record(elapsed) : beforeLatency.record(elapsed))
                done += 1
            }
            connection.0.close(promise: nil)
        }
        func p(_ h: Histogram<UInt64>, _ q: Double) -> String { ms(h.valueAtPercentile(q)) }
        report("history", target.label, [
            ("requests", "\(done)"), ("failed", "\(failures.count)"),
            ("messages_per_answer", String(format: "%.1f", Double(counts.reduce(0, +)) / Double(max(1, counts.count)))),
            ("p50_ms", p(latency, 50)), ("p99_ms", p(latency, 99)), ("max_ms", ms(latency.max)),
            ("latest_p99_ms", p(latestLatency, 99)), ("before_p99_ms", p(beforeLatency, 99)),
        ])
        if let first = failures.first { FileHandle.standardError.write(Data("first failure: \(first)\n".utf8)) }
    }

    /// Sends one request and waits for the end of its batch (or its FAIL).
    static func ask(_ line: String, on connection: (Channel, BenchConnection)) async throws -> (messages: Int, failure: String?) {
        let (channel, handler) = connection
        return try await channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: (messages: Int, failure: String?).self)
            var messages = 0
            handler.observer = { message in
                switch message.command {
                case "PRIVMSG", "NOTICE": messages += 1
                case "BATCH" where message.parameters.first?.hasPrefix("-") == true:
                    handler.observer = nil
                    promise.succeed((messages, nil))
                case "FAIL":
                    handler.observer = nil
                    promise.succeed((0, message.parameters.joined(separator: " ")))
                default: break
                }
            }
            handler.send(line + "\r\n")
            return promise.futureResult
        }.get()
    }
}
