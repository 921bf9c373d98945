// swift-tools-version:6.0
// SecureChat: a TLS-only, multi-room chat service with password accounts, speaking IRC.
// See README.md for the two commands and ../shared/DESIGN.md for the architecture.
import PackageDescription

let package = Package(
    name: "SecureChat",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "ChatSupport", targets: ["ChatSupport"]),
        .library(name: "TLS", targets: ["TLS"]),
        .library(name: "ChatAuth", targets: ["ChatAuth"]),
        .library(name: "IRC", targets: ["IRC"]),
        .library(name: "IRCFraming", targets: ["IRCFraming"]),
        .library(name: "ChatHistory", targets: ["ChatHistory"]),
        .library(name: "ChatServer", targets: ["ChatServer"]),
        .library(name: "ChatCluster", targets: ["ChatCluster"]),
        .library(name: "ChatClient", targets: ["ChatClient"]),
        .executable(name: "chat-admin", targets: ["chat-admin"]),
        .executable(name: "chat-bench", targets: ["chat-bench"]),
        .executable(name: "chat-server", targets: ["chat-server"]),
        .executable(name: "chat-client", targets: ["chat-client"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // The system's OpenSSL (3.0 or newer), found with pkg-config; `apt-get install libssl-dev`.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        // Small shared pieces with no chat logic: the worker pool, JSON syntax, base64, `Password`,
        // the atomic file writer for secrets.
        .target(name: "ChatSupport", dependencies: ["CChatSystem"]),
        .systemLibrary(name: "CChatSystem"),
        .testTarget(name: "ChatSupportTests", dependencies: ["ChatSupport"]),
        // TLS over COpenSSL: configuration, engine, SwiftNIO handler, development certificates.
        .target(
            name: "TLS",
            dependencies: [
                "COpenSSL", "ChatSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The IRC protocol as pure values: parsing, serialising, names, numerics. No I/O.
        .target(name: "IRC", dependencies: ["ChatSupport"]),
        .testTarget(name: "IRCTests", dependencies: ["IRC"]),
        // IRC line framing for SwiftNIO pipelines (server and client), with a length cap.
        .target(name: "IRCFraming", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // Accounts: scrypt hashes, the users file, login checks and throttling.
        .target(name: "ChatAuth", dependencies: ["COpenSSL", "ChatSupport"]),
        // The system's SQLite 3 (`apt-get install libssl-dev libsqlite3-dev`): the history store.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        // What was said, kept: the history store protocol and its SQLite implementation.
        .target(name: "ChatHistory", dependencies: ["CSQLite", "ChatSupport"]),
        .testTarget(name: "ChatHistoryTests", dependencies: ["ChatHistory", "ChatTesting", "ChatAuth"]),
        // The system's zlib (`apt-get install zlib1g-dev`): gzip for the web app's files.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        // The web side of a listener: the app's files over HTTPS and IRC over secure WebSocket.
        // The app (Sources/ChatWeb/App) is compiled into the binary: no files to ship beside it.
        .target(
            name: "ChatWeb",
            dependencies: [
                "TLS", "CZlib", "COpenSSL", "ChatSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            resources: [
                .embedInCode("App/index.html"), .embedInCode("App/app.css"), .embedInCode("App/app.js"),
                .embedInCode("App/irc.js"), .embedInCode("App/view.js"), .embedInCode("App/icon.svg"),
            ]
        ),
        .testTarget(
            name: "ChatWebTests",
            dependencies: [
                "ChatWeb",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        // Several nodes on one PostgreSQL: its wire protocol (our own client: TLS through the TLS
        // module, SCRAM-SHA-256 with OpenSSL), the versioned schema, accounts in the database.
        .target(
            name: "ChatCluster",
            dependencies: [
                "COpenSSL", "ChatAuth", "ChatHistory", "ChatSupport", "TLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ChatClusterTests",
            dependencies: [
                "ChatCluster", "ChatServer", "ChatTesting", "ChatAuth", "ChatHistory", "ChatSupport", "TLS", "IRC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The server: configuration, sessions, rooms, delivery, limits.
        .target(
            name: "ChatServer",
            dependencies: [
                "IRC", "IRCFraming", "ChatAuth", "ChatCluster", "ChatSupport", "TLS", "ChatHistory", "ChatWeb",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "chat-server",
            dependencies: [
                "ChatServer", "TLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The client library: connect, verify, log in, send, events. Shared by chat-client, the
        // tests and the load generator.
        .target(
            name: "ChatClient",
            dependencies: [
                "IRC", "IRCFraming", "TLS", "ChatSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "chat-client",
            dependencies: [
                "ChatClient", "ChatSupport", "IRC", "TLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "ChatClientTests",
            dependencies: ["ChatClient", "ChatServer", "ChatTesting", "ChatSupport", "IRC", "TLS"]
        ),
        // posix_spawn's GNU additions, for ChatTesting's ChildProcess.
        .target(name: "CChildProcess"),
        // Test support shared by unit tests, end-to-end tests and benchmarks: an in-process server
        // and a bare IRC-over-TLS client.
        .target(
            name: "ChatTesting",
            dependencies: [
                "ChatHistory", "CChildProcess", "ChatServer", "ChatCluster", "ChatAuth", "ChatSupport", "TLS", "IRC", "IRCFraming",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ChatServerTests",
            dependencies: [
                "ChatServer", "ChatCluster", "ChatTesting", "ChatAuth", "ChatSupport", "IRC", "IRCFraming", "TLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The operator's tool: accounts and development certificates.
        .executableTarget(
            name: "chat-admin",
            dependencies: [
                "ChatAuth", "ChatCluster", "ChatSupport", "TLS", "ChatHistory",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Benchmarks of the product itself (load, hashing); results go to BENCHMARKS.md.
        .executableTarget(
            name: "chat-bench",
            dependencies: [
                "ChatAuth", "ChatSupport", "TLS", "IRC", "IRCFraming",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ChatAuthTests", dependencies: ["ChatAuth", "ChatSupport", "TLS", "ChatTesting"]),
        .testTarget(
            name: "TLSTests",
            dependencies: [
                "TLS", "ChatTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
