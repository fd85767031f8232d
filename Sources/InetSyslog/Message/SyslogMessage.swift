/// One syslog message as read from the wire: RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID
/// [SD] MSG`) or RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG[pid]: MSG`), and whatever a sender
/// makes of either. Parsing never fails: what cannot be read as a header stays in `message`
/// and `malformed` says why (RFC 3164 §4.3.3: a relay keeps what it cannot parse, with PRI 13).
public struct SyslogMessage: Sendable, Equatable {
    public enum Format: String, Sendable {
        case rfc5424
        case rfc3164
    }

    /// One SD-ELEMENT: its id and its parameters in order (a name may repeat).
    public struct Element: Sendable, Equatable {
        public var id: String
        public var parameters: [Parameter]
    }

    public struct Parameter: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public var format: Format
    /// 0...191 (facility × 8 + severity); 13 (user.notice) when the sender gave none.
    public var priority: Int = 13
    /// False when the message had no readable `<PRI>`.
    public var priorityGiven = true
    public var version: Int?
    public var timestamp: String?
    public var hostname: String?
    public var app: String?
    public var procid: String?
    public var msgid: String?
    public var structuredData: [Element] = []
    /// The free-form part (for RFC 5424 without its BOM).
    public var message: ArraySlice<UInt8> = []
    /// Why part of the header could not be read (it is then in `message`).
    public var malformed: String?

    public var facility: Int { priority >> 3 }
    public var severity: Int { priority & 7 }

    public init(format: Format) {
        self.format = format
    }

    public static let facilityNames = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
        "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    ]
    public static let severityNames = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

    /// A facility's number from its name (`user`, `local0`…) or number.
    public static func facility(named name: String) -> Int? {
        if let number = Int(name), (0..<24).contains(number) { return number }
        if name.lowercased() == "security" { return 4 }  // the old name of auth
        return facilityNames.firstIndex(of: name.lowercased())
    }

    /// A severity's number from its name (`err`, `error`, `warning`, `warn`…) or number.
    public static func severity(named name: String) -> Int? {
        if let number = Int(name), (0..<8).contains(number) { return number }
        switch name.lowercased() {
        case "emergency", "panic": return 0
        case "critical": return 2
        case "error": return 3
        case "warn": return 4
        case "informational": return 6
        default: return severityNames.firstIndex(of: name.lowercased())
        }
    }

    // MARK: - Parsing

    /// Reads one message (one datagram, or one frame of a TCP stream). Trailing LF, CR and NUL
    /// are not part of it.
    public static func parse(_ bytes: ArraySlice<UInt8>) -> SyslogMessage {
        var end = bytes.endIndex
        while end > bytes.startIndex, [0x0A, 0x0D, 0x00].contains(bytes[end - 1]) { end -= 1 }
        var cursor = Cursor(bytes[bytes.startIndex..<end])
        guard let priority = cursor.priority() else {
            var message = SyslogMessage(format: .rfc3164)
            message.priorityGiven = false
            message.message = cursor.rest
            message.malformed = "no <PRI>"
            return message
        }
        if let version = cursor.version() {
            return parse5424(&cursor, priority: priority, version: version)
        }
        return parse3164(&cursor, priority: priority)
    }

    static func parse5424(_ cursor: inout Cursor, priority: Int, version: Int) -> SyslogMessage {
        var message = SyslogMessage(format: .rfc5424)
        message.priority = priority
        message.version = version
        func fail(_ reason: String, at mark: Int) -> SyslogMessage {
            var failed = message
            failed.malformed = reason
            failed.message = cursor.bytes[mark...]
            return failed
        }
        var mark = cursor.index
        guard let stamp = cursor.token(maximum: 64) else { return fail("no TIMESTAMP", at: mark) }
        if stamp != "-" {
            guard Self.isRFC3339(stamp) else { return fail("TIMESTAMP is not RFC 3339", at: mark) }
            message.timestamp = stamp
        }
        let fields: [(String, Int, WritableKeyPath<SyslogMessage, String?>)] = [
            ("HOSTNAME", 255, \.hostname), ("APP-NAME", 48, \.app), ("PROCID", 128, \.procid), ("MSGID", 32, \.msgid),
        ]
        for (name, limit, path) in fields {
            mark = cursor.index
            guard let value = cursor.token(maximum: limit) else { return fail("no \(name) (1 to \(limit) printable characters)", at: mark) }
            if value != "-" { message[keyPath: path] = value }
        }
        mark = cursor.index
        switch cursor.structuredData() {
        case .success(let elements): message.structuredData = elements
        case .failure(let error): return fail(error.reason, at: mark)
        }
        if cursor.at(0x20) { cursor.index += 1 }
        var text = cursor.rest
        if text.starts(with: [0xEF, 0xBB, 0xBF]) { text = text.dropFirst(3) }
        message.message = text
        return message
    }

