import ChatSupport
import ChatAuth
import ChatCluster
import Foundation

/// Where the users file is and how to hash, taken from the server's config file (or options).
///
/// chat-admin reads only the two keys it needs (`usersFile`, `passwordHashing`); the server checks
/// the whole file.
struct AdminSettings {
    var usersFile: String
    var configFolder: String
    /// The history database: the config's "history.database", else history.sqlite next to the users file.
    var historyDatabase: String?
    /// The config's "cluster" block: accounts are in PostgreSQL.
    var cluster: ClusterSettings?
    private var parameters: ScryptParameters

    init(usersFile: String, hashing: ScryptParameters, configFolder: String) {
        self.usersFile = usersFile
        self.parameters = hashing
        self.configFolder = configFolder
    }

    /// The parameters for new hashes, with a warning when they are below OWASP's floor.
    var hashing: ScryptParameters {
        if !parameters.meetsOWASPFloor {
            warn("scrypt parameters \(parameters) are below OWASP's minimum (for example ln=15,r=8,p=3); use them only for tests")
        }
        return parameters
    }

    static func resolve(config: String, usersFile: String?) throws -> AdminSettings {
        let configURL = URL(fileURLWithPath: config)
        let folder = configURL.deletingLastPathComponent().path
        var hashing = ScryptParameters.default
        var fromConfig: String?
        var cluster: ClusterSettings?
        var database: String?
        if FileManager.default.fileExists(atPath: config) {
            let bytes = try Array(Data(contentsOf: configURL))
            let parsed: Any
            do {
                parsed = try JSONSyntax.parse(bytes)
            } catch {
                throw AdminError("config file \(config) is not valid JSON at \(error) — fix it or pass --users-file")
            }
            guard let object = parsed as? [String: Any] else {
                throw AdminError("config file \(config) must hold a JSON object")
            }
            if let value = object["usersFile"] {
                guard let path = value as? String, !path.isEmpty else {
                    throw AdminError("config file \(config): \"usersFile\" must be a non-empty string (a path)")
                }
                fromConfig = path
            }
            if let history = object["history"] as? [String: Any], let path = history["database"] as? String, !path.isEmpty {
                database = path.hasPrefix("/") ? path : folder + "/" + path
            }
            if let value = object["cluster"] {
                do {
                    cluster = try ClusterSettings.read(value, folder: folder)
                } catch {
                    throw AdminError("config file \(config): \(error)")
                }
            }
            if let value = object["passwordHashing"] {
                guard let table = value as? [String: Any], let ln = (table["ln"] as? JSONNumber)?.integer, let r = (table["r"] as? JSONNumber)?.integer,
                      let p = (table["p"] as? JSONNumber)?.integer else {
                    throw AdminError("config file \(config): \"passwordHashing\" must be {\"ln\": N, \"r\": N, \"p\": N}")
                }
                hashing = ScryptParameters(ln: ln, r: r, p: p)
                do { try hashing.validate() } catch { throw AdminError("config file \(config): passwordHashing: \(error)") }
            }
        } else if usersFile == nil {
            throw AdminError("config file \(config) not found — run chat-admin from the project folder, or pass --config PATH or --users-file PATH")
        }
        let chosen: String
        if let usersFile {
            chosen = usersFile
        } else if let fromConfig {
            chosen = fromConfig.hasPrefix("/") ? fromConfig : folder + "/" + fromConfig
        } else {
            chosen = folder + "/users.json"
        }
        var settings = AdminSettings(usersFile: chosen, hashing: hashing, configFolder: folder)
        settings.cluster = cluster
        settings.historyDatabase = database ?? ((chosen as NSString).deletingLastPathComponent as NSString).appendingPathComponent("history.sqlite")
        return settings
    }
}

/// An error chat-admin reports as one line and exit status 1.
struct AdminError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("chat-admin: warning: \(message)\n".utf8))
}
