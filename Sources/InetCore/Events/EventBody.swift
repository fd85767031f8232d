import CInetSupport
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The bytes an event is encoded into outside a ring: a fixed block of raw memory, so encoding
/// appends with a bounds check and a store (no array growth, no uniqueness check). An event
/// published to a ring is encoded in its slot instead.
final class EventStorage {
    let pointer: UnsafeMutablePointer<UInt8>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        pointer = .allocate(capacity: capacity)
    }

    deinit {
        pointer.deallocate()
    }
}

/// The JSON members particular to one event, encoded straight into bytes and kept within the
/// ring's slot, each preceded by a comma (`,"qname":"a.example.",…`): a string that does not fit
/// is cut (at a character) and the event marked `"truncated":true`.
///
/// Strings are escaped for JSON and also for HTML (`<`, `>`, `&` and `'` as `\u00XX`), so an
/// event pasted into a page by a careless consumer still cannot open a tag.
public struct EventBody {
    /// The memory the body is encoded into, kept alive (nil: a ring slot's, the ring's).
    private let storage: EventStorage?
    private let base: UnsafeMutablePointer<UInt8>
    private var count = 0
    private let limit: Int
    public private(set) var truncated = false
    private var marked = false
    /// Room kept for `,"truncated":true`.
    private static let reserve = 18

