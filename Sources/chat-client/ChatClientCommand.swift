import ChatSupport
import ArgumentParser
import ChatClient
import Foundation
import TLS

@main
struct ChatClientCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-client",
        abstract: "SecureChat's terminal client: TLS with a verified certificate, password login, rooms.",
        discussion: """
        Options may also come from a config file: --config FILE, else Config/client.json in the \
        current folder (the repository's points at the development CA), else \
        ~/.config/securechat/client.json. Keys: host, port, ca, user, room.

        The password comes from a no-echo prompt, from --password-file FILE (mode 0600), or from \
        the CHAT_PASSWORD environment variable; never from an argument.

        On a terminal the client is full-screen: a window per room and private conversation \
        (Alt-1…9, Alt-←/→ or Ctrl-P/N switch; PageUp/PageDown scroll), a status line with the \
        windows that have unread messages (! for a mention or a private message), the input line \
        at the bottom (↑/↓ history, Tab completion). --line gives the simpler line mode. Type to \
        talk in the current room; /help lists the commands; Ctrl-D or Ctrl-C quits. When standard \
        input or output is not a terminal (scripts, pipes), each input line is sent as typed and \
        each event is printed as one line, formatting codes removed:
          TIME TARGET <NICK> TEXT     a message (TARGET is #room, or @nick when private)
          TIME TARGET * NICK TEXT     an action (/me)
          TIME TARGET -NICK- TEXT     a notice
          TIME TARGET -!- TEXT        joins, parts, quits, topics, kicks, member lists
          - #room -!- new since you were last here
                                      where unread messages begin in a room's backlog
          - -!- TEXT                  replies from the server
        TIME is the server's RFC 3339 time. End of input quits.

        On a server that keeps history, joining a room shows the 50 messages before you joined, \
        with a line where what you have not read begins; private messages sent while you were \
        away are shown after login; /history [N] shows N more. What you have read (every \
        conversation in scripts and line mode, the window in front on the full screen) is told \
        to the server every 3 seconds and on quitting, so your other devices know.

        Exit status: 0 normal quit; 2 bad options or config; 3 cannot connect; 4 TLS failure \
        (certificate not trusted, wrong host name); 5 wrong account or password; 6 account \
        locked; 7 server busy or too many failed logins; 8 disconnected by the server.

        With --cert and --key, the client logs in with its certificate (SASL EXTERNAL) and asks \
        for no password: make one with 'chat-client cert init', and have the server's operator \
        register it (chat-admin cert add ACCOUNT FINGERPRINT).
        """,
        subcommands: [CertCommand.self])

    @Option(help: "Server host name (the certificate must be for it).") var host: String?
    @Option(help: "Server port (default 21567).") var port: Int?
    @Option(help: "Your account name.") var user: String?
    @Option(help: "A room to join at once (# optional).") var room: String?
    @Option(help: "Trust this CA certificate (PEM) instead of the system's trust store.") var ca: String?
    @Option(help: "A client config file (JSON).") var config: String?
    @Option(help: "Read the password from this file (must not be readable by others).") var passwordFile: String?
    @Option(help: "A client certificate (PEM) to log in with instead of a password.") var cert: String?
    @Option(help: "The private key (PEM, mode 0600) of --cert.") var key: String?
    @Flag(help: "Reconnect automatically, with backoff, if the connection drops.") var reconnect = false
    @Flag(help: "Line mode: messages scroll above a prompt, instead of the full-screen mode with windows.") var line = false
    @Flag(help: "Do not verify the server's certificate. Anyone on the path can read and change everything. For tests only.") var insecure = false

    func run() async throws {
        do {
            try await session()
        } catch let failure as ClientFailure {
            FileHandle.standardError.write(Data("chat-client: \(failure.message)\n".utf8))
            throw ExitCode(failure.status)
        } catch let error as ChatClientError {
            FileHandle.standardError.write(Data("chat-client: \(error)\n".utf8))
            throw ExitCode(error.exitStatus)
        }
    }

    func session() async throws {
        let settings = try ClientSettings.load(explicit: config)
        guard let account = user ?? settings.user else {
            throw ClientFailure(status: 2, message: "no account name: pass --user NAME (or set \"user\" in the config file)")
        }
        let host = self.host ?? settings.host ?? "localhost"
        let port = self.port ?? settings.port ?? 21567
        let caFile = ca ?? settings.ca
        if let caFile, !FileManager.default.fileExists(atPath: caFile) {
            throw ClientFailure(status: 2, message: "CA file \(caFile) does not exist — pass the server's CA with --ca (for the development server: Certs/ca.crt)")
        }
        if insecure {
            FileHandle.standardError.write(Data("chat-client: WARNING: --insecure: the server's certificate is NOT verified; anyone on the network path can read and change this conversation and steal your password\n".utf8))
        }
        var identity: (certificateFile: String, keyFile: String)?
        switch (cert, key) {
        case (nil, nil): identity = nil
        case let (cert?, key?):
            for file in [cert, key] where !FileManager.default.fileExists(atPath: file) {
                throw ClientFailure(status: 2, message: "\(file) does not exist — make a certificate with 'chat-client cert init'")
            }
            identity = (cert, key)
        default:
            throw ClientFailure(status: 2, message: "--cert and --key go together: the certificate and its private key")
        }
        // With a certificate, no password is asked for: the login is SASL EXTERNAL.
        let password = identity == nil ? try readPassword(account: account) : Password(bytes: [])
        var options = ChatClientOptions(host: host, port: port, account: account, password: password,
                                        trust: caFile.map { .caFile($0) } ?? .system, insecure: insecure)
        options.clientCertificate = identity
        let interactive = isatty(0) == 1 && isatty(1) == 1
        let mode: ClientApp.Mode = !interactive ? .script : line ? .line : .fullScreen
        // A password typed at the prompt may be mistyped: ask again, up to three times.
        let prompted = identity == nil && passwordFile == nil && (ProcessInfo.processInfo.environment["CHAT_PASSWORD"] ?? "").isEmpty
        var tries = 1
        while true {
            let app = ClientApp(options: options, mode: mode, reconnect: reconnect,
                                firstRoom: (room ?? settings.room).map(InputCommand.room))
            do {
                let status = try await app.run()
                if status != 0 { throw ExitCode(status) }
                return
            } catch ChatClientError.wrongPassword where prompted && interactive && tries < 3 {
                tries += 1
                FileHandle.standardError.write(Data("chat-client: wrong account name or password — try again (\(tries) of 3)\n".utf8))
                options.password = try readPassword(account: account)
            }
        }
    }

    func readPassword(account: String) throws -> Password {
        if let passwordFile {
            var info = stat()
            guard stat(passwordFile, &info) == 0 else {
                throw ClientFailure(status: 2, message: "password file \(passwordFile) does not exist")
            }
            if info.st_mode & 0o077 != 0 {
                throw ClientFailure(status: 2, message: "password file \(passwordFile) is readable by others — refused; run: chmod 600 \(passwordFile)")
            }
            guard let data = FileManager.default.contents(atPath: passwordFile) else {
                throw ClientFailure(status: 2, message: "cannot read password file \(passwordFile)")
            }
            var bytes = Array(data.prefix { $0 != 0x0a })
            if bytes.last == 0x0d { bytes.removeLast() }
            return Password(bytes: bytes)
        }
        if let fromEnvironment = ProcessInfo.processInfo.environment["CHAT_PASSWORD"], !fromEnvironment.isEmpty {
            return Password(fromEnvironment)
        }
        guard let password = Password.readFromTerminal(prompt: "Password for \(account): ") else {
            throw ClientFailure(status: 2, message: "no password: standard input is not a terminal; use --password-file FILE or the CHAT_PASSWORD environment variable")
        }
        return password
    }
}
