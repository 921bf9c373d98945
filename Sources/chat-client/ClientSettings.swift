import Foundation

/// Options from a client config file (JSON): `host`, `port`, `ca`, `user`, `room`.
/// A relative `ca` is resolved from the config file's folder.
struct ClientSettings {
    var host: String?
    var port: Int?
    var ca: String?
    var user: String?
    var room: String?
    var path: String?

    /// The file named by --config; else Config/client.json in the current folder (the
    /// repository's, pointing at the development CA); else ~/.config/securechat/client.json.
    static func load(explicit: String?) throws -> ClientSettings {
        let candidates: [String]
        if let explicit {
            guard FileManager.default.fileExists(atPath: explicit) else {
                throw ClientFailure(status: 2, message: "config file \(explicit) does not exist — check --config")
            }
            candidates = [explicit]
        } else {
            candidates = ["Config/client.json", NSHomeDirectory() + "/.config/securechat/client.json"]
        }
        for path in candidates where FileManager.default.fileExists(atPath: path) {
            return try parse(path)
        }
        return ClientSettings()
    }

    static func parse(_ path: String) throws -> ClientSettings {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ClientFailure(status: 2, message: "config file \(path) is not a JSON object — fix it or pass --config")
        }
        let allowed = ["host", "port", "ca", "user", "room"]
        for key in object.keys.sorted() where !allowed.contains(key) {
            throw ClientFailure(status: 2, message: "config file \(path): unknown key \"\(key)\" (allowed: \(allowed.joined(separator: ", ")))")
        }
        func string(_ key: String) throws -> String? {
            guard let value = object[key] else { return nil }
            guard let s = value as? String, !s.isEmpty else { throw ClientFailure(status: 2, message: "config file \(path): \"\(key)\" must be a non-empty string") }
            return s
        }
        var settings = ClientSettings(path: path)
        settings.host = try string("host")
        settings.user = try string("user")
        settings.room = try string("room")
        if let ca = try string("ca") {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            settings.ca = ca.hasPrefix("/") ? ca : ((folder + "/" + ca) as NSString).standardizingPath
        }
        if let value = object["port"] {
            guard let port = value as? Int, (1...65535).contains(port) else {
                throw ClientFailure(status: 2, message: "config file \(path): \"port\" must be a number from 1 to 65535")
            }
            settings.port = port
        }
        return settings
    }
}

/// A failure chat-client reports as one line and an exit status.
struct ClientFailure: Error, CustomStringConvertible {
    var status: Int32
    var message: String
    var description: String { message }
}