    /// The bytes encoded so far.
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }

    /// An empty body. The members every event has (id, time, service, kind) live in the
    /// ring's slot header, not here: the reader writes them in front (`EventLine`), so the
    /// emitting event loop encodes only what is particular to the event.
    public init(limit: Int) {
        self.limit = max(limit, 128)
        let storage = EventStorage(capacity: self.limit)
        self.storage = storage
        base = storage.pointer
    }

    /// A body encoded straight into a ring's slot (`EventRingWriter.publish(id:…:fill:)`):
    /// `limit` is the slot's room, the memory the ring's.
    init(slot: UnsafeMutableRawPointer, limit: Int) {
        self.limit = limit
        storage = nil
        base = slot.assumingMemoryBound(to: UInt8.self)
    }

    // MARK: - Raw appends (bounded by the storage: past it, bytes are dropped and the body marked)

    @inline(__always)
    private mutating func append(_ byte: UInt8) {
        guard count < limit else {
            truncated = true
            return
        }
        base[count] = byte
        count += 1
    }

    @inline(__always)
    private mutating func append(_ buffer: UnsafeBufferPointer<UInt8>) {
        guard let source = buffer.baseAddress, buffer.count > 0 else { return }
        guard buffer.count <= limit - count else {
            truncated = true
            return
        }
        (base + count).update(from: source, count: buffer.count)
        count += buffer.count
    }

    @inline(__always)
    private mutating func append(contentsOf text: StaticString) {
        text.withUTF8Buffer { append($0) }
    }

    private mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    private var room: Int { limit - Self.reserve - count }

    @inline(__always)
    private mutating func key(_ key: StaticString) -> Bool {
        let length = key.utf8CodeUnitCount
        guard room > length + 4 else {
            truncated = true
            return false
        }
        // `,"key":` with one bounds check (the room above covers it).
        base[count] = UInt8(ascii: ",")
        base[count + 1] = UInt8(ascii: "\"")
        (base + count + 2).update(from: key.utf8Start, count: length)
        base[count + 2 + length] = UInt8(ascii: "\"")
        base[count + 3 + length] = UInt8(ascii: ":")
        count += length + 4
        return true
    }

    /// A member whose name is not a literal (what a session reports): the name is escaped too.
    private mutating func key(named name: String) -> Bool {
        guard room > name.utf8.count + 4 else {
            truncated = true
            return false
        }
        append(UInt8(ascii: ","))
        appendQuoted(name.utf8)
        append(UInt8(ascii: ":"))
        return true
    }

    /// Members another body encoded (`finish()`'s bytes): appended whole, or not at all when
    /// they do not fit.
    mutating func members(_ encoded: [UInt8]) {
        guard encoded.count <= room else {
            truncated = true
            return
        }
        append(contentsOf: encoded)
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
        append(contentsOf: value ? "true" : "false")
    }

    public mutating func strings(named name: String, _ values: [String]) {
        guard key(named: name) else { return }
        appendList(values)
    }

    public mutating func string(_ name: StaticString, _ value: String) {
        guard key(name) else { return }
        appendQuoted(value.utf8)
    }

    /// A member whose value is a literal (`"udp"`, `"NOERROR"`): key and value copied with one
    /// bounds check and no `String` on the way; the literal's bytes are still checked, and one
    /// that needs an escape is escaped as `string` does it (never trusted).
    @inline(__always)
    public mutating func plain(_ name: StaticString, _ value: StaticString) {
        let length = value.utf8CodeUnitCount
        guard value.hasPointerRepresentation, room > length + 2, key(name) else {
            if !value.hasPointerRepresentation { string(name, value.description) } else { truncated = true }
            return
        }
        let text = UnsafeBufferPointer(start: value.utf8Start, count: length)
        if !appendPlain(text) { appendEscaped(text) }
    }

    /// Members encoded once beforehand (`EventMembers`, e.g. a socket's transport and port):
    /// copied whole, or not at all when they do not fit.
    @inline(__always)
    public mutating func members(_ encoded: EventMembers) {
        guard encoded.bytes.count <= room else {
            truncated = true
            return
        }
        encoded.bytes.withUnsafeBufferPointer { append($0) }
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
        append(UInt8(ascii: "\""))
        appendDecimal(Int(raw.4))
        append(UInt8(ascii: "."))
        appendDecimal(Int(raw.5))
        append(UInt8(ascii: "."))
        appendDecimal(Int(raw.6))
        append(UInt8(ascii: "."))
        appendDecimal(Int(raw.7))
        append(UInt8(ascii: ":"))
        appendDecimal(Int(raw.2) << 8 | Int(raw.3))
        append(UInt8(ascii: "\""))
    }

    /// A value of 0 or more, straight into the storage.
    private mutating func appendDecimal(_ value: Int) {
        let value = max(0, value)
        let width = Self.decimalWidth(value)
        guard width <= limit - count else {
            truncated = true
            return
        }
        Self.writeDecimal(value, width: width, at: base + count)
        count += width
    }

    /// How many digits a value of 0 or more has.
    static func decimalWidth(_ value: Int) -> Int {
        var width = 1
        var rest = value / 10
        while rest > 0 {
            width += 1
            rest /= 10
        }
        return width
    }

    /// Writes the `width` digits of a value of 0 or more at `start`, from the right (one
    /// division by a constant a digit, none by a variable).
    static func writeDecimal(_ value: Int, width: Int, at start: UnsafeMutablePointer<UInt8>) {
        var rest = value
        var index = width
        while index > 0 {
            index -= 1
            start[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
    }

    /// Text already made printable ASCII by its caller (a DNS name in presentation form):
    /// appended with only JSON's and HTML's escapes.
    public mutating func ascii(_ name: StaticString, _ value: [UInt8]) {
        value.withUnsafeBufferPointer { ascii(name, $0) }
    }

    /// The same from a buffer (e.g. a name decoded into stack memory).
    public mutating func ascii(_ name: StaticString, _ value: UnsafeBufferPointer<UInt8>) {
        guard key(name) else { return }
        if !appendPlain(value) { appendEscaped(value) }
    }

    /// A string written in place by `write` (e.g. a DNS name in presentation form, decoded
    /// straight from the wire): each byte is escaped as `string` escapes it, bytes outside
    /// printable ASCII as `\u00XX`. When `write` returns false the member is the empty string.
    public mutating func text(_ name: StaticString, writing write: (inout EventTextWriter) -> Bool) {
        guard key(name) else { return }
        append(UInt8(ascii: "\""))
        let start = count
        var writer = EventTextWriter(base: base, count: count, end: count + max(0, room - 1))
        if write(&writer) {
            count = writer.count
            if writer.full { truncated = true }
        } else {
            count = start
        }
        append(UInt8(ascii: "\""))
    }

    /// Peer bytes as text without a String on the way when they are ASCII (a request line's
    /// parts); otherwise as `text(_:bytes:)`, invalid UTF-8 becoming U+FFFD.
    public mutating func text(_ name: StaticString, raw value: UnsafeRawBufferPointer) {
        let buffer = value.assumingMemoryBound(to: UInt8.self)
        var highest: UInt8 = 0
        for byte in buffer { highest = max(highest, byte) }
        guard highest < 0x80 else {
            text(name, bytes: buffer)
            return
        }
        guard key(name) else { return }
        if !appendPlain(buffer) { appendEscaped(buffer) }
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
            append(UInt8(ascii: "-"))
            // Int.min has no positive counterpart: its digits, one at a time.
            let magnitude = value.magnitude
            var divisor: UInt = 1
            while divisor <= magnitude / 10 { divisor *= 10 }
            while divisor > 0 {
                append(UInt8(ascii: "0") + UInt8(magnitude / divisor % 10))
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
        append(contentsOf: value ? "true" : "false")
    }

    /// Milliseconds with one decimal, e.g. `12.3`.
    public mutating func milliseconds(_ name: StaticString, nanoseconds: Int64) {
        guard room > 24, key(name) else {
            truncated = true
            return
        }
        let tenths = Int(max(0, nanoseconds) / 100_000)
        appendDecimal(tenths / 10)
        append(UInt8(ascii: "."))
        append(UInt8(ascii: "0") + UInt8(tenths % 10))
    }

    public mutating func ints(_ name: StaticString, _ values: [Int]) {
        guard key(name) else { return }
        append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            guard room > 24 else {
                truncated = true
                break
            }
            if index > 0 { append(UInt8(ascii: ",")) }
            appendInteger(value)
        }
        append(UInt8(ascii: "]"))
    }

    public mutating func strings(_ name: StaticString, _ values: [String]) {
        guard key(name) else { return }
        appendList(values)
    }

    private mutating func appendList(_ values: [String]) {
        append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            guard room > 8 else {
                truncated = true
                break
            }
            if index > 0 { append(UInt8(ascii: ",")) }
            appendQuoted(value.utf8)
        }
        append(UInt8(ascii: "]"))
    }

    /// At most `maximum` bytes as lowercase hex (a bounded view of a binary exchange).
    public mutating func hex<Bytes: Collection>(_ name: StaticString, _ value: Bytes, maximum: Int) where Bytes.Element == UInt8 {
        guard maximum > 0, key(name) else { return }
        append(UInt8(ascii: "\""))
        var shown = 0
        for byte in value {
            guard shown < maximum else { break }
            guard room > 3 else {
                truncated = true
                break
            }
            append(Self.hexDigit(byte >> 4))
            append(Self.hexDigit(byte & 0x0F))
            shown += 1
        }
        append(UInt8(ascii: "\""))
    }

    @inline(__always)
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// Whether a byte goes into a string as it is (no escape, not the start of U+2028/9): one
    /// bit each in four constant words (no table to initialise, no lazy global on the way).
    @inlinable @inline(__always)
    static func isPlain(_ byte: UInt8) -> Bool {
        let word: UInt64
        switch byte >> 6 {
        case 0: word = 0xAFFF_FF3B_0000_0000  // 0x20–0x3F but " & ' < >
        case 1: word = 0xFFFF_FFFF_EFFF_FFFF  // all but backslash
        case 2: word = ~0
        default: word = 0xFFFF_FFFB_FFFF_FFFF  // all but 0xE2
        }
        return word >> (byte & 63) & 1 != 0
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
        for byte in buffer where !Self.isPlain(byte) { return false }
        append(UInt8(ascii: "\""))
        append(buffer)
        append(UInt8(ascii: "\""))
        return true
    }

    private mutating func appendQuoted(_ utf8: Substring.UTF8View) {
        appendEscaped(utf8)
    }

    private mutating func appendEscaped<Bytes: Collection>(_ utf8: Bytes) where Bytes.Element == UInt8 {
        append(UInt8(ascii: "\""))
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
                case 0x22: append(contentsOf: #"\""#)
                case 0x5C: append(contentsOf: #"\\"#)
                case 0x0A: append(contentsOf: #"\n"#)
                case 0x0D: append(contentsOf: #"\r"#)
                case 0x09: append(contentsOf: #"\t"#)
                default:
                    append(contentsOf: #"\u00"#)
                    append(Self.hexDigit(byte >> 4))
                    append(Self.hexDigit(byte & 0x0F))
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
                        append(contentsOf: utf8[third] == 0xA8 ? #"\u2028"# : #"\u2029"#)
                        index = utf8.index(after: third)
                        continue
                    }
                }
            }
            for _ in 0..<width where index != utf8.endIndex {
                append(utf8[index])
                index = utf8.index(after: index)
            }
        }
        append(UInt8(ascii: "\""))
    }

    /// The body, finished: `"truncated":true` added when something was cut.
    public mutating func finish() -> [UInt8] {
        markTruncation()
        return bytes
    }

    /// The finished body in place (no copy): valid until its storage makes the next event.
    public mutating func finished() -> UnsafeRawBufferPointer {
        markTruncation()
        return UnsafeRawBufferPointer(start: base, count: count)
    }

    private mutating func markTruncation() {
        guard truncated, !marked else { return }
        marked = true
        // The reserve keeps room for it whatever was cut.
        let mark: StaticString = #","truncated":true"#
        count = min(count, limit - mark.utf8CodeUnitCount)
        append(contentsOf: mark)
    }

    /// `2026-12-04T04:30:00.123Z` for milliseconds since 1970.
    public static func isoTime(_ milliseconds: Int) -> String {
        var bytes: [UInt8] = []
        appendTime(milliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `2026-12-04T04:30:00.123Z` for milliseconds since 1970.
    /// Any value gives a time (one a compromised worker wrote too): clamped to years 1970–9999.
    static func appendTime(_ milliseconds: Int, to bytes: inout [UInt8]) {
        let milliseconds = min(max(milliseconds, 0), 253_402_300_799_999)
        let seconds = milliseconds / 1000
        let millis = milliseconds - seconds * 1000
        var days = seconds / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil from days (Howard Hinnant's algorithm).
        days += 719_468
        let era = days / 146_097
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

/// Members encoded once by an `EventBody` (so escaped like any), then copied into each event
/// that carries them: what is the same for every event of a socket costs one copy.
public struct EventMembers: Sendable {
    let bytes: [UInt8]

    public init(_ fill: (inout EventBody) -> Void) {
        var body = EventBody(limit: 512)
        fill(&body)
        // (A cut member would be a cut member in every event: kept out instead.)
        bytes = body.truncated ? [] : body.finish()
    }
}

/// Writes the bytes of one event string in place (`EventBody.text(_:writing:)`), escaped for
/// JSON and HTML; past the room it has, bytes are dropped and `full` is set.
public struct EventTextWriter {
    // (Inlinable: a DNS name is written a byte at a time from another module.)
    @usableFromInline let base: UnsafeMutablePointer<UInt8>
    @usableFromInline var count: Int
    @usableFromInline let end: Int
    @usableFromInline var full = false

    fileprivate init(base: UnsafeMutablePointer<UInt8>, count: Int, end: Int) {
        self.base = base
        self.count = count
        self.end = end
    }

    /// Bytes written so far.
    public var written: Int { count }

    /// Appends a run of bytes, each escaped as `append(_:)` escapes it; a run that needs no
    /// escape (a DNS label of letters and digits) is copied at once.
    @inlinable
    public mutating func append(run bytes: UnsafeBufferPointer<UInt8>) {
        guard let start = bytes.baseAddress else { return }
        var plain = count + bytes.count <= end
        if plain {
            for byte in bytes where !EventBody.isPlain(byte) || byte >= 0x7F {
                plain = false
                break
            }
        }
        guard plain else {
            for byte in bytes { append(byte) }
            return
        }
        (base + count).update(from: start, count: bytes.count)
        count += bytes.count
    }

    @inlinable @inline(__always)
    public mutating func append(_ byte: UInt8) {
        if byte >= 0x20, byte < 0x7F, byte != 0x22, byte != 0x5C, byte != 0x3C, byte != 0x3E, byte != 0x26, byte != 0x27 {
            guard count < end else {
                full = true
                return
            }
            base[count] = byte
            count += 1
            return
        }
        guard count + 6 <= end else {
            full = true
            return
        }
        let hex = { (nibble: UInt8) -> UInt8 in nibble < 10 ? 0x30 + nibble : 0x57 + nibble }
        if byte == 0x22 || byte == 0x5C {
            base[count] = 0x5C
            base[count + 1] = byte
            count += 2
            return
        }
        base[count] = 0x5C
        base[count + 1] = UInt8(ascii: "u")
        base[count + 2] = 0x30
        base[count + 3] = 0x30
        base[count + 4] = hex(byte >> 4)
        base[count + 5] = hex(byte & 0x0F)
        count += 6
    }
}
