/// Reads a DNS message from its wire form: every length checked against the bytes present,
/// compression pointers followed only backwards (so no loop and no forward jump is possible),
/// labels ≤ 63 and names ≤ 255 octets. Pure: bytes in, a message or a typed error out.
public struct DNSMessageReader {
    private let bytes: [UInt8]
    private var index = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Decodes a whole message.
    public static func decode(_ bytes: [UInt8]) throws(DNSWireError) -> DNSMessage {
        var reader = DNSMessageReader(bytes)
        return try reader.message()
    }

    /// Reads just the header's ID and flags when the rest is malformed, so a FORMERR can
    /// echo them (nil when even the 12-octet header is missing).
    public static func header(_ bytes: [UInt8]) -> (id: UInt16, flags: UInt16)? {
        guard bytes.count >= 12 else { return nil }
        return (UInt16(bytes[0]) << 8 | UInt16(bytes[1]), UInt16(bytes[2]) << 8 | UInt16(bytes[3]))
    }

    mutating func message() throws(DNSWireError) -> DNSMessage {
        let id = try u16()
        let flags = try u16()
        let counts = (try u16(), try u16(), try u16(), try u16())
        var message = DNSMessage(
            id: id, isResponse: flags & 0x8000 != 0, opcode: UInt8((flags >> 11) & 0xF),
            authoritative: flags & 0x0400 != 0, truncated: flags & 0x0200 != 0,
            recursionDesired: flags & 0x0100 != 0, recursionAvailable: flags & 0x0080 != 0,
            authenticData: flags & 0x0020 != 0, checkingDisabled: flags & 0x0010 != 0,
            rcode: flags & 0xF)
        // Each entry takes at least 4 (question) or 11 (record) octets: a count that cannot
        // fit in what is left is truncation, found before any allocation.
        guard Int(counts.0) * 5 + (Int(counts.1) + Int(counts.2) + Int(counts.3)) * 11 <= bytes.count - index else { throw .truncated }
        for _ in 0..<counts.0 {
            message.questions.append(DNSQuestion(name: try name(), type: DNSType(rawValue: try u16()), qclass: DNSClass(rawValue: try u16())))
        }
        for _ in 0..<counts.1 { message.answers.append(try record()) }
        for _ in 0..<counts.2 { message.authority.append(try record()) }
        for _ in 0..<counts.3 {
            let start = index
            let owner = try name()
            if try peekU16() == DNSType.opt.rawValue {
                guard message.edns == nil, owner.labels.isEmpty else { throw .badOPT }
                index = start
                let (edns, extended) = try opt()
                message.edns = edns
                message.rcode |= UInt16(extended) << 4
            } else {
                index = start
                message.additional.append(try record())
            }
        }
        guard index == bytes.count else { throw .trailingBytes }
        return message
    }

    // MARK: - Fields

    private mutating func u8() throws(DNSWireError) -> UInt8 {
        guard index < bytes.count else { throw .truncated }
        defer { index += 1 }
        return bytes[index]
    }

    private mutating func u16() throws(DNSWireError) -> UInt16 {
        guard index + 2 <= bytes.count else { throw .truncated }
        defer { index += 2 }
        return UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
    }

    private func peekU16() throws(DNSWireError) -> UInt16 {
        guard index + 2 <= bytes.count else { throw .truncated }
        return UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
    }

