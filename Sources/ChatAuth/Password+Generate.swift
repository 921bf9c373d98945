import ChatSupport
import COpenSSL

extension Password {
    /// Letters and digits without look-alikes (no 0/O, 1/l/I): easy to read out and type.
    static let generatorAlphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789".utf8)

    /// A random password of `length` characters from the system's CSPRNG (about 5.8 bits each;
    /// 20 characters ≈ 117 bits).
    public static func generate(length: Int = 20) throws(PasswordHashError) -> Password {
        var out: [UInt8] = []
        out.reserveCapacity(length)
        let alphabet = generatorAlphabet
        // Rejection sampling keeps every character equally likely.
        let limit = UInt8(256 - 256 % alphabet.count)
        var random = [UInt8](repeating: 0, count: 64)
        while out.count < length {
            guard RAND_bytes(&random, Int32(random.count)) == 1 else { throw .randomFailed }
            for byte in random where byte < limit && out.count < length {
                out.append(alphabet[Int(byte) % alphabet.count])
            }
        }
        Password.wipe(&random)
        return Password(bytes: out)
    }
}
