import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import TLS

/// The web side of a listener: the app's files over HTTPS and IRC over secure WebSocket (IRCv3
/// `text.ircv3.net` / `binary.ircv3.net`), on the same port as IRC over TLS.
///
/// `TransportSniffer` hands it a connection whose first bytes are an HTTP request. Everything after
/// the WebSocket upgrade is the IRC pipeline, unchanged: `installIRC` adds the same handlers a TLS
/// IRC connection gets, so flood control, line limits, keepalive and the send-queue limit apply.
public final class WebEndpoint: Sendable {
    /// Origins (scheme://host[:port], lowercase) whose pages may open a WebSocket. A request with
    /// no Origin is refused too: a tool that is not a browser sends one of these.
    public let allowedOrigins: Set<String>
    public let assets: WebAssets
    /// The largest WebSocket message taken: one IRC line with tags, with room to spare; a line
    /// between the IRC limit and this gets the same 417 as over TLS, a bigger frame closes (1009).
    public let maximumMessageBytes: Int
    /// Headers on every HTTP response: HSTS, CSP and the rest of the hardening.
    let securityHeaders: [(String, String)]
    /// Idle keep-alive connections are closed after this.
    let idleTimeout: TimeAmount
    /// Requests one connection may make per second, with a burst.
    let requestsPerSecond: Double
    let requestBurst: Double

    public static let subprotocols = ["text.ircv3.net", "binary.ircv3.net"]
    public init(allowedOrigins: [String], maximumLineBytes: Int, hstsSeconds: Int = 31_536_000, assets: WebAssets = .app,
                idleTimeout: TimeAmount = .seconds(30), requestsPerSecond: Double = 20, requestBurst: Double = 40) {
        let origins = allowedOrigins.map { $0.lowercased() }
        self.allowedOrigins = Set(origins)
        self.assets = assets
        self.maximumMessageBytes = max(2 * maximumLineBytes, 4096)
        self.idleTimeout = idleTimeout
        self.requestsPerSecond = requestsPerSecond
        self.requestBurst = requestBurst
        // connect-src: the page's own origin ('self' covers its wss:// in CSP 3), and every allowed
        // origin's as wss://. CSP has no syntax for IPv6 literals: those rely on 'self'.
        let sockets = Set(origins.compactMap { origin -> String? in
            origin.hasPrefix("https://") && !origin.contains("[") ? "wss://" + origin.dropFirst("https://".count) : nil
        }).sorted()
        let csp = [
            "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
            "connect-src 'self' " + sockets.joined(separator: " "), "manifest-src 'self'",
            "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
        ].joined(separator: "; ")
        var headers: [(String, String)] = [
            ("Content-Security-Policy", csp),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if hstsSeconds > 0 { headers.append(("Strict-Transport-Security", "max-age=\(hstsSeconds)")) }
        securityHeaders = headers
    }

    /// Is a WebSocket from a page of `origin` allowed? Only from the listed origins.
    public func allows(origin: String?) -> Bool {
        guard let origin else { return false }
        return allowedOrigins.contains(origin.lowercased())
    }

    /// The subprotocol to answer for a `Sec-WebSocket-Protocol` request header: text first.
    public static func chooseSubprotocol(_ offered: [String]) -> String? {
        let names = offered.flatMap { $0.split(separator: ",") }.map { $0.filter { $0 != " " && $0 != "\t" }.lowercased() }
        return subprotocols.first { names.contains($0) }
    }

    /// Turns the connection into an HTTP/1.1 server that serves the app and upgrades WebSocket
    /// requests to IRC. `tlsEvent` (the handshake's) is passed on to the IRC handlers.
    public func install(on pipeline: ChannelPipeline.SynchronousOperations, tlsEvent: TLSEvent?,
                        installIRC: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void) throws {
        let upgrader = IRCWebSocketUpgrader(endpoint: self, tlsEvent: tlsEvent, installIRC: installIRC)
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = 8 * 1024
        limits.maxHeaderListSize = 16 * 1024
        limits.maxHeaderFieldCount = 100
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: true,
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
                // Before the WebSocket handlers are added: nothing HTTP is left to read frames.
                context.pipeline.syncOperations.removeHandler(name: HTTPFileHandler.name, promise: nil)
            }),
            withErrorHandling: true,
            withOutboundHeaderValidation: true,
            withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits)
        try pipeline.addHandler(HTTPFileHandler(endpoint: self), name: HTTPFileHandler.name)
    }
}