    static func parse3164(_ cursor: inout Cursor, priority: Int) -> SyslogMessage {
        var message = SyslogMessage(format: .rfc3164)
        message.priority = priority
        let start = cursor.index
        if let stamp = cursor.bsdTimestamp() {
            message.timestamp = stamp
        } else if let stamp = cursor.token(maximum: 64), Self.isRFC3339(stamp, zoneOptional: true) {
            // rsyslog's forwarding format: an RFC 3339 time in a 3164 header (loggen's has no zone).
            message.timestamp = stamp
        } else {
            cursor.index = start
        }
        if message.timestamp != nil {
            // The HOSTNAME follows the TIMESTAMP, unless the next word already is the TAG.
            let mark = cursor.index
            if let word = cursor.token(maximum: 255), !word.hasSuffix(":"), !word.contains("["), cursor.index < cursor.bytes.endIndex {
                message.hostname = word
            } else {
                cursor.index = mark
            }
        }
        let mark = cursor.index
        if let (tag, pid) = cursor.tag() {
            message.app = tag
            message.procid = pid
        } else {
            cursor.index = mark
        }
        message.message = cursor.rest
        return message
    }

    /// `YYYY-MM-DDTHH:MM:SS[.frac]` then `Z` or `±HH:MM` (RFC 5424 §6.2.3).
    static func isRFC3339(_ text: String, zoneOptional: Bool = false) -> Bool {
        let b = Array(text.utf8)
        func digits(_ range: Range<Int>) -> Bool { range.upperBound <= b.count && b[range].allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        guard b.count >= (zoneOptional ? 19 : 20), digits(0..<4), b[4] == 0x2D, digits(5..<7), b[7] == 0x2D, digits(8..<10), b[10] == 0x54 || b[10] == 0x74,
              digits(11..<13), b[13] == 0x3A, digits(14..<16), b[16] == 0x3A, digits(17..<19) else { return false }
        var i = 19
        if i < b.count, b[i] == 0x2E {
            i += 1
            let start = i
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            guard i > start, i - start <= 6 else { return false }
        }
        guard i < b.count else { return zoneOptional }
        if b[i] == 0x5A || b[i] == 0x7A { return i + 1 == b.count }
        guard b[i] == 0x2B || b[i] == 0x2D, b.count == i + 6, digits(i + 1..<i + 3), b[i + 3] == 0x3A, digits(i + 4..<i + 6) else { return false }
        return true
    }
}

/// A position in a message's bytes.
struct Cursor {
    let bytes: ArraySlice<UInt8>
    var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    var rest: ArraySlice<UInt8> { bytes[index...] }

    func at(_ byte: UInt8) -> Bool { index < bytes.endIndex && bytes[index] == byte }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    /// `<0>` … `<191>`.
    mutating func priority() -> Int? {
        guard at(0x3C) else { return nil }
        var i = index + 1
        var value = 0
        while i < bytes.endIndex, i - index <= 3, Self.isDigit(bytes[i]) {
            value = value * 10 + Int(bytes[i] - 0x30)
            i += 1
        }
        guard i > index + 1, i < bytes.endIndex, bytes[i] == 0x3E, value <= 191 else { return nil }
        index = i + 1
        return value
    }

    /// RFC 5424's VERSION (1 or 2 digits, not 0) and its SP.
    mutating func version() -> Int? {
        var i = index
        var value = 0
        while i < bytes.endIndex, i - index < 2, Self.isDigit(bytes[i]) {
            value = value * 10 + Int(bytes[i] - 0x30)
            i += 1
        }
        guard i > index, bytes[index] != 0x30, i < bytes.endIndex, bytes[i] == 0x20 else { return nil }
        index = i + 1
        return value
    }

    /// A word of 1...maximum printable US-ASCII characters and the SP after it (or the end).
    mutating func token(maximum: Int) -> String? {
        var i = index
        while i < bytes.endIndex, bytes[i] != 0x20 {
            guard bytes[i] > 0x20, bytes[i] < 0x7F, i - index < maximum else { return nil }
            i += 1
        }
        guard i > index else { return nil }
        let word = String(decoding: bytes[index..<i], as: UTF8.self)
        index = i < bytes.endIndex ? i + 1 : i
        return word
    }

