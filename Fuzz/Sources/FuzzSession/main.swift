import ChatAuth
import ChatServer
import ChatSupport
import Foundation
import IRCFraming
import Logging
import NIOCore
import NIOEmbedded

/// Answers at once (no scrypt): an account starting with "fuzz" and any password succeeds.
struct FuzzLogins: LoginChecker {
    func login(account: String, password: Password, address: String, completion: @escaping @Sendable (LoginOutcome) -> Void) -> LoginQueue.Ticket? {
        defer { completion(account.lowercased().hasPrefix("fuzz") && !password.bytes.isEmpty ? .success(account: account) : .invalidCredentials) }
        return nil
    }

    func login(certificate fingerprint: String, account: String?, address: String) -> LoginOutcome { .invalidCredentials }
}

/// One server core for every input: rooms and users from earlier inputs persist, as on a real
/// server.
let core: ServerCore = {
    let folder = NSTemporaryDirectory() + "securechat-fuzz-\(getpid())"
    let configuration = ServerConfiguration(path: folder + "/server.json", tls: .init(certificateChain: "unused", privateKey: "unused"), usersFile: folder + "/users.json")
    return ServerCore(configuration: configuration, logins: FuzzLogins(), logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
}()

/// One event loop for every input, like a server's fixed loops: the core keeps a flusher per
/// loop, so a new loop per input would grow that table (and make every input look like a leak to
/// libFuzzer, which then scans the heap each time).
let loop = EmbeddedEventLoop()

/// The first byte picks before (odd) or after (even) login; the rest are lines from a client.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let channel = EmbeddedChannel(loop: loop)
    try! Server.addSessionHandlers(to: channel.pipeline.syncOperations, core: core, eventLoop: loop, address: "192.0.2.1")
    try! channel.connect(to: SocketAddress(ipAddress: "192.0.2.1", port: 1)).wait()
    var input = Array(UnsafeBufferPointer(start: data, count: size))
    if let first = input.first, first & 1 == 0 {
        input = Array("PASS fuzz\(first):secret\r\nNICK fuzz\(first)\r\nUSER f 0 * :F\r\n".utf8) + input.dropFirst()
    }
    _ = try? channel.writeInbound(channel.allocator.buffer(bytes: input))
    loop.advanceTime(by: .seconds(3600))  // every timer fires
    while (try? channel.readOutbound(as: ByteBuffer.self)) ?? nil != nil {}
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return 0
}
