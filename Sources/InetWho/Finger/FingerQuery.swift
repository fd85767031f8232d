/// A finger query line (RFC 1288 §2.3): `[/W] [user][@host...]`.
public struct FingerQuery: Equatable, Sendable {
    /// `/W`: the long ("whois") form.
    public var verbose: Bool
    /// The user asked for; nil lists every user.
    public var user: String?
    /// `user@host`: the client asks this server to finger another host for it.
    public var forward: Bool

    public init(verbose: Bool = false, user: String? = nil, forward: Bool = false) {
        self.verbose = verbose
        self.user = user
        self.forward = forward
    }

    /// Parses a query line without its CRLF; control characters are dropped first and the user
    /// name is bounded (longer names are no user of this server anyway).
    public static func parse<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> FingerQuery {
        let text = FingerText.printable(bytes, limit: 512)
        var words = text.split(separator: " ", omittingEmptySubsequences: true)
        var query = FingerQuery()
        if let first = words.first, first.uppercased() == "/W" {
            query.verbose = true
            words.removeFirst()
        }
        guard let word = words.first else { return query }
        if let at = word.firstIndex(of: "@") {
            query.forward = true
            let user = word[..<at]
            query.user = user.isEmpty ? nil : String(user.prefix(64))
        } else {
            query.user = String(word.prefix(64))
        }
        return query
    }
}

/// Text as finger sends it: printable ASCII and tabs only (a plan or a query carrying terminal
/// escape sequences must not reach the reader's terminal), lines bounded.
public enum FingerText {
    /// The printable ASCII of `bytes` (space for tabs), at most `limit` characters.
    public static func printable<Bytes: Sequence<UInt8>>(_ bytes: Bytes, limit: Int) -> String {
        var kept: [UInt8] = []
        for byte in bytes {
            guard kept.count < limit else { break }
            if byte == 0x09 { kept.append(0x20) } else if byte >= 0x20 && byte < 0x7f { kept.append(byte) }
        }
        return String(decoding: kept, as: UTF8.self)
    }

    /// `text` as CRLF-ended lines, each cut to `width` printable characters, at most `lines` of them.
    public static func lines(_ text: String, width: Int, lines limit: Int) -> String {
        var out = ""
        var count = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard count < limit else { break }
            out += printable(line.utf8.filter { $0 != 0x0d }, limit: width) + "\r\n"
            count += 1
        }
        return out
    }
}
