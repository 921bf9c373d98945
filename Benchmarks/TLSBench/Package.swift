// swift-tools-version:6.0
// TLS benchmark: SecureChat's OpenSSL handler against swift-nio-ssl's NIOSSLHandler, same NIO echo
// pipeline, same ECDSA certificate, in one run. A separate package so that the product never
// builds BoringSSL. Run: Benchmarks/run-tls-bench.sh
import PackageDescription

let package = Package(
    name: "TLSBench",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "SecureChat", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        .executableTarget(
            name: "tls-bench",
            dependencies: [
                .product(name: "TLS", package: "SecureChat"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
