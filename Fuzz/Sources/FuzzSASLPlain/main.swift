import IRC

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let decoded = try? SASLPlain.decode(bytes) {
        // What decodes must re-encode to a payload that decodes to the same thing.
        let again = try? SASLPlain.decode(Array(SASLPlain.encode(account: decoded.account, password: decoded.password).utf8))
        if again?.account != decoded.account || again?.password != decoded.password { fatalError("SASL round trip failed") }
    }
    return 0
}
