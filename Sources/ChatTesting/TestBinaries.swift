import Foundation

/// Where the package's executables were built, for tests that run them as separate processes.
public enum TestBinaries {
    /// The path of `name` (chat-server, chat-client, chat-admin) next to the test bundle.
    public static func path(_ name: String) -> String {
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [folder, folder.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return ".build/debug/" + name
    }
}
