import NIOCore
import NIOHTTP1

/// Answers HTTP requests with the app's files: GET and HEAD only, no request bodies, unknown
/// paths 404, ETag revalidation (304), gzip when the browser takes it, the security headers on
/// every response, a request rate per connection and an idle timeout.
final class HTTPFileHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    static let name = "web-http"

    private let endpoint: WebEndpoint
    private var request: HTTPRequestHead?
    private var lastHost: String?
    private var refused: (HTTPResponseStatus, String)?
    private var tokens: Double
    private var lastRequest: NIODeadline?
    private var idle: Scheduled<Void>?

    init(endpoint: WebEndpoint) {
        self.endpoint = endpoint
        tokens = endpoint.requestBurst
    }

    func handlerAdded(context: ChannelHandlerContext) { scheduleIdleClose(context) }
    func handlerRemoved(context: ChannelHandlerContext) { idle?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            idle?.cancel()
            request = head
            lastHost = head.headers.first(name: "host")
            refused = check(head, now: context.eventLoop.now)
        case .body:
            if refused == nil { refused = (.payloadTooLarge, "requests to this server have no body\n") }
        case .end:
            guard let head = request else { return }
            request = nil
            if let (status, text) = refused {
                respond(context, head, status: status, text: text, close: true)
            } else {
                serve(context, head)
            }
        }
    }

    /// Why a request is refused before its end arrives, or nil.
    private func check(_ head: HTTPRequestHead, now: NIODeadline) -> (HTTPResponseStatus, String)? {
        if let last = lastRequest {
            tokens = min(endpoint.requestBurst, tokens + Double((now - last).nanoseconds) / 1e9 * endpoint.requestsPerSecond)
        }
        lastRequest = now
        guard tokens >= 1 else { return (.tooManyRequests, "too many requests on this connection: slow down\n") }
        tokens -= 1
        if let length = head.headers.first(name: "content-length"), length != "0" {
            return (.payloadTooLarge, "requests to this server have no body\n")
        }
        if head.headers.contains(name: "transfer-encoding") { return (.payloadTooLarge, "requests to this server have no body\n") }
        if head.headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" }) {
            // The upgrader said no (IRCWebSocketUpgrader): say which of its checks failed.
            guard let origin = head.headers.first(name: "origin") else {
                return (.forbidden, "WebSocket refused: no Origin header; send the origin of a page listed in web.allowedOrigins of the server's config\n")
            }
            guard endpoint.allows(origin: origin) else {
                return (.forbidden, "WebSocket refused: the page's origin \(origin) is not in web.allowedOrigins of the server's config\n")
            }
            return (.badRequest, "WebSocket refused: send Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key of 16 bytes in base64 (RFC 6455)\n")
        }
        guard head.method == .GET || head.method == .HEAD else {
            return (.methodNotAllowed, "only GET and HEAD are served here\n")
        }
        return nil
    }

    private func serve(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let path = String(head.uri.prefix { $0 != "?" && $0 != "#" })
        guard let asset = endpoint.assets.asset(for: path) else {
            respond(context, head, status: .notFound, text: "not found: this server has the chat app at /\n", close: false)
            return
        }
        var headers = baseHeaders(keepAlive: head.isKeepAlive)
        headers.add(name: "ETag", value: asset.etag)
        headers.add(name: "Cache-Control", value: "no-cache")
        headers.add(name: "Vary", value: "Accept-Encoding")
        if head.headers[canonicalForm: "if-none-match"].contains(where: { $0 == asset.etag || $0 == "*" }) {
            write(context, head, status: .notModified, headers: headers, body: nil)
            return
        }
        headers.add(name: "Content-Type", value: asset.contentType)
        var body = asset.body
        if let gzipped = asset.gzipped, acceptsGzip(head) {
            headers.add(name: "Content-Encoding", value: "gzip")
            body = gzipped
        }
        headers.add(name: "Content-Length", value: "\(body.count)")
        write(context, head, status: .ok, headers: headers, body: head.method == .HEAD ? nil : body)
    }

    private func acceptsGzip(_ head: HTTPRequestHead) -> Bool {
        head.headers[canonicalForm: "accept-encoding"].contains { value in
            let parts = value.split(separator: ";").map { $0.filter { $0 != " " } }
            return parts.first == "gzip" && !parts.contains("q=0")
        }
    }

    private func baseHeaders(keepAlive: Bool) -> HTTPHeaders {
        var headers = HTTPHeaders(endpoint.securityHeaders)
        // HSTS pins a host name (every port) for a year: not for localhost or an address, where
        // it would turn a developer's other http:// servers on that name into https://.
        if let host = request?.headers.first(name: "host") ?? lastHost, Self.isLocalOrAddress(host) {
            headers.remove(name: "Strict-Transport-Security")
        }
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        return headers
    }

    /// `localhost`, `*.localhost`, or an IPv4 or IPv6 address (with or without a port).
    static func isLocalOrAddress(_ host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("[") { return true }  // [IPv6]:port
        if let colon = name.lastIndex(of: ":") { name = String(name[..<colon]) }
        if name == "localhost" || name.hasSuffix(".localhost") { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, status: HTTPResponseStatus, text: String, close: Bool) {
        var headers = baseHeaders(keepAlive: head.isKeepAlive && !close)
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(text.utf8.count)")
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        write(context, head, status: status, headers: headers, body: head.method == .HEAD ? nil : Array(text.utf8))
    }

    private func write(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8]?) {
        let close = headers.first(name: "connection") == "close"
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if let body, !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if close {
            let channel = context.channel
            done.futureResult.whenComplete { _ in channel.close(promise: nil) }
        } else {
            scheduleIdleClose(context)
        }
    }

    private func scheduleIdleClose(_ context: ChannelHandlerContext) {
        idle?.cancel()
        let channel = context.channel
        idle = context.eventLoop.scheduleTask(in: endpoint.idleTimeout) { channel.close(promise: nil) }
    }
}
