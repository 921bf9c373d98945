// swift-tools-version:6.0
// libFuzzer targets for SecureChat's parsers and state machines. A separate package, built with
// -sanitize=fuzzer (and address): run Fuzz/run-fuzzers.sh.
import PackageDescription

let fuzzFlags: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let package = Package(
    name: "SecureChatFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "SecureChat", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(name: "FuzzIRCParser", dependencies: [.product(name: "IRC", package: "SecureChat")], swiftSettings: fuzzFlags),
        .executableTarget(name: "FuzzSASLPlain", dependencies: [.product(name: "IRC", package: "SecureChat")], swiftSettings: fuzzFlags),
        .executableTarget(name: "FuzzPHC", dependencies: [.product(name: "ChatAuth", package: "SecureChat")], swiftSettings: fuzzFlags),
        .executableTarget(name: "FuzzUsersFile", dependencies: [.product(name: "ChatAuth", package: "SecureChat")], swiftSettings: fuzzFlags),
        .executableTarget(
            name: "FuzzSession",
            dependencies: [
                .product(name: "ChatServer", package: "SecureChat"), .product(name: "ChatAuth", package: "SecureChat"),
                .product(name: "ChatSupport", package: "SecureChat"),
                .product(name: "IRCFraming", package: "SecureChat"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: fuzzFlags),
    ],
    swiftLanguageModes: [.v6]
)
