#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A zone file error: the file, the line and what is wrong. Startup stops with it.
public struct ZoneFileError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var line: Int
    public var message: String

    public var description: String { "\(file):\(line): \(message)" }
}

/// Reads RFC 1035 master files (section 5): `$ORIGIN`, `$TTL` (RFC 2308), `@`, relative and
/// absolute names, omitted owner/TTL/class, parentheses over several lines, `;` comments,
/// quoted strings with escapes, `\X` and `\DDD`, and RFC 3597's `TYPEnnn \# len hex` form.
/// TTLs may use BIND's units (`1h30m`, `2d`, `1w`).
public struct ZoneFileParser {
    public let file: String
    private var origin: DNSName
    private var defaultTTL: UInt32?
    private var lastOwner: DNSName?
    private var lastTTL: UInt32?

    public init(file: String, origin: DNSName) {
        self.file = file
        self.origin = origin
    }

    /// Parses the whole text into records, in file order.
    public static func parse(_ text: String, origin: DNSName, file: String) throws(ZoneFileError) -> [DNSRecord] {
        var parser = ZoneFileParser(file: file, origin: origin)
        var records: [DNSRecord] = []
        for entry in try ZoneTokenizer.entries(text, file: file) {
            if let record = try parser.entry(entry) { records.append(record) }
        }
        return records
    }

    private func fail(_ line: Int, _ message: String) -> ZoneFileError {
        ZoneFileError(file: file, line: line, message: message)
    }

    private mutating func entry(_ entry: ZoneTokenizer.Entry) throws(ZoneFileError) -> DNSRecord? {
        var tokens = entry.tokens[...]
        let line = entry.line
        if !entry.startsWithBlank, let first = tokens.first, !first.quoted, first.text.hasPrefix("$") {
            tokens.removeFirst()
            switch first.text.uppercased() {
            case "$ORIGIN":
                guard let value = tokens.popFirst(), tokens.isEmpty else { throw fail(line, "$ORIGIN takes one name") }
                origin = try absoluteName(value, line: line)
            case "$TTL":
                guard let value = tokens.popFirst(), tokens.isEmpty else { throw fail(line, "$TTL takes one value") }
                defaultTTL = try ttl(value.text, line: line)
            case "$INCLUDE":
                throw fail(line, "$INCLUDE is not supported: list each zone file in services.dns.zones")
            default:
                throw fail(line, "unknown directive \(first.text)")
            }
            return nil
        }
        let owner: DNSName
        if entry.startsWithBlank {
            guard let lastOwner else { throw fail(line, "no owner name: the first record must name its owner") }
            owner = lastOwner
        } else {
            guard let token = tokens.popFirst() else { return nil }
            owner = try self.name(token, line: line)
        }
        var recordTTL: UInt32?
        var rclass = DNSClass.internet
        var type: DNSType?
        while type == nil, let token = tokens.popFirst() {
            let upper = token.text.uppercased()
            if !token.quoted, let value = try? ttl(token.text, line: line), recordTTL == nil, token.text.first?.isNumber == true {
                recordTTL = value
            } else if upper == "IN" {
                rclass = .internet
            } else if upper == "CH" || upper == "CS" || upper == "HS" {
                throw fail(line, "class \(upper) is not served; use IN")
            } else if let parsed = DNSType(name: upper) {
                type = parsed
            } else {
                throw fail(line, "unknown type or bad TTL '\(token.text)'")
            }
        }
        guard let type else { throw fail(line, "missing record type") }
        guard let resolvedTTL = recordTTL ?? defaultTTL ?? lastTTL else {
            throw fail(line, "no TTL: give one on the record or a $TTL line before it")
        }
        lastOwner = owner
        lastTTL = resolvedTTL
        let data = try rdata(type, Array(tokens), line: line)
        let record = DNSRecord(name: owner, rclass: rclass, ttl: resolvedTTL, data: data)
        // A record that could never be sent (RDATA over 65535 octets, a message over 64 KiB)
        // is refused here, with its line, not at query time.
        guard DNSMessageWriter.fits(record) else { throw fail(line, "the record's data is too large for a DNS message") }
        return record
    }

    // MARK: - Fields

