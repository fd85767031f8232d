import CInetSupport
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A buffer and the last second's time text, reused by one handler for every event it builds
/// (used from one thread at a time).
public final class EventScratch {
    private var buffer: [UInt8] = []
    var second = Int.min
    var prefix: [UInt8] = []

    public init() {
        buffer.reserveCapacity(1024)
    }

    func take() -> [UInt8] {
        var out: [UInt8] = []
        swap(&out, &buffer)
        if out.capacity < 512 { out.reserveCapacity(1024) }
        return out
    }

    /// The bytes of a published event, for the next one.
    public func recycle(_ bytes: [UInt8]) {
        buffer = bytes
        buffer.removeAll(keepingCapacity: true)
    }
}

/// The JSON members of one event, encoded straight into bytes and kept within the ring's slot:
/// a string that does not fit is cut (at a character) and the event marked `"truncated":true`.
///
/// Strings are escaped for JSON and also for HTML (`<`, `>`, `&` and `'` as `\u00XX`), so an
/// event pasted into a page by a careless consumer still cannot open a tag.
public struct EventBody {
    public private(set) var bytes: [UInt8]
    private let limit: Int
    public private(set) var truncated = false
    /// Room kept for `,"truncated":true`.
    private static let reserve = 18

    /// A body that starts with the common members: time, service, kind.
    public init(limit: Int, time: Int, service: String, kind: String) {
        self.limit = max(limit, 128)
        bytes = []
        bytes.reserveCapacity(min(self.limit, 512))
        bytes.append(contentsOf: #""time":""#.utf8)
        Self.appendTime(time, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
        string("service", service)
        string("kind", kind)
    }

    /// The same in `scratch`'s buffer, with its cached second (a busy UDP service's way: no
    /// allocation per event); give the bytes back with `scratch.recycle` once published.
    public init(limit: Int, time: Int, service: String, kind: String, scratch: EventScratch) {
        self.limit = max(limit, 128)
        bytes = scratch.take()
        bytes.append(contentsOf: #""time":""#.utf8)
        let second = time >= 0 ? time / 1000 : (time - 999) / 1000
        if second != scratch.second {
            scratch.prefix.removeAll(keepingCapacity: true)
            Self.appendTime(second * 1000, to: &scratch.prefix)
            scratch.prefix.removeLast(4)  // "000Z"
            scratch.second = second
        }
        bytes.append(contentsOf: scratch.prefix)
        let millis = time - second * 1000
        bytes.append(UInt8(ascii: "0") + UInt8(millis / 100))
        bytes.append(UInt8(ascii: "0") + UInt8(millis / 10 % 10))
        bytes.append(UInt8(ascii: "0") + UInt8(millis % 10))
        bytes.append(contentsOf: #"Z""#.utf8)
        string("service", service)
        string("kind", kind)
    }

    private var room: Int { limit - Self.reserve - bytes.count }

    private mutating func key(_ key: StaticString) -> Bool {
        guard room > key.utf8CodeUnitCount + 4 else {
            truncated = true
            return false
        }
        bytes.append(UInt8(ascii: ","))
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        return true
    }

    /// A member whose name is not a literal (what a session reports): the name is escaped too.
    private mutating func key(named name: String) -> Bool {
        guard room > name.utf8.count + 4 else {
            truncated = true
            return false
        }
        bytes.append(UInt8(ascii: ","))
        appendQuoted(name.utf8)
        bytes.append(UInt8(ascii: ":"))
        return true
    }

    public mutating func string(named name: String, _ value: String) {
        guard key(named: name) else { return }
        appendQuoted(value.utf8)
    }

    public mutating func int(named name: String, _ value: Int) {
        guard room > 24 + name.utf8.count, key(named: name) else {
            truncated = true
            return
        }
        appendInteger(value)
    }

    public mutating func bool(named name: String, _ value: Bool) {
        guard room > 8 + name.utf8.count, key(named: name) else {
            truncated = true
            return
        }
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func strings(named name: String, _ values: [String]) {
        guard key(named: name) else { return }
        appendList(values)
    }

    public mutating func string(_ name: StaticString, _ value: String) {
        guard key(name) else { return }
        appendQuoted(value.utf8)
    }

    public mutating func string(_ name: StaticString, _ value: Substring) {
        guard key(name) else { return }
        appendQuoted(value.utf8)
    }

    /// An address as `ip:port` (`[v6]:port`); IPv4 written straight from the socket address.
    public mutating func address(_ name: StaticString, _ address: SocketAddress) {
        guard case .v4(let v4) = address else {
            string(name, address.logDescription)
            return
        }
        guard room > 26, key(name) else {
            truncated = true
            return
        }
        // struct sockaddr_in: family (2 bytes), port (2, network order), address (4).
        let raw = withUnsafeBytes(of: v4.address) { $0.loadUnaligned(as: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8).self) }
        bytes.append(UInt8(ascii: "\""))
        for (index, octet) in [raw.4, raw.5, raw.6, raw.7].enumerated() {
            appendDecimal(Int(octet))
            bytes.append(index == 3 ? UInt8(ascii: ":") : UInt8(ascii: "."))
        }
        appendDecimal(Int(raw.2) << 8 | Int(raw.3))
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func appendDecimal(_ value: Int) {
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    /// Text already made printable ASCII by its caller (a DNS name in presentation form):
    /// appended with only JSON's and HTML's escapes.
    public mutating func ascii(_ name: StaticString, _ value: [UInt8]) {
        guard key(name) else { return }
        if !value.withUnsafeBufferPointer({ appendPlain($0) }) { appendEscaped(value) }
    }

    /// Peer bytes as text: invalid UTF-8 becomes U+FFFD.
    public mutating func text<Bytes: Collection>(_ name: StaticString, bytes value: Bytes) where Bytes.Element == UInt8 {
        string(name, String(decoding: value, as: UTF8.self))
    }

    public mutating func int(_ name: StaticString, _ value: Int) {
        guard room > 24, key(name) else {
            truncated = true
            return
        }
        appendInteger(value)
    }

    private mutating func appendInteger(_ value: Int) {
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            // Int.min has no positive counterpart: its digits, one at a time.
            let magnitude = value.magnitude
            var divisor: UInt = 1
            while divisor <= magnitude / 10 { divisor *= 10 }
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(magnitude / divisor % 10))
                divisor /= 10
            }
            return
        }
        appendDecimal(value)
    }

    public mutating func bool(_ name: StaticString, _ value: Bool) {
        guard room > 8, key(name) else {
            truncated = true
            return
        }
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    /// Milliseconds with one decimal, e.g. `12.3`.
    public mutating func milliseconds(_ name: StaticString, nanoseconds: Int64) {
        guard room > 24, key(name) else {
            truncated = true
            return
        }
        let tenths = max(0, nanoseconds) / 100_000
        bytes.append(contentsOf: "\(tenths / 10).\(tenths % 10)".utf8)
    }

    public mutating func strings(_ name: StaticString, _ values: [String]) {
        guard key(name) else { return }
        appendList(values)
    }

    private mutating func appendList(_ values: [String]) {
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            guard room > 8 else {
                truncated = true
                break
            }
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            appendQuoted(value.utf8)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// At most `maximum` bytes as lowercase hex (a bounded view of a binary exchange).
    public mutating func hex<Bytes: Collection>(_ name: StaticString, _ value: Bytes, maximum: Int) where Bytes.Element == UInt8 {
        guard maximum > 0, key(name) else { return }
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        bytes.append(UInt8(ascii: "\""))
        var count = 0
        for byte in value {
            guard count < maximum else { break }
            guard room > 3 else {
                truncated = true
                break
            }
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0F)])
            count += 1
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Bytes that go into a string as they are (no escape, not the start of U+2028/9).
    private static let plain: [Bool] = (0...255).map { byte in
        byte >= 0x20 && byte != 0x22 && byte != 0x5C && byte != 0x3C && byte != 0x3E && byte != 0x26 && byte != 0x27 && byte != 0xE2
    }

    private mutating func appendQuoted(_ utf8: String.UTF8View) {
        // The common case: contiguous text with nothing to escape, copied in one go.
        if utf8.withContiguousStorageIfAvailable({ appendPlain($0) }) == true { return }
        appendEscaped(utf8)
    }

    /// Appends `buffer` as a quoted string when it fits and needs no escape; false otherwise
    /// (nothing appended).
    private mutating func appendPlain(_ buffer: UnsafeBufferPointer<UInt8>) -> Bool {
        guard buffer.count + 2 <= room else { return false }
        let table = Self.plain
        for byte in buffer where !table[Int(byte)] { return false }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: buffer)
        bytes.append(UInt8(ascii: "\""))
        return true
    }

    private mutating func appendQuoted(_ utf8: Substring.UTF8View) {
        appendEscaped(utf8)
    }

    private mutating func appendEscaped<Bytes: Collection>(_ utf8: Bytes) where Bytes.Element == UInt8 {
        bytes.append(UInt8(ascii: "\""))
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            // A whole character fits, or the string ends here.
            var width = 1
            if byte >= 0xF0 { width = 4 } else if byte >= 0xE0 { width = 3 } else if byte >= 0xC0 { width = 2 }
            let escaped = byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x3C || byte == 0x3E || byte == 0x26 || byte == 0x27
            if room < (escaped ? 6 : width) + 1 {
                truncated = true
                break
            }
            if escaped {
                switch byte {
                case 0x22: bytes.append(contentsOf: [0x5C, 0x22])
                case 0x5C: bytes.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
                default:
                    bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
                }
                index = utf8.index(after: index)
                continue
            }
            // U+2028 and U+2029 end a line in JavaScript: escaped too.
            if byte == 0xE2 {
                let second = utf8.index(after: index)
                if second != utf8.endIndex, utf8[second] == 0x80 {
                    let third = utf8.index(after: second)
                    if third != utf8.endIndex, utf8[third] == 0xA8 || utf8[third] == 0xA9 {
                        guard room >= 7 else {
                            truncated = true
                            break
                        }
                        bytes.append(contentsOf: Array((utf8[third] == 0xA8 ? "\\u2028" : "\\u2029").utf8))
                        index = utf8.index(after: third)
                        continue
                    }
                }
            }
            for _ in 0..<width where index != utf8.endIndex {
                bytes.append(utf8[index])
                index = utf8.index(after: index)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// The body, finished: `"truncated":true` added when something was cut.
    public mutating func finish() -> [UInt8] {
        if truncated { bytes.append(contentsOf: #","truncated":true"#.utf8) }
        return bytes
    }

    /// `2026-12-04T04:30:00.123Z` for milliseconds since 1970.
    public static func isoTime(_ milliseconds: Int) -> String {
        var bytes: [UInt8] = []
        appendTime(milliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `2026-12-04T04:30:00.123Z` for milliseconds since 1970.
    static func appendTime(_ milliseconds: Int, to bytes: inout [UInt8]) {
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let millis = milliseconds - seconds * 1000
        var days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil from days (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        var year = yearOfEra + era * 400
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        if month <= 2 { year += 1 }
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = max(0, value)
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(year, 4); bytes.append(UInt8(ascii: "-"))
        digits(month, 2); bytes.append(UInt8(ascii: "-"))
        digits(day, 2); bytes.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2); bytes.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2); bytes.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2); bytes.append(UInt8(ascii: "."))
        digits(millis, 3); bytes.append(UInt8(ascii: "Z"))
    }

    /// Milliseconds since 1970, now.
    public static func now() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int(now.tv_sec) * 1000 + Int(now.tv_nsec) / 1_000_000
    }
}
