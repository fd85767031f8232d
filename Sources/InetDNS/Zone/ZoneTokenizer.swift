/// Splits a master file into entries (one per record or directive, parentheses joining
/// lines) and tokens, dropping comments. Quoted strings become one token (`quoted`);
/// escapes are kept for the parser, which knows whether a token is a name or a string.
enum ZoneTokenizer {
    struct Token: Equatable {
        var text: String
        var quoted: Bool
    }

    struct Entry {
        var line: Int
        var startsWithBlank: Bool
        var tokens: [Token]
    }

    static func entries(_ text: String, file: String) throws(ZoneFileError) -> [Entry] {
        var entries: [Entry] = []
        var current: Entry?
        var depth = 0
        var openedAt = 0
        var line = 1
        var token: [UInt8] = []
        var inToken = false
        var quoted = false
        var inQuotes = false
        var atLineStart = true
        var bytes = Array(text.utf8)[...]

        func finishToken() {
            if inToken {
                current?.tokens.append(Token(text: String(decoding: token, as: UTF8.self), quoted: quoted))
            }
            token = []
            inToken = false
            quoted = false
        }
        func finishEntry() {
            if let entry = current, !entry.tokens.isEmpty { entries.append(entry) }
            current = nil
        }

        while let byte = bytes.popFirst() {
            if current == nil {
                current = Entry(line: line, startsWithBlank: atLineStart && (byte == 32 || byte == 9), tokens: [])
            }
            atLineStart = false
            if inQuotes {
                switch byte {
                case UInt8(ascii: "\""):
                    inQuotes = false
                case UInt8(ascii: "\\"):
                    token.append(byte)
                    if let next = bytes.popFirst() {
                        token.append(next)
                        if next == 10 { line += 1 }
                    }
                case 10:
                    throw ZoneFileError(file: file, line: line, message: "a quoted string runs past the end of the line")
                default:
                    token.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\\"):
                inToken = true
                token.append(byte)
                if let next = bytes.popFirst() { token.append(next) }
            case UInt8(ascii: "\""):
                finishToken()
                inToken = true
                quoted = true
                inQuotes = true
            case UInt8(ascii: ";"):
                finishToken()
                while let next = bytes.first, next != 10 { bytes.removeFirst() }
            case UInt8(ascii: "("):
                finishToken()
                if depth == 0 { openedAt = line }
                depth += 1
            case UInt8(ascii: ")"):
                finishToken()
                guard depth > 0 else { throw ZoneFileError(file: file, line: line, message: "')' without '('") }
                depth -= 1
            case 32, 9, 13:
                finishToken()
            case 10:
                finishToken()
                line += 1
                atLineStart = true
                if depth == 0 { finishEntry() }
            default:
                inToken = true
                token.append(byte)
            }
        }
        guard !inQuotes else { throw ZoneFileError(file: file, line: line, message: "unterminated quoted string") }
        guard depth == 0 else { throw ZoneFileError(file: file, line: openedAt, message: "'(' is never closed") }
        finishToken()
        finishEntry()
        return entries
    }
}
