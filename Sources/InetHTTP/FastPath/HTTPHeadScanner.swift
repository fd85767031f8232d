/// Reads one HTTP/1.x request head (RFC 9112) from the connection's bytes, only far enough to
/// tell whether the fast path may answer it: a GET or HEAD of an origin-form target, HTTP/1.1
/// or 1.0, with no body and none of the fields that need the full server (ranges, conditional
/// dates, `Expect`, `Upgrade`, `Transfer-Encoding`). Everything it does not recognise as such
/// (an unusual method, a bare LF, obs-fold, a malformed or duplicated field, a head or target
/// over the limits) is `.notFast`: the full parser (llhttp) then reads those same bytes and
/// answers, 400, 414 or 431 included. So the scanner never has to be lenient, and never
/// decides differently from the full parser what a request *is*: a fuzz target checks that
/// every head it takes is the one llhttp reads.
///
/// Offsets are relative to the start of the scanned bytes; nothing is copied.
struct HTTPHeadScanner {
    /// At most this many header fields in a head the fast path takes.
    static let maximumFields = 100

    /// A head the fast path may answer.
    struct Head: Equatable {
        /// HEAD (else GET).
        var isHead: Bool
        /// The request target (origin-form, starts with `/`).
        var target: Range<Int>
        /// The target's path: up to the `?` of a query.
        var path: Range<Int>
        var http10: Bool
        /// Whether the connection stays open after the response (RFC 9112 §9.3).
        var keepAlive: Bool
        var ifNoneMatch: Range<Int>?
        var host: Range<Int>?
        var userAgent: Range<Int>?
        var referer: Range<Int>?
        /// The head's length, its final empty line included.
        var length: Int
    }

    enum Result: Equatable {
        case complete(Head)
        /// More bytes may make it a head the fast path takes.
        case incomplete
        /// For the full parser.
        case notFast
    }

    /// `maximumTarget`: `max_uri_bytes`; `maximumHead`: `max_header_bytes`.
    static func scan(_ bytes: UnsafeRawBufferPointer, maximumTarget: Int, maximumHead: Int) -> Result {
        var cursor = Cursor(bytes: bytes, limit: maximumHead)
        return cursor.head(maximumTarget: maximumTarget)
    }

    private enum Stop: Error {
        case incomplete, notFast
    }

    private struct Cursor {
        let bytes: UnsafeRawBufferPointer
        let limit: Int
        var index = 0

        init(bytes: UnsafeRawBufferPointer, limit: Int) {
            self.bytes = bytes
            self.limit = limit
        }

        /// The byte at `index`, or a stop: `.incomplete` while within the head's limit.
        mutating func peek() throws(Stop) -> UInt8 {
            guard index < bytes.count else { throw index >= limit ? .notFast : .incomplete }
            guard index < limit else { throw .notFast }
            return bytes[index]
        }

        mutating func expect(_ literal: StaticString) throws(Stop) {
            let expected = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
            for byte in expected {
                guard try peek() == byte else { throw .notFast }
                index += 1
            }
        }

        /// CRLF, never a bare LF.
        mutating func lineEnd() throws(Stop) {
            guard try peek() == 0x0D else { throw .notFast }
            index += 1
            guard try peek() == 0x0A else { throw .notFast }
            index += 1
        }

        mutating func head(maximumTarget: Int) -> Result {
            do {
                return .complete(try parse(maximumTarget: maximumTarget))
            } catch {
                return error == .incomplete ? .incomplete : .notFast
            }
        }

        private mutating func parse(maximumTarget: Int) throws(Stop) -> Head {
            // request-line = method SP request-target SP HTTP-version CRLF
            let isHead: Bool
            switch try peek() {
            case UInt8(ascii: "G"): try expect("GET "); isHead = false
            case UInt8(ascii: "H"): try expect("HEAD "); isHead = true
            default: throw .notFast
            }
            let targetStart = index
            guard try peek() == UInt8(ascii: "/") else { throw .notFast }
            var pathEnd: Int?
            while true {
                let byte = try peek()
                if byte == 0x20 { break }
                // Visible ASCII only (RFC 3986 characters and what clients leave unescaped).
                guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "#") else { throw .notFast }
                if byte == UInt8(ascii: "?"), pathEnd == nil { pathEnd = index }
                index += 1
                guard index - targetStart <= maximumTarget else { throw .notFast }
            }
            let target = targetStart..<index
            index += 1
            try expect("HTTP/1.")
            let http10: Bool
            switch try peek() {
            case UInt8(ascii: "1"): http10 = false
            case UInt8(ascii: "0"): http10 = true
            default: throw .notFast
            }
            index += 1
            try lineEnd()

