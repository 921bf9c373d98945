import ChatAuth
import ChatServer
import Foundation
import IRCFraming
import Logging
import NIOCore
import NIOEmbedded

/// One server core for every input: rooms and users from earlier inputs persist, as on a real
/// server. Logins are answered at once (no scrypt): "fuzz" with any password succeeds.
let core: ServerCore = {
    let folder = NSTemporaryDirectory() + "securechat-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    var configuration = ServerConfiguration(path: folder + "/server.json", tls: .init(certificateChain: "unused", privateKey: "unused"), usersFile: folder + "/users.json")
    configuration.passwordHashing = ScryptParameters(ln: 1, r: 1, p: 1)
    let directory = try! AccountDirectory(store: UsersStore(path: configuration.usersFile))
    let authenticator = try! Authenticator(directory: directory, policy: configuration.passwordHashing, pool: WorkerPool(threads: 1, queueLimit: 1),
                                           throttle: LoginThrottle(now: { 0 }))
    return ServerCore(configuration: configuration, registry: Registry(), authenticator: authenticator,
                      logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }),
                      immediateLoginForTesting: { account, password in
                          account.lowercased().hasPrefix("fuzz") && !password.bytes.isEmpty ? .success(account: account) : .invalidCredentials
                      })
}()

/// The first byte picks before (odd) or after (even) login; the rest are lines from a client.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let channel = EmbeddedChannel()
    let session = ClientSession(core: core, eventLoop: channel.embeddedEventLoop, address: "192.0.2.1")
    try! channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder(maximumLength: 512 + 4096 + 2)))
    try! channel.pipeline.syncOperations.addHandler(session)
    try! channel.connect(to: SocketAddress(ipAddress: "192.0.2.1", port: 1)).wait()
    var input = Array(UnsafeBufferPointer(start: data, count: size))
    if let first = input.first, first & 1 == 0 {
        input = Array("PASS fuzz\(first):secret\r\nNICK fuzz\(first)\r\nUSER f 0 * :F\r\n".utf8) + input.dropFirst()
    }
    _ = try? channel.writeInbound(channel.allocator.buffer(bytes: input))
    channel.embeddedEventLoop.advanceTime(by: .seconds(3600))  // every timer fires
    while (try? channel.readOutbound(as: ByteBuffer.self)) ?? nil != nil {}
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return 0
}
