import ArgumentParser
import ChatServer
import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NIOPosix
import TLS

@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server",
        abstract: "SecureChat's server: IRC over TLS with password accounts and rooms.",
        discussion: """
        Reads its configuration from --config (default Config/server.json). The development config \
        listens on 127.0.0.1:21567 and creates a local CA and certificate in Certs/ on first start.

        Environment overrides: SECURECHAT_HOST, SECURECHAT_PORT (the first listener), \
        SECURECHAT_USERS_FILE, SECURECHAT_CERTIFICATE, SECURECHAT_PRIVATE_KEY.

        Signals: SIGTERM or SIGINT stop gracefully (every client gets ERROR :Server shutting down); \
        SIGHUP re-reads the users file and the certificate and key.
        """)

    @Option(help: "The config file (JSON).")
    var config = "Config/server.json"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "chat-server")
        MallocTuning.apply()
        let server: Server
        do {
            let configuration = try ServerConfiguration.load(path: config)
            server = try Server(configuration: configuration, logger: logger, group: MultiThreadedEventLoopGroup.singleton)
            try await server.start()
            MallocTuning.releaseStartupGarbage()
        } catch {
            let text = Array("chat-server: error: \(error)\n".utf8)
            _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            throw ExitCode(1)
        }
        let stop = AsyncStream<Int32>.makeStream()
        var sources: [DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if number == SIGHUP {
                    logger.notice("SIGHUP: reloading the users file and the certificate")
                    server.reload()
                } else {
                    stop.continuation.yield(number)
                }
            }
            source.resume()
            sources.append(source)
        }
        for await number in stop.stream {
            logger.notice("\(number == SIGINT ? "SIGINT" : "SIGTERM"): stopping")
            break
        }
        await server.shutdown()
        logger.notice("stopped")
        _ = sources
    }
}
