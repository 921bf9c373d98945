import ChatTesting
import Foundation
import IRC
import Testing
@testable import ChatServer

/// Sessions on different event loops reading and changing what they share at the same time:
/// capabilities (CAP REQ) while others deliver to them, JOIN/PART while others message the room,
/// WHOIS of someone going away or quitting, KICK across loops. Run under ThreadSanitizer by CI
/// (`.ci/run`); here it also checks that the shared state ends consistent.
@Suite struct SessionRaceTests {
    static let people = (0..<8).map { ("racer\($0)", "password \($0)") }

    @Test func capJoinWhoisAwayKickAndQuitAcrossLoops() async throws {
        let server = try await TestServer.start(accounts: Self.people)
        let rounds = 25
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, person) in Self.people.enumerated() {
                group.addTask {
                    var client = try await server.loggedIn(person.0, person.1)
                    let other = Self.people[(index + 1) % Self.people.count].0
                    for round in 0..<rounds {
                        let lines = [
                            "CAP REQ :\(round % 2 == 0 ? "" : "-")extended-join \(round % 2 == 0 ? "" : "-")away-notify",
                            "JOIN #race,#race\(index % 3)",
                            "PRIVMSG #race :round \(round) from \(person.0)",
                            "WHOIS \(other)",
                            round % 3 == 0 ? "AWAY :thinking" : "AWAY",
                            "MODE #race +o \(other)",
                            "KICK #race \(other) :round \(round)",
                            "TOPIC #race :topic \(round)",
                            "NAMES #race",
                            round % 4 == 0 ? "PART #race" : "WHO #race",
                            "PING :r\(round)",
                        ]
                        try await client.sendRaw(Array(lines.map { $0 + "\r\n" }.joined().utf8))
                        try await client.next("PONG r\(round)", timeout: 60) { $0.command == "PONG" && $0.parameters.last == "r\(round)" }
                        if round % 10 == 9 {
                            // Leave and come back: a quit while others deliver to this session.
                            try await client.send("QUIT :again")
                            _ = await client.waitUntilClosed(timeout: 60)
                            client = try await server.loggedIn(person.0, person.1)
                        }
                    }
                    try await client.send("QUIT :done")
                    _ = await client.waitUntilClosed(timeout: 60)
                }
            }
            try await group.waitForAll()
        }
        let registry = server.server.core.registry
        #expect(await waitUntil { registry.userCount == 0 && registry.roomCount == 0 })
        await server.stop()
    }
}
