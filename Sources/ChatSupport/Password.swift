#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A password's bytes, zeroed when the last copy goes away.
///
/// Passwords are kept as bytes rather than `String` so that they can be wiped; they are never
/// printed (`description` is redacted) and never logged.
// @unchecked Sendable: immutable after `init` (`bytes` has a private setter and is written only
// by `deinit`, when nobody else holds the object).
public final class Password: @unchecked Sendable, CustomStringConvertible {
    /// The UTF-8 bytes. Immutable after `init`, so sharing across threads is safe.
    public private(set) var bytes: [UInt8]

    /// Takes `bytes`; the caller should wipe its own copy.
    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    public convenience init(_ text: String) {
        self.init(bytes: Array(text.utf8))
    }

    deinit {
        Self.wipe(&bytes)
    }

    public var description: String { "Password(redacted)" }

    /// Rules for a new password: at least 8 characters and at most 1024 bytes of valid UTF-8,
    /// spaces included.
    public static let minimumCharacters = 8
    public static let maximumBytes = 1024

    /// Why a new password is refused, or nil if it is acceptable.
    public var problem: String? {
        if bytes.count > Self.maximumBytes {
            return "the password is longer than \(Self.maximumBytes) bytes"
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return "the password is not valid UTF-8"
        }
        if bytes.contains(0) { return "the password contains a NUL byte" }
        if text.count < Self.minimumCharacters {
            return "the password is shorter than \(Self.minimumCharacters) characters"
        }
        return nil
    }

    /// Overwrites an array's bytes with zeros.
    public static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            // A wipe the optimiser may not remove, unlike a plain loop or memset.
            #if canImport(Darwin)
            _ = memset_s(base, raw.count, 0, raw.count)
            #else
            explicit_bzero(base, raw.count)
            #endif
        }
    }
}

extension Password {
    /// Asks on standard error and reads one line from the terminal with echo off; nil when
    /// standard input is not a terminal (the caller then says what to use instead).
    public static func readFromTerminal(prompt: String) -> Password? {
        guard isatty(0) == 1 else { return nil }
        let promptBytes = Array(prompt.utf8)
        _ = promptBytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        var saved = termios()
        tcgetattr(0, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(0, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(0, TCSAFLUSH, &saved)
            _ = write(2, "\n", 1)
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(0, &byte, 1) == 1 && byte != 0x0a { bytes.append(byte) }
        if bytes.last == 0x0d { bytes.removeLast() }
        return Password(bytes: bytes)
    }
}
