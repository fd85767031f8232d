#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a received message is stored: one JSON object per line, e.g.
///
///     {"received":"2026-12-03T17:00:00.123Z","peer":"127.0.0.1:40000","transport":"udp",
///      "format":"rfc5424","facility":"user","severity":"notice","pri":13,"version":1,
///      "timestamp":"2026-12-03T17:00:00.120Z","hostname":"lab","app":"demo","procid":"42",
///      "msgid":"ID1","sd":{"origin@1":{"ip":"192.0.2.1"}},"message":"hello"}
///
/// Fields the message did not carry are left out; `truncated` (with the `length` sent),
/// `incomplete` (a TCP stream ended inside an octet-counted message; `length` is what its count
/// announced) and `malformed` appear only when they apply. Text that is not UTF-8 is
/// stored with U+FFFD in place of the bad bytes.
public enum SyslogRecord {
    public struct Receipt: Sendable {
        /// Seconds and nanoseconds since 1970 (UTC).
        public var seconds: Int
        public var nanoseconds: Int
        public var peer: String
        public var transport: String

        public init(seconds: Int, nanoseconds: Int, peer: String, transport: String) {
            self.seconds = seconds
            self.nanoseconds = nanoseconds
            self.peer = peer
            self.transport = transport
        }

        public static func now(peer: String, transport: String) -> Receipt {
            var time = timespec()
            clock_gettime(CLOCK_REALTIME, &time)
            return Receipt(seconds: Int(time.tv_sec), nanoseconds: Int(time.tv_nsec), peer: peer, transport: transport)
        }
    }