            var head = Head(isHead: isHead, target: target, path: targetStart..<(pathEnd ?? target.upperBound),
                            http10: http10, keepAlive: !http10, length: 0)
            var close = false
            var keepAlive = false
            var fields = 0
            var contentLength = false
            while true {
                let first = try peek()
                if first == 0x0D {
                    try lineEnd()
                    break
                }
                fields += 1
                guard fields <= HTTPHeadScanner.maximumFields else { throw .notFast }
                // field-name = token, then ":" at once (no whitespace before it, RFC 9112 §5.1).
                let nameStart = index
                while true {
                    let byte = try peek()
                    if byte == UInt8(ascii: ":") { break }
                    guard HTTPHeadScanner.isTokenByte(byte) else { throw .notFast }
                    index += 1
                }
                let name = nameStart..<index
                guard !name.isEmpty else { throw .notFast }
                index += 1
                // OWS field-value OWS; no obs-fold, no control bytes but HTAB.
                while true {
                    let byte = try peek()
                    guard byte == 0x20 || byte == 0x09 else { break }
                    index += 1
                }
                let valueStart = index
                var valueEnd = index
                while true {
                    let byte = try peek()
                    if byte == 0x0D { break }
                    guard byte == 0x09 || byte >= 0x20, byte != 0x7F else { throw .notFast }
                    index += 1
                    if byte != 0x20 && byte != 0x09 { valueEnd = index }
                }
                try lineEnd()
                let value = valueStart..<valueEnd
                switch HTTPHeadScanner.field(bytes, name) {
                case .other: break
                case .refused: throw .notFast
                case .contentLength:
                    guard !contentLength, value.count == 1, bytes[value.lowerBound] == UInt8(ascii: "0") else { throw .notFast }
                    contentLength = true
                case .connection:
                    for option in HTTPHeadScanner.tokens(bytes, value) {
                        if HTTPHeadScanner.equalsLowercase(bytes, option, "close") { close = true }
                        else if HTTPHeadScanner.equalsLowercase(bytes, option, "keep-alive") { keepAlive = true }
                        else if HTTPHeadScanner.equalsLowercase(bytes, option, "upgrade") { throw .notFast }
                    }
                case .host:
                    guard head.host == nil else { throw .notFast }
                    head.host = value
                case .ifNoneMatch:
                    guard head.ifNoneMatch == nil else { throw .notFast }
                    head.ifNoneMatch = value
                case .userAgent:
                    if head.userAgent == nil { head.userAgent = value }
                case .referer:
                    if head.referer == nil { head.referer = value }
                }
            }
            // HTTP/1.1 needs exactly one Host (RFC 9112 §3.2): the full server answers otherwise.
            guard http10 || head.host != nil else { throw .notFast }
            head.keepAlive = !close && (!http10 || keepAlive)
            head.length = index
            return head
        }
    }

    private enum Field {
        case other, refused, contentLength, connection, host, ifNoneMatch, userAgent, referer
    }

    /// What the fast path makes of a field, by its name (ASCII case-insensitive).
    private static func field(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Field {
        // Quick rejection by length: the names that matter are 4 to 19 bytes long.
        switch name.count {
        case 4: return equalsLowercase(bytes, name, "host") ? .host : .other
        case 5: return equalsLowercase(bytes, name, "range") ? .refused : .other
        case 6: return equalsLowercase(bytes, name, "expect") ? .refused : .other
        case 7:
            if equalsLowercase(bytes, name, "referer") { return .referer }
            return equalsLowercase(bytes, name, "upgrade") ? .refused : .other
        case 8:
            return equalsLowercase(bytes, name, "if-match") || equalsLowercase(bytes, name, "if-range") ? .refused : .other
        case 10:
            if equalsLowercase(bytes, name, "connection") { return .connection }
            return equalsLowercase(bytes, name, "user-agent") ? .userAgent : .other
        case 13: return equalsLowercase(bytes, name, "if-none-match") ? .ifNoneMatch : .other
        case 14:
            if equalsLowercase(bytes, name, "content-length") { return .contentLength }
            return equalsLowercase(bytes, name, "http2-settings") ? .refused : .other
        case 17:
            return equalsLowercase(bytes, name, "if-modified-since") || equalsLowercase(bytes, name, "transfer-encoding") ? .refused : .other
        case 19: return equalsLowercase(bytes, name, "if-unmodified-since") ? .refused : .other
        default: return .other
        }
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Whether `bytes[range]` is `lowercase` ignoring ASCII case (`lowercase` is lowercase).
    static func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            for offset in 0..<range.count {
                var byte = bytes[range.lowerBound + offset]
                if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 32 }
                guard byte == expected[offset] else { return false }
            }
            return true
        }
    }

    /// The comma-separated elements of a list value, trimmed (RFC 9110 §5.6.1).
    static func tokens(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) -> [Range<Int>] {
        var found: [Range<Int>] = []
        var start = value.lowerBound
        for index in value.lowerBound...value.upperBound {
            guard index == value.upperBound || bytes[index] == UInt8(ascii: ",") else { continue }
            var lower = start
            var upper = index
            while lower < upper, bytes[lower] == 0x20 || bytes[lower] == 0x09 { lower += 1 }
            while upper > lower, bytes[upper - 1] == 0x20 || bytes[upper - 1] == 0x09 { upper -= 1 }
            if lower < upper { found.append(lower..<upper) }
            start = index + 1
        }
        return found
    }
}
