/// Writes DNS messages with name compression (RFC 1035 4.1.4) for owner names and for the
/// names inside NS, CNAME, PTR, MX and SOA data (the types RFC 3597 4 allows); SRV targets
/// and unknown types are never compressed. With a size limit, records that do not fit are
/// left out and TC is set (RFC 2181 9), keeping the question and the OPT record.
public struct DNSMessageWriter {
    private(set) var bytes: [UInt8] = []
    /// Offsets of names already written, by their lowercased labels (suffixes included).
    private var offsets: [DNSName: Int] = [:]
    /// Names added to `offsets` since the current record began (undone if it does not fit),
    /// so a record never copies the whole table.
    private var added: [DNSName] = []

    public init() {
        bytes.reserveCapacity(512)
    }

    /// The wire form of `message`; at most `limit` octets (TC set when records were dropped).
    public static func encode(_ message: DNSMessage, limit: Int = 65_535) throws(DNSWireError) -> [UInt8] {
        var writer = DNSMessageWriter()
        return try writer.write(message, limit: limit)
    }

    mutating func write(_ message: DNSMessage, limit: Int) throws(DNSWireError) -> [UInt8] {
        var message = message
        let optSize = message.edns.map { 11 + $0.options.reduce(0) { $0 + 4 + $1.data.count } } ?? 0
        header(message, counts: (message.questions.count, 0, 0, 0))
        for question in message.questions {
            name(question.name, compress: true)
            u16(question.type.rawValue)
            u16(question.qclass.rawValue)
        }
        guard bytes.count + optSize <= min(limit, 65_535) else { throw .messageTooLarge }
        var counts = (message.questions.count, 0, 0, 0)
        let sections: [[DNSRecord]] = [message.answers, message.authority, message.additional]
        outer: for (sectionIndex, records) in sections.enumerated() {
            for record in records {
                let mark = bytes.count
                added.removeAll(keepingCapacity: true)
                try self.record(record)
                if bytes.count + optSize > min(limit, 65_535) {
                    bytes.removeSubrange(mark...)
                    for name in added { offsets[name] = nil }
                    // Dropping from the additional section is not truncation (RFC 2181 9).
                    if sectionIndex < 2 { message.truncated = true }
                    break outer
                }
                switch sectionIndex {
                case 0: counts.1 += 1
                case 1: counts.2 += 1
                default: counts.3 += 1
                }
            }
        }
        if let edns = message.edns {
            bytes.append(0)
            u16(DNSType.opt.rawValue)
            u16(edns.udpPayloadSize)
            bytes.append(UInt8(truncatingIfNeeded: message.rcode >> 4))
            bytes.append(edns.version)
            u16(edns.dnssecOK ? 0x8000 : 0)
            u16(UInt16(edns.options.reduce(0) { $0 + 4 + $1.data.count }))
            for option in edns.options {
                u16(option.code)
                u16(UInt16(option.data.count))
                bytes += option.data
            }
            counts.3 += 1
        }
        var head = DNSMessageWriter()
        head.header(message, counts: counts)
        bytes.replaceSubrange(0..<12, with: head.bytes)
        return bytes
    }

    private mutating func header(_ message: DNSMessage, counts: (Int, Int, Int, Int)) {
        var flags: UInt16 = 0
        if message.isResponse { flags |= 0x8000 }
        flags |= UInt16(message.opcode & 0xF) << 11
        if message.authoritative { flags |= 0x0400 }
        if message.truncated { flags |= 0x0200 }
        if message.recursionDesired { flags |= 0x0100 }
        if message.recursionAvailable { flags |= 0x0080 }
        if message.authenticData { flags |= 0x0020 }
        if message.checkingDisabled { flags |= 0x0010 }
        flags |= message.rcode & 0xF
        u16(message.id)
        u16(flags)
        u16(UInt16(counts.0))
        u16(UInt16(counts.1))
        u16(UInt16(counts.2))
        u16(UInt16(counts.3))
    }

    private mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    private mutating func u32(_ value: UInt32) {
        bytes.append(UInt8(value >> 24))
        bytes.append(UInt8((value >> 16) & 0xFF))
        bytes.append(UInt8((value >> 8) & 0xFF))
        bytes.append(UInt8(value & 0xFF))
    }

    /// Writes `name`, pointing at an earlier copy of its longest known suffix.
    mutating func name(_ name: DNSName, compress: Bool) {
        var labels = name.labels[...]
        while !labels.isEmpty {
            let suffix = DNSName(validatedLabels: Array(labels))
            if compress, let offset = offsets[suffix] {
                u16(0xC000 | UInt16(offset))
                return
            }
            if compress, bytes.count < 0x3FFF {
                offsets[suffix] = bytes.count
                added.append(suffix)
            }
            let label = labels.removeFirst()
            bytes.append(UInt8(label.count))
            bytes += label
        }
        bytes.append(0)
    }

    private mutating func record(_ record: DNSRecord) throws(DNSWireError) {
        name(record.name, compress: true)
        u16(record.type.rawValue)
        u16(record.rclass.rawValue)
        u32(record.ttl)
        let lengthAt = bytes.count
        u16(0)
        switch record.data {
        case .a(let address), .aaaa(let address):
            bytes += address
        case .ns(let target), .cname(let target), .ptr(let target):
            name(target, compress: true)
        case .mx(let preference, let exchange):
            u16(preference)
            name(exchange, compress: true)
        case .soa(let mname, let rname, let serial, let refresh, let retry, let expire, let minimum):
            name(mname, compress: true)
            name(rname, compress: true)
            for value in [serial, refresh, retry, expire, minimum] { u32(value) }
        case .txt(let strings):
            for string in strings {
                bytes.append(UInt8(min(string.count, 255)))
                bytes += string.prefix(255)
            }
        case .srv(let priority, let weight, let port, let target):
            u16(priority)
            u16(weight)
            u16(port)
            name(target, compress: false)
        case .caa(let flags, let tag, let value):
            bytes.append(flags)
            bytes.append(UInt8(tag.count))
            bytes += tag
            bytes += value
        case .unknown(_, let data):
            bytes += data
        }
        let length = bytes.count - lengthAt - 2
        guard length <= 65_535 else { throw .messageTooLarge }
        bytes[lengthAt] = UInt8(length >> 8)
        bytes[lengthAt + 1] = UInt8(length & 0xFF)
    }
}
