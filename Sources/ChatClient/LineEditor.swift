/// The line being typed at the terminal: bytes in, what to do out. A plain value, so the
/// terminal client's editing is tested without a terminal.
public struct LineEditor: Sendable {
    public enum Action: Equatable, Sendable {
        /// Redraw the prompt and the line.
        case redraw
        /// The person pressed Enter.
        case submit(String)
        /// Ctrl-C, or Ctrl-D on an empty line.
        case quit
        case none
    }

    public private(set) var text: [Character] = []
    private var pendingUTF8: [UInt8] = []
    private var escape: [UInt8]?

    public init() {}

    public var line: String { String(text) }

    public mutating func feed(_ byte: UInt8) -> Action {
        if var sequence = escape {
            // Skip escape sequences (arrows, function keys): ESC [ ... final byte.
            sequence.append(byte)
            if sequence.count == 1 && byte != UInt8(ascii: "[") && byte != UInt8(ascii: "O") { escape = nil; return .none }
            if sequence.count > 1 && (0x40...0x7e).contains(byte) { escape = nil; return .none }
            escape = sequence.count > 16 ? nil : sequence
            return .none
        }
        switch byte {
        case 0x1b:
            escape = []
            return .none
        case 0x03:
            return .quit
        case 0x04:
            return text.isEmpty ? .quit : .none
        case 0x0d, 0x0a:
            let submitted = line
            text.removeAll()
            return .submit(submitted)
        case 0x7f, 0x08:
            if !text.isEmpty { text.removeLast() }
            return .redraw
        case 0x15:  // Ctrl-U
            text.removeAll()
            return .redraw
        case 0x17:  // Ctrl-W
            while text.last == " " { text.removeLast() }
            while let last = text.last, last != " " { text.removeLast() }
            return .redraw
        case 0x00..<0x20:
            return .none
        default:
            pendingUTF8.append(byte)
            if let scalar = String(validating: pendingUTF8, as: UTF8.self) {
                pendingUTF8.removeAll()
                text.append(contentsOf: scalar)
                return .redraw
            }
            if pendingUTF8.count >= 4 { pendingUTF8.removeAll() }
            return .none
        }
    }
}
