import ChatAuth

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let database = try? UsersDatabase.decode(bytes, path: "fuzz.json") {
        // What loads must save and load back unchanged.
        guard let again = try? UsersDatabase.decode(database.encoded(), path: "fuzz.json"), again == database else {
            fatalError("users file round trip failed")
        }
    }
    return 0
}
