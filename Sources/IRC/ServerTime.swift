#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Times as IRCv3 writes them: the server relays each message with one, clients ask for
/// history by them.
public enum ServerTime {
    /// `date` (now by default) as RFC 3339 UTC with milliseconds ("2026-11-30T01:02:03.456Z"),
    /// the form of the `server-time` tag and of CHATHISTORY's `timestamp=`.
    /// Made once per relayed message: digits written directly (`String(format:)` cost more than
    /// the rest of the message's routing).
    public static func string(_ date: Date = Date()) -> String {
        // Whole milliseconds first (to the nearest: 0.123 is not exact in binary), then the parts.
        let total = Int((date.timeIntervalSince1970 * 1000).rounded())
        var time = time_t(total / 1000)
        let millis = total % 1000
        var parts = tm()
        gmtime_r(&time, &parts)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4); bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2); bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2); bytes.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2); bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2); bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2); bytes.append(UInt8(ascii: "."))
        digits(millis, 3); bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
