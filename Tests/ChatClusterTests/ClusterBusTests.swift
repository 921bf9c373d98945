import ChatSupport
import ChatTesting
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import ChatCluster

@Suite(.enabled(if: postgresPresent), .serialized) struct ClusterBusTests {
    @Test func arrayLiteralsQuoteEverything() {
        #expect(ClusterBus.arrayLiteral(["a", "b c"]) == #"{"a","b c"}"#)
        #expect(ClusterBus.arrayLiteral([#"say "hi" \ {x},y"#]) == #"{"say \"hi\" \\ {x},y"}"#)
    }

    /// A burst of events goes out in a few calls (group commit) and arrives whole, once, in the
    /// order published, whatever characters they hold; each publish completes once its event is
    /// back.
    @Test func aBurstArrivesWholeAndInOrder() async throws {
        let server = try ThrowawayPostgres.start()
        defer { server.stop() }
        let settings = ClusterSettings(node: "t", postgres: PostgresConnectionTests.settings(server))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let connection = try await PostgresConnection.connect(settings.postgres, on: loop).get()
        _ = try await Task.detached { try ClusterSchema.migrate(connection) }.value
        let received = NIOLockedValueBox<[String]>([])
        let bus = try await Task.detached {
            try ClusterBus.start(settings, on: loop, report: { _ in }) { payload in received.withLockedValue { $0.append(payload) } }
        }.value
        let payloads = (0..<300).map { "1 test \($0) \"quoted\" \\back\\slash {brace},comma\nline two é ✓" }
        let futures = payloads.map { bus.publish($0) }
        // Each publisher hears back only once its event has come back through the listener.
        for (i, future) in futures.enumerated() {
            try await future.get()
            #expect(received.withLockedValue { $0.count } > i, "event \(i) was confirmed before it came back")
        }
        #expect(received.withLockedValue { $0 } == payloads)
        // Fewer transactions than events (rows written by one transaction share its xmin).
        let counts = try await connection.query("SELECT count(*) AS events, count(DISTINCT xmin::text) AS transactions FROM securechat_events").get()
        #expect(counts.value(0, "events") == "300")
        #expect((Int(counts.value(0, "transactions") ?? "") ?? 300) < 300, "\(counts)")
        bus.stop()
        try await connection.close().get()
    }
}
