import IRC

/// Parses arbitrary bytes; whatever parses must serialise and parse back to the same message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let message = try? IRCMessage.parse(buffer: bytes, maximumTagBytes: 8191, maximumLineBytes: 1 << 16) else { return 0 }
    let line = message.serialized().dropLast(2)
    guard let again = try? IRCMessage.parse(line, maximumTagBytes: 1 << 16, maximumLineBytes: 1 << 17) else {
        fatalError("serialised message does not parse: \(message)")
    }
    if again.command != message.command || again.parameters != message.parameters || again.source != message.source {
        fatalError("round trip changed the message: \(message) -> \(again)")
    }
    return 0
}