    private func name(_ token: ZoneTokenizer.Token, line: Int) throws(ZoneFileError) -> DNSName {
        if token.text == "@" { return origin }
        do {
            let parsed = try DNSName(token.text)
            if token.text.hasSuffix(".") && !token.text.hasSuffix("\\.") { return parsed }
            return try DNSName(labels: parsed.labels + origin.labels)
        } catch {
            throw fail(line, "bad name '\(token.text)': \(error)")
        }
    }

    private func absoluteName(_ token: ZoneTokenizer.Token, line: Int) throws(ZoneFileError) -> DNSName {
        try name(token, line: line)
    }

    /// The largest TTL: RFC 2181 8 limits TTLs to 2^31 - 1 seconds.
    static let maximumTTL = UInt64(Int32.max)

    /// Seconds, or BIND's units: `1w2d3h4m5s`. ASCII digits only; every step is checked
    /// against `maximumTTL`, so no number of terms can overflow.
    func ttl(_ text: String, line: Int) throws(ZoneFileError) -> UInt32 {
        guard !text.isEmpty, text.utf8.count <= 64 else { throw fail(line, "bad TTL '\(text.prefix(64))'") }
        var total: UInt64 = 0
        var number: UInt64 = 0
        var sawDigit = false
        for byte in text.utf8 {
            if byte >= 0x30 && byte <= 0x39 {
                number = number * 10 + UInt64(byte - 0x30)
                sawDigit = true
                guard number <= Self.maximumTTL else { throw fail(line, "TTL '\(text)' is too large (at most \(Self.maximumTTL) s)") }
                continue
            }
            let unit: UInt64
            switch byte | 0x20 {
            case UInt8(ascii: "s"): unit = 1
            case UInt8(ascii: "m"): unit = 60
            case UInt8(ascii: "h"): unit = 3600
            case UInt8(ascii: "d"): unit = 86_400
            case UInt8(ascii: "w"): unit = 604_800
            default: throw fail(line, "bad TTL '\(text)'")
            }
            guard sawDigit else { throw fail(line, "bad TTL '\(text)'") }
            // number ≤ 2^31 and unit < 2^20: the product and the sum stay far below 2^64.
            total += number * unit
            guard total <= Self.maximumTTL else { throw fail(line, "TTL '\(text)' is too large (at most \(Self.maximumTTL) s)") }
            number = 0
            sawDigit = false
        }
        total += number
        guard total <= Self.maximumTTL, let value = UInt32(exactly: total) else {
            throw fail(line, "TTL '\(text)' is too large (at most \(Self.maximumTTL) s)")
        }
        return value
    }

    private func number<T: FixedWidthInteger>(_ token: ZoneTokenizer.Token?, _ what: String, line: Int) throws(ZoneFileError) -> T {
        guard let token, !token.quoted, token.text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = T(token.text) else { throw fail(line, "expected \(what), got '\(token?.text ?? "end of record")'") }
        return value
    }

