/// How many terminal columns text takes, per Unicode: East Asian wide and fullwidth characters
/// and emoji take two, combining marks and other zero-width characters none, and a grapheme
/// cluster (a ZWJ family, a flag, a letter with its accents) is measured as one character, so the
/// cursor lands where a terminal draws the end of the text.
public enum TextWidth {
    /// Columns of one character (grapheme cluster).
    public static func of(_ character: Character) -> Int {
        let scalars = character.unicodeScalars
        guard let first = scalars.first else { return 0 }
        if first.value < 0x20 || (first.value >= 0x7f && first.value < 0xa0) { return 0 }
        if first.value < 0x300 { return 1 }  // the common case, quickly
        // An emoji presentation selector, or a sequence (ZWJ, flags, keycaps), is drawn as emoji.
        if scalars.count > 1 {
            if scalars.contains(where: { $0.value == 0xfe0f }) { return 2 }
            if scalars.contains(where: { $0.properties.isEmojiPresentation }) { return 2 }
        }
        if first.properties.isEmojiPresentation { return 2 }
        if isWide(first.value) { return 2 }
        if isZeroWidth(first) { return 0 }
        return 1
    }

    /// Columns of `text`.
    public static func of(_ text: some StringProtocol) -> Int {
        var total = 0
        for character in text { total += of(character) }
        return total
    }

    static func isZeroWidth(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return true
        default: return scalar.value == 0x200b || (0x1160...0x11ff).contains(scalar.value)
        }
    }

    /// East Asian Width W or F (Unicode 15, the ranges that matter).
    static func isWide(_ v: UInt32) -> Bool {
        switch v {
        // Emoji are measured by their Emoji_Presentation property (above), which matches W for them.
        case 0x1100...0x115f, 0x2329...0x232a, 0x2e80...0x303e, 0x3041...0x33ff, 0x3400...0x4dbf, 0x4e00...0x9fff,
             0xa000...0xa4cf, 0xa960...0xa97f, 0xac00...0xd7a3, 0xf900...0xfaff, 0xfe10...0xfe19, 0xfe30...0xfe6f,
             0xff00...0xff60, 0xffe0...0xffe6, 0x16fe0...0x16fe4, 0x17000...0x18cff, 0x1b000...0x1b16f,
             0x1f200...0x1f202, 0x1f210...0x1f23b, 0x1f240...0x1f248, 0x1f250...0x1f251, 0x20000...0x2fffd, 0x30000...0x3fffd:
            return true
        default:
            return false
        }
    }

    /// The longest prefix of `text` that fits in `columns`, and its width.
    public static func prefix(of text: some StringProtocol, fitting columns: Int) -> (String, Int) {
        var out = ""
        var used = 0
        for character in text {
            let w = of(character)
            if used + w > columns { break }
            out.append(character)
            used += w
        }
        return (out, used)
    }
}