    /// Appends the JSON line (with its LF) for `message` to `line`.
    public static func encode(_ message: SyslogMessage, length: Int, truncated: Bool, incomplete: Bool = false,
                              receipt: Receipt, into line: inout [UInt8]) {
        line.append(contentsOf: #"{"received":""#.utf8)
        appendTime(seconds: receipt.seconds, milliseconds: receipt.nanoseconds / 1_000_000, into: &line)
        line.append(contentsOf: #"","peer":"#.utf8)
        appendString(receipt.peer, into: &line)
        line.append(contentsOf: #","transport":""#.utf8)
        line.append(contentsOf: receipt.transport.utf8)
        line.append(contentsOf: #"","format":""#.utf8)
        line.append(contentsOf: message.format.rawValue.utf8)
        line.append(contentsOf: #"","facility":""#.utf8)
        line.append(contentsOf: SyslogMessage.facilityNames[message.facility].utf8)
        line.append(contentsOf: #"","severity":""#.utf8)
        line.append(contentsOf: SyslogMessage.severityNames[message.severity].utf8)
        line.append(contentsOf: #"","pri":"#.utf8)
        line.append(contentsOf: String(message.priority).utf8)
        if !message.priorityGiven { line.append(contentsOf: #","pri_given":false"#.utf8) }
        if let version = message.version {
            line.append(contentsOf: #","version":"#.utf8)
            line.append(contentsOf: String(version).utf8)
        }
        field("timestamp", message.timestamp, into: &line)
        field("hostname", message.hostname, into: &line)
        field("app", message.app, into: &line)
        field("procid", message.procid, into: &line)
        field("msgid", message.msgid, into: &line)
        if !message.structuredData.isEmpty {
            line.append(contentsOf: #","sd":{"#.utf8)
            // Elements by id, parameters by name; a name given twice becomes a list.
            var ids: [String] = []
            var grouped: [String: [SyslogMessage.Parameter]] = [:]
            for element in message.structuredData {
                if grouped[element.id] == nil { ids.append(element.id) }
                grouped[element.id, default: []] += element.parameters
            }
            for (n, id) in ids.enumerated() {
                if n > 0 { line.append(0x2C) }
                appendString(id, into: &line)
                line.append(contentsOf: ":{".utf8)
                let parameters = grouped[id]!
                var names: [String] = []
                var values: [String: [String]] = [:]
                for parameter in parameters {
                    if values[parameter.name] == nil { names.append(parameter.name) }
                    values[parameter.name, default: []].append(parameter.value)
                }
                for (m, name) in names.enumerated() {
                    if m > 0 { line.append(0x2C) }
                    appendString(name, into: &line)
                    line.append(0x3A)
                    let all = values[name]!
                    if all.count == 1 {
                        appendString(all[0], into: &line)
                    } else {
                        line.append(0x5B)
                        for (k, value) in all.enumerated() {
                            if k > 0 { line.append(0x2C) }
                            appendString(value, into: &line)
                        }
                        line.append(0x5D)
                    }
                }
                line.append(0x7D)
            }
            line.append(0x7D)
        }
        line.append(contentsOf: #","message":"#.utf8)
        appendString(String(decoding: message.message, as: UTF8.self), into: &line)
        if truncated { line.append(contentsOf: #","truncated":true"#.utf8) }
        if incomplete { line.append(contentsOf: #","incomplete":true"#.utf8) }
        if truncated || incomplete {
            line.append(contentsOf: #","length":"#.utf8)
            line.append(contentsOf: String(length).utf8)
        }
        if let reason = message.malformed {
            line.append(contentsOf: #","malformed":"#.utf8)
            appendString(reason, into: &line)
        }
        line.append(contentsOf: "}\n".utf8)
    }

    static func field(_ name: StaticString, _ value: String?, into line: inout [UInt8]) {
        guard let value else { return }
        line.append(contentsOf: #",""#.utf8)
        line.append(contentsOf: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        line.append(contentsOf: #"":"#.utf8)
        appendString(value, into: &line)
    }

    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// A JSON string literal of `text` (valid UTF-8 by construction): runs of plain bytes are
    /// copied whole, only `"`, `\\` and control characters are escaped.
    static func appendString(_ text: String, into line: inout [UInt8]) {
        var text = text
        line.append(0x22)
        text.withUTF8 { bytes in
            var start = 0
            for i in 0..<bytes.count {
                let byte = bytes[i]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x7F else { continue }
                if i > start { line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i])) }
                start = i + 1
                switch byte {
                case 0x22: line.append(contentsOf: [0x5C, 0x22])
                case 0x5C: line.append(contentsOf: [0x5C, 0x5C])
                case 0x0A: line.append(contentsOf: [0x5C, 0x6E])
                case 0x0D: line.append(contentsOf: [0x5C, 0x72])
                case 0x09: line.append(contentsOf: [0x5C, 0x74])
                default: line.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
                }
            }
            if start < bytes.count { line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
        }
        line.append(0x22)
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (civil date from days since 1970, no libc time zone work).
    static func appendTime(seconds: Int, milliseconds: Int, into line: inout [UInt8]) {
        let (year, month, day) = civil(days: seconds.floorDivided(by: 86_400))
        let second = seconds - seconds.floorDivided(by: 86_400) * 86_400
        func two(_ value: Int) { line.append(UInt8(0x30 + value / 10)); line.append(UInt8(0x30 + value % 10)) }
        let y = max(0, min(9999, year))
        two(y / 100)
        two(y % 100)
        line.append(0x2D)
        two(month)
        line.append(0x2D)
        two(day)
        line.append(0x54)
        two(second / 3600)
        line.append(0x3A)
        two(second / 60 % 60)
        line.append(0x3A)
        two(second % 60)
        line.append(0x2E)
        let ms = max(0, min(999, milliseconds))
        line.append(UInt8(0x30 + ms / 100))
        two(ms % 100)
        line.append(0x5A)
    }

    /// The UTC date of a day number (days since 1970-01-01), after Howard Hinnant's algorithm.
    static func civil(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = z.floorDivided(by: 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// `YYYY-MM-DD` of a time, for the store's file names.
    public static func date(seconds: Int) -> String {
        let (year, month, day) = civil(days: seconds.floorDivided(by: 86_400))
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))"
    }
}

extension Int {
    func floorDivided(by divisor: Int) -> Int {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