    private func rdata(_ type: DNSType, _ tokens: [ZoneTokenizer.Token], line: Int) throws(ZoneFileError) -> RData {
        if tokens.first?.text == "\\#", tokens.first?.quoted == false {
            return try genericRData(type, Array(tokens.dropFirst()), line: line)
        }
        var iterator = tokens.makeIterator()
        func next() -> ZoneTokenizer.Token? { iterator.next() }
        func end(_ data: RData) throws(ZoneFileError) -> RData {
            guard next() == nil else { throw fail(line, "too many fields for \(type)") }
            return data
        }
        func target() throws(ZoneFileError) -> DNSName {
            guard let token = next() else { throw fail(line, "\(type) needs a name") }
            return try name(token, line: line)
        }
        switch type {
        case .a:
            guard let token = next(), let bytes = Self.address(token.text, family: AF_INET, count: 4) else { throw fail(line, "A needs an IPv4 address") }
            return try end(.a(bytes))
        case .aaaa:
            guard let token = next(), let bytes = Self.address(token.text, family: AF_INET6, count: 16) else { throw fail(line, "AAAA needs an IPv6 address") }
            return try end(.aaaa(bytes))
        case .ns: return try end(.ns(target()))
        case .cname: return try end(.cname(target()))
        case .ptr: return try end(.ptr(target()))
        case .mx:
            let preference: UInt16 = try number(next(), "an MX preference (0-65535)", line: line)
            return try end(.mx(preference: preference, exchange: target()))
        case .soa:
            let mname = try target()
            let rname = try target()
            let serial: UInt32 = try number(next(), "a serial", line: line)
            var times: [UInt32] = []
            for what in ["refresh", "retry", "expire", "minimum"] {
                guard let token = next() else { throw fail(line, "SOA needs \(what)") }
                times.append(try ttl(token.text, line: line))
            }
            return try end(.soa(mname: mname, rname: rname, serial: serial, refresh: times[0], retry: times[1], expire: times[2], minimum: times[3]))
        case .srv:
            let priority: UInt16 = try number(next(), "an SRV priority", line: line)
            let weight: UInt16 = try number(next(), "an SRV weight", line: line)
            let port: UInt16 = try number(next(), "an SRV port", line: line)
            return try end(.srv(priority: priority, weight: weight, port: port, target: target()))
        case .txt:
            guard !tokens.isEmpty else { throw fail(line, "TXT needs at least one string") }
            var strings: [[UInt8]] = []
            for token in tokens {
                let bytes = try unescape(token.text, line: line)
                guard bytes.count <= 255 else { throw fail(line, "a TXT string is at most 255 octets (this one is \(bytes.count))") }
                strings.append(bytes)
            }
            return .txt(strings)
        case .caa:
            let flags: UInt8 = try number(next(), "CAA flags (0-255)", line: line)
            // RFC 8659 4.1: the tag is 1 to 255 octets of ASCII letters and digits.
            guard let tag = next(), !tag.quoted, (1...255).contains(tag.text.utf8.count),
                  tag.text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || (($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A) }) else {
                throw fail(line, "CAA needs a tag of 1 to 255 ASCII letters and digits")
            }
            guard let value = next() else { throw fail(line, "CAA needs a value") }
            return try end(.caa(flags: flags, tag: Array(tag.text.utf8), value: unescape(value.text, line: line)))
        case .opt, .axfr, .any:
            throw fail(line, "\(type) cannot appear in a zone")
        default:
            throw fail(line, "type \(type) needs RFC 3597 form: \(type) \\# <length> <hex>")
        }
    }

    private func genericRData(_ type: DNSType, _ tokens: [ZoneTokenizer.Token], line: Int) throws(ZoneFileError) -> RData {
        guard let lengthToken = tokens.first, (1...5).contains(lengthToken.text.utf8.count),
              lengthToken.text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(lengthToken.text), length <= 65_535 else {
            throw fail(line, "\\# needs a length")
        }
        let hex = tokens.dropFirst().map(\.text).joined()
        guard hex.count == length * 2 else { throw fail(line, "\\# length \(length) does not match \(hex.count / 2) octets of hex") }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let pair = hex[index..<hex.index(index, offsetBy: 2)]
            guard let byte = UInt8(pair, radix: 16) else { throw fail(line, "bad hex '\(pair)'") }
            bytes.append(byte)
            index = hex.index(index, offsetBy: 2)
        }
        // A known type in generic form is decoded, so lookups treat it like the usual form.
        var message = [UInt8](repeating: 0, count: 12)
        message[7] = 1
        message += [0, UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xFF), 0, 1, 0, 0, 0, 0, UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
        if let decoded = try? DNSMessageReader.decode(message), let record = decoded.answers.first { return record.data }
        throw fail(line, "\\# data is not valid \(type) data")
    }

    /// A character-string's octets: `\X` is X, `\DDD` is the octet DDD.
    private func unescape(_ text: String, line: Int) throws(ZoneFileError) -> [UInt8] {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            guard byte == UInt8(ascii: "\\") else {
                bytes.append(byte)
                continue
            }
            guard let next = input.popFirst() else { throw fail(line, "a string ends in a lone backslash") }
            if (48...57).contains(next) {
                guard let d2 = input.popFirst(), let d3 = input.popFirst(), (48...57).contains(d2), (48...57).contains(d3) else {
                    throw fail(line, "\\DDD needs three digits")
                }
                let value = Int(next - 48) * 100 + Int(d2 - 48) * 10 + Int(d3 - 48)
                guard value <= 255 else { throw fail(line, "\\\(value) is not an octet") }
                bytes.append(UInt8(value))
            } else {
                bytes.append(next)
            }
        }
        return bytes
    }

    static func address(_ text: String, family: Int32, count: Int) -> [UInt8]? {
        var storage = [UInt8](repeating: 0, count: 16)
        let ok = storage.withUnsafeMutableBytes { inet_pton(family, text, $0.baseAddress) == 1 }
        return ok ? Array(storage.prefix(count)) : nil
    }
}
