/// A captured message as a reader sees it: its header fields (RFC 5322, unfolded, RFC 2047
/// encoded words decoded), its text and HTML parts (MIME, RFC 2045/2046: base64 and
/// quoted-printable decoded, multipart followed a few levels deep) and its attachments.
///
/// The bytes are whatever a client sent: every length is bounded, nothing is trusted, and a
/// malformed message still gives what could be read (at worst its bytes as text).
public struct MailMessageView: Sendable, Equatable {
    public struct Attachment: Sendable, Equatable {
        public var filename: String
        public var contentType: String
        public var size: Int
    }

    public var headers: [(name: String, value: String)]
    public var text: String?
    public var html: String?
    public var attachments: [Attachment] = []

    public static func == (a: Self, b: Self) -> Bool {
        a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
            && a.text == b.text && a.html == b.html && a.attachments == b.attachments
    }

    /// The first field of that name (case-insensitive).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    /// The most header fields kept, and MIME parts looked at; how deep multiparts are followed.
    public static let maximumFields = 500
    public static let maximumParts = 100
    public static let maximumDepth = 4

    /// Reads a whole message (at most `maximumBytes` of it are looked at).
    public init(bytes: [UInt8], maximumBytes: Int = 16 << 20) {
        let message = bytes.prefix(maximumBytes)
        let (fields, bodyStart) = Self.fields(message, from: message.startIndex)
        headers = fields.map { ($0.name, Self.decodeWords($0.value)) }
        var parts = 0
        var found = Found()
        Self.walk(message[bodyStart...], fields: fields, depth: 0, parts: &parts, found: &found)
        text = found.text
        html = found.html
        attachments = found.attachments
    }

    /// Only the header fields (the list of messages needs no more).
    public static func headerFields(_ bytes: ArraySlice<UInt8>) -> [(name: String, value: String)] {
        fields(bytes, from: bytes.startIndex).fields.map { ($0.name, decodeWords($0.value)) }
    }

    private struct Found {
        var text: String?
        var html: String?
        var attachments: [Attachment] = []
    }

    // MARK: - Header fields

