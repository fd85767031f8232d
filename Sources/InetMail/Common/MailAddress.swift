/// An RFC 5321 mailbox, `local-part@domain`. The domain is kept in lower case; the local part
/// as written, with the quotes of a quoted string removed.
public struct MailAddress: Hashable, Sendable, CustomStringConvertible {
    public var localPart: String
    public var domain: String

    public init(localPart: String, domain: String) {
        self.localPart = localPart
        self.domain = domain.lowercased()
    }

    public var description: String {
        let needsQuotes = localPart.isEmpty || !localPart.unicodeScalars.allSatisfy { MailAddress.isAtomText($0) || $0 == "." }
            || localPart.hasPrefix(".") || localPart.hasSuffix(".") || localPart.contains("..")
        if needsQuotes {
            var quoted = "\""
            for character in localPart {
                if character == "\\" || character == "\"" { quoted.append("\\") }
                quoted.append(character)
            }
            return quoted + "\"@\(domain)"
        }
        return "\(localPart)@\(domain)"
    }

    /// The key a mailbox is known by: both parts in lower case (mailboxes are not case-sensitive
    /// here, as with most servers).
    public var key: String { "\(localPart.lowercased())@\(domain)" }

    /// Whether the address can name a Maildir folder: no `/`, no leading dot, no control characters.
    public var isStorable: Bool {
        let local = localPart
        return !local.isEmpty && !local.hasPrefix(".") && !local.contains("/")
            && !local.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
            && !domain.contains("/") && !domain.hasPrefix(".") && !domain.isEmpty
    }

    /// `atext` of RFC 5322 3.2.3, plus any non-ASCII character (RFC 6531 extends it with UTF-8).
    static func isAtomText(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9": return true
        case "!", "#", "$", "%", "&", "'", "*", "+", "-", "/", "=", "?", "^", "_", "`", "{", "|", "}", "~": return true
        default: return scalar.value >= 0x80
        }
    }

    /// Parses `local@domain` (no angle brackets). Returns nil for anything RFC 5321 does not allow,
    /// and for non-ASCII text unless `utf8` (the SMTPUTF8 parameter, RFC 6531) is given.
    public static func parse(_ text: Substring, utf8: Bool = false) -> MailAddress? {
        guard !text.isEmpty, text.utf8.count <= 254 else { return nil }
        if !utf8, text.unicodeScalars.contains(where: { $0.value >= 0x80 }) { return nil }
        var local = ""
        var rest: Substring
        if text.first == "\"" {
            // Quoted string: qtext and quoted pairs up to the closing quote.
            var index = text.index(after: text.startIndex)
            var closed = false
            while index < text.endIndex {
                let character = text[index]
                if character == "\\" {
                    // quoted-pair = "\\" %d32-126 (RFC 5321 4.1.2), or any UTF-8 with SMTPUTF8:
                    // an escaped control character is still a control character.
                    index = text.index(after: index)
                    guard index < text.endIndex else { return nil }
                    guard text[index].unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else { return nil }
                    local.append(text[index])
                } else if character == "\"" {
                    closed = true
                    index = text.index(after: index)
                    break
                } else {
                    guard character.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else { return nil }
                    local.append(character)
                }
                index = text.index(after: index)
            }
            guard closed, index < text.endIndex, text[index] == "@" else { return nil }
            rest = text[text.index(after: index)...]
        } else {
            guard let at = text.lastIndex(of: "@") else { return nil }
            let dotString = text[..<at]
            guard !dotString.isEmpty, !dotString.hasPrefix("."), !dotString.hasSuffix("."), !dotString.contains("..") else { return nil }
            guard dotString.unicodeScalars.allSatisfy({ isAtomText($0) || $0 == "." }) else { return nil }
            local = String(dotString)
            rest = text[text.index(after: at)...]
        }
        guard local.utf8.count <= 64, isDomain(rest) else { return nil }
        return MailAddress(localPart: local, domain: String(rest))
    }

    /// A domain name (letters, digits, hyphens in dot-separated labels) or an address literal.
    static func isDomain(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        if text.first == "[" {
            return text.last == "]" && text.count > 2
                && text.dropFirst().dropLast().unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != "[" && $0 != "]" && $0 != "\\" }
        }
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63, !label.hasPrefix("-"), !label.hasSuffix("-") else { return false }
            guard label.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0.value >= 0x80 }) else {
                return false
            }
        }
        return true
    }
}

/// The argument of MAIL FROM: / RCPT TO: — a path in angle brackets and ESMTP parameters.
struct SMTPPathArgument: Equatable {
    /// The path's text inside the brackets (source route removed); empty for the null path `<>`.
    var path: Substring
    /// `KEYWORD[=value]` parameters, keywords in upper case.
    var parameters: [(key: String, value: String?)]

    static func == (lhs: SMTPPathArgument, rhs: SMTPPathArgument) -> Bool {
        lhs.path == rhs.path && lhs.parameters.map(\.key) == rhs.parameters.map(\.key)
            && lhs.parameters.map(\.value) == rhs.parameters.map(\.value)
    }

    /// Parses what follows `FROM:` or `TO:`. Like Postfix, a space after the colon and a path
    /// without brackets are accepted; nil when the brackets or parameters are malformed.
    static func parse(_ text: Substring) -> SMTPPathArgument? {
        var rest = text.drop { $0 == " " }
        var path: Substring
        if rest.first == "<" {
            // Find the closing bracket outside any quoted string.
            var index = rest.index(after: rest.startIndex)
            var quoted = false
            var close: Substring.Index?
            while index < rest.endIndex {
                let character = rest[index]
                if quoted, character == "\\" {
                    index = rest.index(after: index)
                    if index == rest.endIndex { return nil }
                } else if character == "\"" {
                    quoted.toggle()
                } else if !quoted, character == ">" {
                    close = index
                    break
                }
                index = rest.index(after: index)
            }
            guard let close else { return nil }
            path = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            guard rest.isEmpty || rest.first == " " else { return nil }
        } else {
            let end = rest.firstIndex(of: " ") ?? rest.endIndex
            path = rest[..<end]
            rest = rest[end...]
            guard !path.isEmpty else { return nil }
        }
        // RFC 5321 4.1.2: a source route ("@a,@b:") is accepted and ignored.
        if path.first == "@", let colon = path.firstIndex(of: ":") {
            path = path[path.index(after: colon)...]
        }
        var parameters: [(key: String, value: String?)] = []
        for word in rest.split(separator: " ") {
            if let equals = word.firstIndex(of: "=") {
                let key = word[..<equals]
                guard !key.isEmpty else { return nil }
                parameters.append((key.uppercased(), String(word[word.index(after: equals)...])))
            } else {
                parameters.append((word.uppercased(), nil))
            }
        }
        return SMTPPathArgument(path: path, parameters: parameters)
    }
}
