import ChatSupport
import ArgumentParser
import ChatAuth
import Foundation

@main
struct ChatBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-bench",
        abstract: "Measure SecureChat on this machine; results as a table and one JSON line per measurement.",
        discussion: """
        Every run is bounded in clients and time, and talks only to loopback. The load scenarios \
        expect a running server and, with login (the default), accounts PREFIX0…PREFIXn sharing one \
        password (Benchmarks/run-chat-bench.sh prepares all of that for SecureChat, ngIRCd and \
        InspIRCd). Each prints a small table and one JSON line.
        """,
        subcommands: [ConnectBench.self, IdleBench.self, FanoutBench.self, StormBench.self, SoakBench.self, HashingBench.self, HistoryBench.self]
    )
}

/// Password hashing: how many logins per second this machine can check at given scrypt parameters,
/// and what the bounded worker pool costs compared with calling EVP_PBE_scrypt directly.
struct HashingBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hashing",
        abstract: "scrypt hashes per second: direct EVP_PBE_scrypt on N threads vs the same work through ChatAuth's WorkerPool.")

    @Option(help: "log2 of scrypt's N.") var ln = ScryptParameters.default.ln
    @Option(help: "scrypt's r.") var r = ScryptParameters.default.r
    @Option(help: "scrypt's p.") var p = ScryptParameters.default.p
    @Option(help: "Threads for both variants (default: the number of cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Hashes per variant per round.") var count = 40
    @Option(help: "Rounds; the variants alternate within each.") var rounds = 2

    func run() async throws {
        let parameters = ScryptParameters(ln: ln, r: r, p: p)
        try parameters.validate()
        let hash = try PasswordHash.make(password: Password("benchmark password"), parameters: parameters)
        var direct: [Double] = []
        var pooled: [Double] = []
        for round in 0..<rounds {
            let order = round % 2 == 0 ? ["direct", "pool"] : ["pool", "direct"]
            for variant in order {
                let rate = variant == "direct" ? directRate(hash) : try await poolRate(hash)
                if variant == "direct" { direct.append(rate) } else { pooled.append(rate) }
                print("{\"scenario\":\"hashing\",\"variant\":\"\(variant)\",\"parameters\":\"\(parameters)\",\"threads\":\(threads),\"hashes\":\(count),\"per_second\":\(String(format: "%.2f", rate))}")
            }
        }
        let d = direct.reduce(0, +) / Double(direct.count)
        let q = pooled.reduce(0, +) / Double(pooled.count)
        print("")
        print("| scrypt \(parameters), \(threads) threads | hashes/s | ms per hash per thread |")
        print("|---|---|---|")
        print("| EVP_PBE_scrypt directly | \(String(format: "%.2f", d)) | \(String(format: "%.0f", Double(threads) * 1000 / d)) |")
        print("| through WorkerPool (verify) | \(String(format: "%.2f", q)) | \(String(format: "%.0f", Double(threads) * 1000 / q)) |")
        print("| pool / direct | \(String(format: "%.3f", q / d)) | |")
    }

    /// `threads` threads each hashing `count / threads` times.
    func directRate(_ hash: PasswordHash) -> Double {
        let start = DispatchTime.now()
        let perThread = max(1, count / threads)
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<perThread {
                _ = try? PasswordHash.derive(password: Array("benchmark password".utf8), salt: hash.salt, parameters: hash.parameters)
            }
        }
        return Double(perThread * threads) / seconds(since: start)
    }

    /// `count` verifications submitted at once to a pool of `threads`.
    func poolRate(_ hash: PasswordHash) async throws -> Double {
        let pool = WorkerPool(threads: threads, queueLimit: count)
        defer { pool.shutdown() }
        let password = Password("benchmark password")
        let start = DispatchTime.now()
        let total = max(1, count / threads) * threads
        let ok = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<total {
                group.addTask { try await pool.run { (try? hash.verify(password)) ?? false } }
            }
            var ok = 0
            for try await valid in group where valid { ok += 1 }
            return ok
        }
        guard ok == total else { throw ValidationError("only \(ok) of \(total) verifications succeeded") }
        return Double(total) / seconds(since: start)
    }

    func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }
}