    /// The fields of a header block starting at `start`, and where its body starts (after the
    /// empty line; the end when there is none). Folded lines are joined; lines that are not
    /// fields are skipped.
    static func fields(_ bytes: ArraySlice<UInt8>, from start: Int) -> (fields: [(name: String, value: String)], bodyStart: Int) {
        var fields: [(name: String, value: String)] = []
        var index = start
        var current: (name: String, value: [UInt8])?
        func flush() {
            if let field = current, fields.count < maximumFields {
                fields.append((field.name, String(decoding: field.value, as: UTF8.self).trimmingSpaces()))
            }
            current = nil
        }
        while index < bytes.endIndex {
            let lineEnd = bytes[index...].firstIndex(of: 0x0A) ?? bytes.endIndex
            var line = bytes[index..<lineEnd]
            if line.last == 0x0D { line = line.dropLast() }
            let next = lineEnd < bytes.endIndex ? lineEnd + 1 : bytes.endIndex
            if line.isEmpty {
                flush()
                return (fields, next)
            }
            if line.first == 0x20 || line.first == 0x09 {
                // A folded continuation (RFC 5322 2.2.3), kept bounded.
                if current != nil, current!.value.count < 65_536 { current!.value.append(0x20); current!.value.append(contentsOf: line.drop { $0 == 0x20 || $0 == 0x09 }) }
            } else if let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex, colon - line.startIndex <= 76,
                      line[line.startIndex..<colon].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
                flush()
                current = (String(decoding: line[line.startIndex..<colon], as: UTF8.self), Array(line[(colon + 1)...].prefix(65_536)))
            }
            index = next
        }
        flush()
        return (fields, bytes.endIndex)
    }

    /// RFC 2047 encoded words (`=?UTF-8?B?…?=`, `=?ISO-8859-1?Q?…?=`) decoded; anything that is
    /// not one stays as it is. Whitespace between two encoded words goes (6.2).
    public static func decodeWords(_ value: String) -> String {
        guard value.contains("=?") else { return value }
        var out = ""
        var rest = Substring(value)
        var lastWasWord = false
        var pendingSpace = ""
        while let start = rest.firstRange(of: "=?") {
            let before = rest[rest.startIndex..<start.lowerBound]
            let afterStart = rest[start.upperBound...]
            // charset?encoding?text?=
            let pieces = afterStart.split(separator: "?", maxSplits: 3, omittingEmptySubsequences: false)
            guard pieces.count == 4, pieces[3].hasPrefix("="), pieces[1].count == 1,
                  let decoded = decodeWord(charset: pieces[0], encoding: pieces[1], text: pieces[2]) else {
                out += pendingSpace + before + "=?"
                pendingSpace = ""
                lastWasWord = false
                rest = afterStart
                continue
            }
            if !(lastWasWord && before.allSatisfy({ $0 == " " || $0 == "\t" })) { out += pendingSpace + before }
            pendingSpace = ""
            out += decoded
            lastWasWord = true
            rest = pieces[3].dropFirst()
            if out.utf8.count > 65_536 { break }
        }
        return out + pendingSpace + rest
    }

    private static func decodeWord(charset: Substring, encoding: Substring, text: Substring) -> String? {
        guard text.utf8.count <= 1024 else { return nil }
        var bytes: [UInt8]
        switch encoding.uppercased() {
        case "B":
            guard let decoded = base64(Array(text.utf8)) else { return nil }
            bytes = decoded
        case "Q":
            bytes = quotedPrintable(Array(text.utf8.map { $0 == UInt8(ascii: "_") ? 0x20 : $0 }), soft: false)
        default:
            return nil
        }
        return string(bytes, charset: String(charset.split(separator: "*").first ?? charset))
    }

    /// Bytes in a charset: UTF-8 (invalid sequences as U+FFFD), ISO-8859-1 and US-ASCII exactly;
    /// anything else read as UTF-8.
    static func string(_ bytes: [UInt8], charset: String) -> String {
        switch charset.lowercased() {
        case "iso-8859-1", "latin1", "iso8859-1", "windows-1252", "cp1252":
            return String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
        default:
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    // MARK: - MIME

    /// A parameter of a structured field: `boundary` of `multipart/mixed; boundary="x"`.
    static func parameter(_ name: String, in value: String) -> String? {
        for piece in value.split(separator: ";").dropFirst() {
            let pair = piece.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingSpaces().lowercased() == name else { continue }
            var text = pair[1].trimmingSpaces()
            if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = String(text.dropFirst().dropLast()) }
            return text
        }
        return nil
    }

    private static func walk(_ body: ArraySlice<UInt8>, fields: [(name: String, value: String)], depth: Int, parts: inout Int, found: inout Found) {
        parts += 1
        guard parts <= maximumParts else { return }
        let contentType = fields.last { $0.name.lowercased() == "content-type" }?.value ?? "text/plain"
        let type = (contentType.split(separator: ";").first.map { $0.trimmingSpaces().lowercased() }) ?? "text/plain"
        let disposition = fields.last { $0.name.lowercased() == "content-disposition" }?.value ?? ""
        let encoding = (fields.last { $0.name.lowercased() == "content-transfer-encoding" }?.value ?? "").trimmingSpaces().lowercased()
        if type.hasPrefix("multipart/"), depth < maximumDepth, let boundary = parameter("boundary", in: contentType),
           !boundary.isEmpty, boundary.utf8.count <= 70 {
            for part in split(body, boundary: Array(boundary.utf8)) {
                let (partFields, start) = self.fields(part, from: part.startIndex)
                walk(part[start...], fields: partFields, depth: depth + 1, parts: &parts, found: &found)
                if parts > maximumParts { return }
            }
            return
        }
        let filename = parameter("filename", in: disposition) ?? parameter("name", in: contentType)
        let decoded = decode(body, encoding: encoding)
        let isAttachment = disposition.lowercased().hasPrefix("attachment") || filename != nil
        let charset = parameter("charset", in: contentType) ?? "utf-8"
        if !isAttachment, type == "text/plain", found.text == nil {
            found.text = string(decoded, charset: charset)
        } else if !isAttachment, type == "text/html", found.html == nil {
            found.html = string(decoded, charset: charset)
        } else if !type.hasPrefix("multipart/") {
            if found.attachments.count < maximumParts {
                found.attachments.append(Attachment(filename: decodeWords(filename ?? ""), contentType: type, size: decoded.count))
            }
        }
    }

    /// The parts between `--boundary` lines (the preamble and epilogue left out).
    static func split(_ body: ArraySlice<UInt8>, boundary: [UInt8]) -> [ArraySlice<UInt8>] {
        let delimiter: [UInt8] = [UInt8(ascii: "-"), UInt8(ascii: "-")] + boundary
        var parts: [ArraySlice<UInt8>] = []
        var partStart: Int?
        var index = body.startIndex
        while index < body.endIndex {
            let lineEnd = body[index...].firstIndex(of: 0x0A) ?? body.endIndex
            var line = body[index..<lineEnd]
            if line.last == 0x0D { line = line.dropLast() }
            while line.last == 0x20 || line.last == 0x09 { line = line.dropLast() }
            if line.count >= delimiter.count, line.prefix(delimiter.count).elementsEqual(delimiter) {
                let rest = line.dropFirst(delimiter.count)
                if rest.isEmpty || rest.elementsEqual([UInt8(ascii: "-"), UInt8(ascii: "-")]) {
                    if let start = partStart {
                        // The line break before the delimiter belongs to it (RFC 2046 5.1.1).
                        var end = index
                        if end > start, body[end - 1] == 0x0A { end -= 1 }
                        if end > start, body[end - 1] == 0x0D { end -= 1 }
                        parts.append(body[start..<end])
                        if parts.count >= maximumParts { return parts }
                    }
                    if !rest.isEmpty { return parts }
                    partStart = lineEnd < body.endIndex ? lineEnd + 1 : body.endIndex
                }
            }
            index = lineEnd < body.endIndex ? lineEnd + 1 : body.endIndex
        }
        // No closing delimiter: the last part runs to the end.
        if let start = partStart, start < body.endIndex { parts.append(body[start...]) }
        return parts
    }

    static func decode(_ body: ArraySlice<UInt8>, encoding: String) -> [UInt8] {
        switch encoding {
        case "base64": return base64(Array(body), lenient: true) ?? Array(body)
        case "quoted-printable": return quotedPrintable(Array(body), soft: true)
        default: return Array(body)
        }
    }

    /// Base64 (RFC 4648); `lenient` skips what is not of the alphabet (line breaks in a part).
    static func base64(_ input: [UInt8], lenient: Bool = false) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in input {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
            case UInt8(ascii: "="): return out
            default:
                if lenient { continue }
                return nil
            }
            accumulator = (accumulator << 6) | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xFF))
            }
        }
        return out
    }

    /// Quoted-printable (RFC 2045 6.7); `soft`: `=` at a line's end joins the lines.
    static func quotedPrintable(_ input: [UInt8], soft: Bool) -> [UInt8] {
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "=") {
                if soft, index + 1 < input.count, input[index + 1] == 0x0A { index += 2; continue }
                if soft, index + 2 < input.count, input[index + 1] == 0x0D, input[index + 2] == 0x0A { index += 3; continue }
                if index + 2 < input.count, let high = hex(input[index + 1]), let low = hex(input[index + 2]) {
                    out.append(high << 4 | low)
                    index += 3
                    continue
                }
            }
            out.append(byte)
            index += 1
        }
        return out
    }
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" || first == "\r" || first == "\n" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" || last == "\r" || last == "\n" { view = view.dropLast() }
        return String(view)
    }
}
