import ChatAuth

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let hash = try? PasswordHash(phc: text) {
        // Never run scrypt on fuzzed parameters (too slow); check the string round trip only.
        guard let again = try? PasswordHash(phc: hash.phc), again == hash else { fatalError("PHC round trip failed for \(text)") }
    }
    return 0
}
