/// The web app's files, compiled into the binary (`PackageResources`, from `Sources/ChatWeb/App`),
/// each with its gzip encoding and an ETag computed once at start.
public struct WebAssets: Sendable {
    public struct Asset: Sendable {
        public let path: String
        public let contentType: String
        public let body: [UInt8]
        /// The gzip encoding when it is smaller than the body.
        public let gzipped: [UInt8]?
        /// A strong validator: a hash of the body, quoted as HTTP wants it.
        public let etag: String
    }

    private let byPath: [String: Asset]

    public init(files: [(path: String, bytes: [UInt8])]) {
        var table: [String: Asset] = [:]
        for (path, bytes) in files {
            let gzipped = Gzip.compress(bytes).flatMap { $0.count < bytes.count ? $0 : nil }
            table[path] = Asset(path: path, contentType: Self.contentType(of: path), body: bytes, gzipped: gzipped,
                                etag: "\"\(Self.hash(bytes))\"")
        }
        byPath = table
    }

    /// The files shipped in the binary.
    public static let app = WebAssets(files: [
        ("/index.html", PackageResources.index_html),
        ("/app.css", PackageResources.app_css),
        ("/app.js", PackageResources.app_js),
        ("/irc.js", PackageResources.irc_js),
        ("/view.js", PackageResources.view_js),
        ("/icon.svg", PackageResources.icon_svg),
    ])

    /// The asset for a request path ("/" is the app's page); nil for anything else.
    public func asset(for path: String) -> Asset? {
        byPath[path == "/" ? "/index.html" : path]
    }

    public var paths: [String] { byPath.keys.sorted() }

    static func contentType(of path: String) -> String {
        switch path.split(separator: ".").last {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "svg": "image/svg+xml"
        case "json": "application/json"
        default: "application/octet-stream"
        }
    }

    /// 64-bit FNV-1a, in hex: enough to tell versions of a file apart.
    static func hash(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