    /// `Mmm dd hh:mm:ss` (RFC 3164 §4.1.2; a day below 10 padded with a space) and its SP.
    mutating func bsdTimestamp() -> String? {
        guard bytes.endIndex - index >= 15 else { return nil }
        let b = Array(bytes[index..<index + 15])
        let month = String(decoding: b[0..<3], as: UTF8.self)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard months.contains(month), b[3] == 0x20, b[4] == 0x20 || Self.isDigit(b[4]), Self.isDigit(b[5]), b[6] == 0x20,
              Self.isDigit(b[7]), Self.isDigit(b[8]), b[9] == 0x3A, Self.isDigit(b[10]), Self.isDigit(b[11]), b[12] == 0x3A,
              Self.isDigit(b[13]), Self.isDigit(b[14]) else { return nil }
        index += 15
        if at(0x20) { index += 1 }
        return String(decoding: b, as: UTF8.self)
    }

    /// `TAG:` or `TAG[PID]:` (RFC 3164 §4.1.3, with the usual pid), and the SP after it.
    mutating func tag() -> (String, String?)? {
        var i = index
        while i < bytes.endIndex, i - index < 48 {
            let byte = bytes[i]
            guard byte > 0x20, byte < 0x7F, byte != 0x5B, byte != 0x3A else { break }
            i += 1
        }
        guard i > index, i < bytes.endIndex else { return nil }
        let name = String(decoding: bytes[index..<i], as: UTF8.self)
        var pid: String?
        if bytes[i] == 0x5B {
            let start = i + 1
            var j = start
            while j < bytes.endIndex, j - start < 128, bytes[j] > 0x20, bytes[j] < 0x7F, bytes[j] != 0x5D { j += 1 }
            guard j > start, j < bytes.endIndex, bytes[j] == 0x5D else { return nil }
            pid = String(decoding: bytes[start..<j], as: UTF8.self)
            i = j + 1
        }
        guard i < bytes.endIndex, bytes[i] == 0x3A else { return nil }
        i += 1
        if i < bytes.endIndex, bytes[i] == 0x20 { i += 1 }
        index = i
        return (name, pid)
    }

    struct SDError: Error {
        var reason: String
    }

    /// `-` or one or more `[SD-ID *(SP PARAM-NAME="PARAM-VALUE")]` (RFC 5424 §6.3).
    mutating func structuredData() -> Result<[SyslogMessage.Element], SDError> {
        if at(0x2D) {
            index += 1
            guard index == bytes.endIndex || at(0x20) else { return .failure(SDError(reason: "STRUCTURED-DATA is neither - nor [ ]")) }
            return .success([])
        }
        guard at(0x5B) else { return .failure(SDError(reason: "no STRUCTURED-DATA")) }
        var elements: [SyslogMessage.Element] = []
        while at(0x5B) {
            index += 1
            guard let id = sdName() else { return .failure(SDError(reason: "SD-ID is not 1 to 32 printable characters")) }
            var element = SyslogMessage.Element(id: id, parameters: [])
            while at(0x20) {
                index += 1
                guard let name = sdName() else { return .failure(SDError(reason: "PARAM-NAME is not 1 to 32 printable characters")) }
                guard at(0x3D) else { return .failure(SDError(reason: "no = after PARAM-NAME \(name)")) }
                index += 1
                guard at(0x22) else { return .failure(SDError(reason: "PARAM-VALUE of \(name) is not quoted")) }
                index += 1
                var value: [UInt8] = []
                var closed = false
                while index < bytes.endIndex {
                    let byte = bytes[index]
                    if byte == 0x5C, index + 1 < bytes.endIndex, [0x22, 0x5C, 0x5D].contains(bytes[index + 1]) {
                        value.append(bytes[index + 1])
                        index += 2
                    } else if byte == 0x22 {
                        index += 1
                        closed = true
                        break
                    } else {
                        value.append(byte)
                        index += 1
                    }
                }
                guard closed else { return .failure(SDError(reason: "PARAM-VALUE of \(name) is not closed")) }
                element.parameters.append(.init(name: name, value: String(decoding: value, as: UTF8.self)))
            }
            guard at(0x5D) else { return .failure(SDError(reason: "SD-ELEMENT \(id) is not closed by ]")) }
            index += 1
            elements.append(element)
        }
        guard index == bytes.endIndex || at(0x20) else { return .failure(SDError(reason: "no SP after STRUCTURED-DATA")) }
        return .success(elements)
    }

    /// SD-NAME: 1*32 PRINTUSASCII except `=`, SP, `]` and `"`.
    mutating func sdName() -> String? {
        var i = index
        while i < bytes.endIndex, i - index < 32 {
            let byte = bytes[i]
            guard byte > 0x20, byte < 0x7F, byte != 0x3D, byte != 0x5D, byte != 0x22 else { break }
            i += 1
        }
        guard i > index else { return nil }
        if i < bytes.endIndex, i - index == 32, bytes[i] > 0x20, bytes[i] < 0x7F, ![0x3D, 0x5D, 0x22].contains(bytes[i]) { return nil }
        let name = String(decoding: bytes[index..<i], as: UTF8.self)
        index = i
        return name
    }
}