    private mutating func u32() throws(DNSWireError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .truncated }
        defer { index += 4 }
        return UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16 | UInt32(bytes[index + 2]) << 8 | UInt32(bytes[index + 3])
    }

    private mutating func take(_ count: Int) throws(DNSWireError) -> [UInt8] {
        guard count >= 0, index + count <= bytes.count else { throw .truncated }
        defer { index += count }
        return Array(bytes[index..<(index + count)])
    }

    /// A possibly compressed name (RFC 1035 4.1.4). Each pointer must point before the
    /// place it was read from, so following pointers always makes progress towards 0.
    mutating func name() throws(DNSWireError) -> DNSName {
        var labels: [[UInt8]] = []
        var wireLength = 1
        var position = index
        var resumeAt: Int?
        var lowestPointer = index
        while true {
            guard position < bytes.count else { throw .truncated }
            let length = bytes[position]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    index = resumeAt ?? position + 1
                    return DNSName(validatedLabels: labels)
                }
                let count = Int(length)
                guard position + 1 + count <= bytes.count else { throw .truncated }
                wireLength += count + 1
                guard wireLength <= DNSName.maximumWireLength else { throw .nameTooLong }
                labels.append(Array(bytes[(position + 1)...(position + count)]))
                position += 1 + count
            case 0xC0:
                guard position + 1 < bytes.count else { throw .truncated }
                let target = Int(length & 0x3F) << 8 | Int(bytes[position + 1])
                guard target < lowestPointer else { throw .badPointer }
                if resumeAt == nil { resumeAt = position + 2 }
                lowestPointer = target
                position = target
            default:
                throw .badLabelType
            }
        }
    }

    private mutating func record() throws(DNSWireError) -> DNSRecord {
        let owner = try name()
        let type = DNSType(rawValue: try u16())
        let rclass = DNSClass(rawValue: try u16())
        let ttl = try u32()
        let length = Int(try u16())
        guard index + length <= bytes.count else { throw .truncated }
        let end = index + length
        let data = try rdata(type: type, end: end)
        guard index == end else { throw .badRData }
        return DNSRecord(name: owner, rclass: rclass, ttl: ttl, data: data)
    }

    private mutating func rdata(type: DNSType, end: Int) throws(DNSWireError) -> RData {
        let length = end - index
        func within(_ value: () throws(DNSWireError) -> RData) throws(DNSWireError) -> RData {
            let result = try value()
            guard index <= end else { throw .badRData }
            return result
        }
        switch type {
        case .a:
            guard length == 4 else { throw .badRData }
            return .a(try take(4))
        case .aaaa:
            guard length == 16 else { throw .badRData }
            return .aaaa(try take(16))
        case .ns: return try within { () throws(DNSWireError) in .ns(try name()) }
        case .cname: return try within { () throws(DNSWireError) in .cname(try name()) }
        case .ptr: return try within { () throws(DNSWireError) in .ptr(try name()) }
        case .mx: return try within { () throws(DNSWireError) in .mx(preference: try u16(), exchange: try name()) }
        case .soa:
            return try within { () throws(DNSWireError) in
                .soa(mname: try name(), rname: try name(), serial: try u32(), refresh: try u32(), retry: try u32(), expire: try u32(), minimum: try u32())
            }
        case .srv:
            return try within { () throws(DNSWireError) in
                .srv(priority: try u16(), weight: try u16(), port: try u16(), target: try name())
            }
        case .txt:
            var strings: [[UInt8]] = []
            guard length > 0 else { throw .badRData }
            while index < end {
                let count = Int(try u8())
                guard index + count <= end else { throw .badRData }
                strings.append(try take(count))
            }
            return .txt(strings)
        case .caa:
            guard length >= 2 else { throw .badRData }
            let flags = try u8()
            let tagLength = Int(try u8())
            guard tagLength >= 1, index + tagLength <= end else { throw .badRData }
            let tag = try take(tagLength)
            return .caa(flags: flags, tag: tag, value: try take(end - index))
        default:
            return .unknown(type: type, data: try take(length))
        }
    }

    private mutating func opt() throws(DNSWireError) -> (EDNS, UInt8) {
        _ = try name()
        _ = try u16()
        let size = try u16()
        let extended = try u8()
        let version = try u8()
        let flags = try u16()
        let length = Int(try u16())
        guard index + length <= bytes.count else { throw .truncated }
        let end = index + length
        var options: [EDNSOption] = []
        while index < end {
            let code = try u16()
            let optionLength = Int(try u16())
            guard index + optionLength <= end else { throw .badOPT }
            options.append(EDNSOption(code: code, data: try take(optionLength)))
        }
        return (EDNS(udpPayloadSize: size, extendedRCode: extended, version: version, dnssecOK: flags & 0x8000 != 0, options: options), extended)
    }
}
