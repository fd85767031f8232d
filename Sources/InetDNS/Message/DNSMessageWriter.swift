/// Writes DNS messages with name compression (RFC 1035 4.1.4) for owner names and for the
/// names inside NS, CNAME, PTR, MX and SOA data (the types RFC 3597 4 allows); SRV targets
/// and unknown types are never compressed. With a size limit, records that do not fit are
/// left out and TC is set (RFC 2181 9), keeping the question and the OPT record.
///
/// Total: any `DNSMessage` value is either written or refused with `DNSWireError`; every
/// count, length and offset is checked where it is narrowed to the wire's 8 or 16 bits, so
/// no caller has to keep the limits for it.
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

    /// Whether `record` can be sent at all: its RDATA within 65535 octets and the record,
    /// with a question for its owner, within one message. Zone loading refuses the others.
    public static func fits(_ record: DNSRecord) -> Bool {
        let message = DNSMessage(id: 0, isResponse: true, questions: [DNSQuestion(name: record.name, type: record.type)], answers: [record])
        guard let bytes = try? encode(message) else { return false }
        return !(bytes[2] & 0x02 != 0)  // not truncated: the record was written
    }

    /// The octets `record` takes in a message of its own (no earlier names to point at): an
    /// upper bound of its size in any message. Nil when it cannot be written.
    public static func wireSize(_ record: DNSRecord) -> Int? {
        var writer = DNSMessageWriter()
        guard (try? writer.record(record)) != nil else { return nil }
        return writer.bytes.count
    }

    mutating func write(_ message: DNSMessage, limit: Int) throws(DNSWireError) -> [UInt8] {
        var message = message
        let optionBytes = message.edns.map { $0.options.reduce(0) { $0 + 4 + $1.data.count } } ?? 0
        guard optionBytes <= 65_535, message.edns?.options.allSatisfy({ $0.data.count <= 65_535 }) ?? true else { throw .messageTooLarge }
        let optSize = message.edns == nil ? 0 : 11 + optionBytes
        guard message.questions.count <= 65_535 else { throw .messageTooLarge }
        try header(message, counts: (message.questions.count, 0, 0, 0))
        for question in message.questions {
            try name(question.name, compress: true)
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
            try u16(checked: optionBytes)
            for option in edns.options {
                u16(option.code)
                try u16(checked: option.data.count)
                bytes += option.data
            }
            counts.3 += 1
        }
        var head = DNSMessageWriter()
        try head.header(message, counts: counts)
        bytes.replaceSubrange(0..<12, with: head.bytes)
        return bytes
    }

    private mutating func header(_ message: DNSMessage, counts: (Int, Int, Int, Int)) throws(DNSWireError) {
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
        try u16(checked: counts.0)
        try u16(checked: counts.1)
        try u16(checked: counts.2)
        try u16(checked: counts.3)
    }

    private mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    /// A count or length as 16 bits; more is a message this format cannot carry.
    private mutating func u16(checked value: Int) throws(DNSWireError) {
        guard let narrow = UInt16(exactly: value) else { throw .messageTooLarge }
        u16(narrow)
    }

    private mutating func u32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    /// Writes `name`, pointing at an earlier copy of its longest known suffix. Labels are
    /// checked again here (a `DNSName` built without validation must not write a bad length).
    mutating func name(_ name: DNSName, compress: Bool) throws(DNSWireError) {
        var labels = name.labels[...]
        guard name.wireLength <= DNSName.maximumWireLength else { throw .nameTooLong }
        while !labels.isEmpty {
            let suffix = DNSName(validatedLabels: Array(labels))
            if compress, let offset = offsets[suffix], let pointer = UInt16(exactly: offset), pointer < 0x4000 {
                u16(0xC000 | pointer)
                return
            }
            if compress, bytes.count < 0x3FFF {
                offsets[suffix] = bytes.count
                added.append(suffix)
            }
            let label = labels.removeFirst()
            guard !label.isEmpty, let length = UInt8(exactly: label.count), length <= 63 else { throw .labelTooLong }
            bytes.append(length)
            bytes += label
        }
        bytes.append(0)
    }

    private mutating func record(_ record: DNSRecord) throws(DNSWireError) {
        try name(record.name, compress: true)
        u16(record.type.rawValue)
        u16(record.rclass.rawValue)
        u32(record.ttl)
        let lengthAt = bytes.count
        u16(0)
        switch record.data {
        case .a(let address):
            guard address.count == 4 else { throw .badRData }
            bytes += address
        case .aaaa(let address):
            guard address.count == 16 else { throw .badRData }
            bytes += address
        case .ns(let target), .cname(let target), .ptr(let target):
            try name(target, compress: true)
        case .mx(let preference, let exchange):
            u16(preference)
            try name(exchange, compress: true)
        case .soa(let mname, let rname, let serial, let refresh, let retry, let expire, let minimum):
            try name(mname, compress: true)
            try name(rname, compress: true)
            for value in [serial, refresh, retry, expire, minimum] { u32(value) }
        case .txt(let strings):
            for string in strings {
                guard let length = UInt8(exactly: string.count) else { throw .badRData }
                bytes.append(length)
                bytes += string
            }
        case .srv(let priority, let weight, let port, let target):
            u16(priority)
            u16(weight)
            u16(port)
            try name(target, compress: false)
        case .caa(let flags, let tag, let value):
            guard !tag.isEmpty, let tagLength = UInt8(exactly: tag.count) else { throw .badRData }
            bytes.append(flags)
            bytes.append(tagLength)
            bytes += tag
            bytes += value
        case .unknown(_, let data):
            bytes += data
        }
        guard let length = UInt16(exactly: bytes.count - lengthAt - 2) else { throw .messageTooLarge }
        bytes[lengthAt] = UInt8(truncatingIfNeeded: length >> 8)
        bytes[lengthAt + 1] = UInt8(truncatingIfNeeded: length)
    }
}
