/// SNMP messages read and written without an intermediate node tree: what every request and
/// response of the agent (and of `inetkit snmp`'s load client) goes through.
///
/// SwiftASN1's BER parser builds a node per field, with slices and generic iterators; in a
/// profile of 16 GETs in flight it was over half of the agent's own CPU, the DER serializer's
/// closures and temporary arrays most of the rest. Here a message is read field by field in
/// place, and written in one pass into an array of exactly its size (every length computed
/// first).
///
/// The decoder takes only what is common: one-byte tags and definite lengths of at most four
/// octets. It returns nil for everything else, valid or not, and `SNMPMessage.decode` then uses
/// SwiftASN1 (which also words the error): whatever it accepts, SwiftASN1 accepts as the same
/// message, and the encoder writes the same bytes as SwiftASN1's DER serializer. Both are
/// checked against SwiftASN1 by the unit tests and the `snmp-message` fuzz target.
enum SNMPWire {
    // MARK: - Decoding

    /// One field: its tag byte and where its content lies.
    private struct Field {
        var tag: UInt8
        var start: Int
        var end: Int
    }

    /// Reads the fields between `index` and `end` in turn.
    private struct Cursor {
        let bytes: [UInt8]
        var index: Int
        let end: Int

        init(_ bytes: [UInt8], _ field: Field) {
            self.bytes = bytes
            index = field.start
            end = field.end
        }

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            index = 0
            end = bytes.count
        }

        var atEnd: Bool { index == end }

        /// The next field; nil at the end, on a multi-byte tag, an indefinite or over-long
        /// length, or a length past the end.
        mutating func next() -> Field? {
            guard end - index >= 2 else { return nil }
            let tag = bytes[index]
            guard tag & 0x1F != 0x1F else { return nil }
            var at = index + 1
            let first = bytes[at]
            at += 1
            var length = 0
            if first < 0x80 {
                length = Int(first)
            } else {
                let octets = Int(first & 0x7F)
                guard (1...4).contains(octets), end - at >= octets else { return nil }
                for _ in 0..<octets {
                    length = length << 8 | Int(bytes[at])
                    at += 1
                }
            }
            guard length <= end - at else { return nil }
            index = at + length
            return Field(tag: tag, start: at, end: at + length)
        }
    }

    /// The message in `bytes`, or nil when it is not one in the common form (see above).
    static func decode(_ bytes: [UInt8]) -> SNMPMessage? {
        var top = Cursor(bytes)
        guard let root = top.next(), root.tag == 0x30, top.atEnd else { return nil }
        var fields = Cursor(bytes, root)
        guard let versionField = fields.next(), versionField.tag == 0x02,
              let versionNumber = try? SNMPMessage.signed(bytes[versionField.start..<versionField.end]),
              let version = SNMPMessage.Version(rawValue: versionNumber),
              let communityField = fields.next(), communityField.tag == 0x04,
              let pduField = fields.next(), fields.atEnd,
              pduField.tag & 0xE0 == 0xA0, let type = PDUType(rawValue: UInt(pduField.tag & 0x1F)), type != .trapV1 else { return nil }
        if version == .v1, type == .getBulkRequest || type == .snmpV2Trap || type == .informRequest || type == .report { return nil }
        var pduFields = Cursor(bytes, pduField)
        guard let idField = pduFields.next(), let statusField = pduFields.next(), let indexField = pduFields.next(),
              let listField = pduFields.next(), pduFields.atEnd, listField.tag == 0x30,
              let id = integer(bytes, idField), let requestID = Int32(exactly: id),
              let status = integer(bytes, statusField), let index = integer(bytes, indexField) else { return nil }
        var list = Cursor(bytes, listField)
        var varbinds: [VarBind] = []
        while !list.atEnd {
            guard let bind = list.next(), bind.tag == 0x30 else { return nil }
            var pair = Cursor(bytes, bind)
            guard let name = pair.next(), name.tag == 0x06, let valueField = pair.next(), pair.atEnd,
                  let oid = OID(encodedContent: bytes[name.start..<name.end]),
                  let value = value(bytes, valueField) else { return nil }
            varbinds.append(VarBind(oid, value))
            guard varbinds.count <= 1000 else { return nil }
        }
        return SNMPMessage(version: version, community: Array(bytes[communityField.start..<communityField.end]),
                           pdu: PDU(type: type, requestID: requestID, errorStatus: status, errorIndex: index, varbinds: varbinds))
    }

    private static func integer(_ bytes: [UInt8], _ field: Field) -> Int64? {
        guard field.tag == 0x02 else { return nil }
        return try? SNMPMessage.signed(bytes[field.start..<field.end])
    }

    /// A value's field, by the same rules as `SNMPMessage.value` (primitive tags only).
    private static func value(_ bytes: [UInt8], _ field: Field) -> SNMPValue? {
        let content = bytes[field.start..<field.end]
        switch field.tag {
        case 0x02: return (try? SNMPMessage.signed(content)).map { .integer($0) }
        case 0x04: return .octetString(Array(content))
        case 0x05: return content.isEmpty ? .null : nil
        case 0x06: return OID(encodedContent: content).map { .objectIdentifier($0) }
        case 0x40: return content.count == 4 ? .ipAddress(Array(content)) : nil
        case 0x41: return (try? SNMPMessage.unsigned32(content)).map { .counter32($0) }
        case 0x42: return (try? SNMPMessage.unsigned32(content)).map { .gauge32($0) }
        case 0x43: return (try? SNMPMessage.unsigned32(content)).map { .timeTicks($0) }
        case 0x44: return .opaque(Array(content))
        case 0x46: return (try? SNMPMessage.unsigned(content, bits: 64)).map { .counter64($0) }
        case 0x80: return .noSuchObject
        case 0x81: return .noSuchInstance
        case 0x82: return .endOfMibView
        default: return nil
        }
    }

    // MARK: - Sizes (DER: minimal lengths and integers)

    /// A field's whole size: tag, length octets, content.
    static func fieldSize(_ content: Int) -> Int {
        1 + lengthSize(content) + content
    }

    static func lengthSize(_ length: Int) -> Int {
        guard length >= 0x80 else { return 1 }
        var octets = 0
        var rest = length
        while rest > 0 {
            octets += 1
            rest >>= 8
        }
        return 1 + octets
    }

    /// Octets of the minimal two's-complement form (X.690 8.3).
    static func signedSize(_ value: Int64) -> Int {
        var size = 8
        while size > 1 {
            let top = UInt8(truncatingIfNeeded: value >> ((size - 1) * 8))
            let next = UInt8(truncatingIfNeeded: value >> ((size - 2) * 8))
            guard (top == 0 && next & 0x80 == 0) || (top == 0xFF && next & 0x80 != 0) else { break }
            size -= 1
        }
        return size
    }

    /// Octets of an unsigned value as a non-negative INTEGER: minimal, with a leading zero
    /// when the top bit is set.
    static func unsignedSize(_ value: UInt64) -> (size: Int, leadingZero: Bool) {
        var size = 8
        while size > 1 {
            let top = UInt8(truncatingIfNeeded: value >> UInt64((size - 1) * 8))
            let next = UInt8(truncatingIfNeeded: value >> UInt64((size - 2) * 8))
            guard top == 0, next & 0x80 == 0 else { break }
            size -= 1
        }
        let leadingZero = UInt8(truncatingIfNeeded: value >> UInt64((size - 1) * 8)) & 0x80 != 0
        return (leadingZero ? size + 1 : size, leadingZero)
    }

    /// Base-128 digits of one sub-identifier.
    static func subidentifierSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest > 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    /// The content octets of an OID (as `OID.encodedContent()`).
    static func contentSize(of oid: OID) -> Int {
        let components = oid.components
        switch components.count {
        case 0: return 0
        case 1: return subidentifierSize(UInt64(components[0]) * 40)
        default:
            var size = subidentifierSize(UInt64(components[0]) * 40 + UInt64(components[1]))
            for index in 2..<components.count { size += subidentifierSize(UInt64(components[index])) }
            return size
        }
    }

    /// A value's tag and content size.
    static func tagAndSize(of value: SNMPValue) -> (tag: UInt8, size: Int) {
        switch value {
        case .integer(let number): return (0x02, signedSize(number))
        case .octetString(let bytes): return (0x04, bytes.count)
        case .null: return (0x05, 0)
        case .objectIdentifier(let oid): return (0x06, contentSize(of: oid))
        case .ipAddress(let bytes): return (0x40, bytes.count)
        case .counter32(let number): return (0x41, unsignedSize(UInt64(number)).size)
        case .gauge32(let number): return (0x42, unsignedSize(UInt64(number)).size)
        case .timeTicks(let number): return (0x43, unsignedSize(UInt64(number)).size)
        case .opaque(let bytes): return (0x44, bytes.count)
        case .counter64(let number): return (0x46, unsignedSize(number).size)
        case .noSuchObject: return (0x80, 0)
        case .noSuchInstance: return (0x81, 0)
        case .endOfMibView: return (0x82, 0)
        }
    }

    /// The content of a varbind's SEQUENCE.
    static func contentSize(of bind: VarBind) -> Int {
        fieldSize(contentSize(of: bind.oid)) + fieldSize(tagAndSize(of: bind.value).size)
    }

    // MARK: - Encoding

    /// Writes into memory of a size computed beforehand; a write past it is refused and noted
    /// (then the caller falls back to SwiftASN1: a size bug costs speed, never memory).
    private struct Writer {
        let base: UnsafeMutablePointer<UInt8>
        let capacity: Int
        var count = 0
        var overflowed = false

        @inline(__always)
        mutating func byte(_ value: UInt8) {
            guard count < capacity else {
                overflowed = true
                return
            }
            base[count] = value
            count += 1
        }

        mutating func header(_ tag: UInt8, _ length: Int) {
            byte(tag)
            if length < 0x80 {
                byte(UInt8(length))
                return
            }
            let octets = SNMPWire.lengthSize(length) - 1
            byte(0x80 | UInt8(octets))
            for shift in stride(from: (octets - 1) * 8, through: 0, by: -8) { byte(UInt8(truncatingIfNeeded: length >> shift)) }
        }

        mutating func bytes(_ values: [UInt8]) {
            guard values.count <= capacity - count else {
                overflowed = true
                return
            }
            values.withUnsafeBufferPointer { source in
                if let start = source.baseAddress, !source.isEmpty { (base + count).update(from: start, count: source.count) }
            }
            count += values.count
        }

        mutating func signed(_ value: Int64) {
            let size = SNMPWire.signedSize(value)
            header(0x02, size)
            for index in stride(from: size - 1, through: 0, by: -1) { byte(UInt8(truncatingIfNeeded: value >> (index * 8))) }
        }

        mutating func unsigned(_ tag: UInt8, _ value: UInt64) {
            let (size, leadingZero) = SNMPWire.unsignedSize(value)
            header(tag, size)
            if leadingZero { byte(0) }
            let digits = leadingZero ? size - 1 : size
            for index in stride(from: digits - 1, through: 0, by: -1) { byte(UInt8(truncatingIfNeeded: value >> UInt64(index * 8))) }
        }

        mutating func subidentifier(_ value: UInt64) {
            let size = SNMPWire.subidentifierSize(value)
            for index in stride(from: size - 1, through: 0, by: -1) {
                let digit = UInt8(truncatingIfNeeded: value >> UInt64(index * 7)) & 0x7F
                byte(index == 0 ? digit : digit | 0x80)
            }
        }

        mutating func oid(_ tag: UInt8, _ oid: OID) {
            header(tag, SNMPWire.contentSize(of: oid))
            let components = oid.components
            switch components.count {
            case 0: break
            case 1: subidentifier(UInt64(components[0]) * 40)
            default:
                subidentifier(UInt64(components[0]) * 40 + UInt64(components[1]))
                for index in 2..<components.count { subidentifier(UInt64(components[index])) }
            }
        }

        mutating func value(_ value: SNMPValue) {
            switch value {
            case .integer(let number): signed(number)
            case .octetString(let content), .ipAddress(let content), .opaque(let content):
                header(SNMPWire.tagAndSize(of: value).tag, content.count)
                bytes(content)
            case .null: header(0x05, 0)
            case .objectIdentifier(let name): oid(0x06, name)
            case .counter32(let number): unsigned(0x41, UInt64(number))
            case .gauge32(let number): unsigned(0x42, UInt64(number))
            case .timeTicks(let number): unsigned(0x43, UInt64(number))
            case .counter64(let number): unsigned(0x46, number)
            case .noSuchObject: header(0x80, 0)
            case .noSuchInstance: header(0x81, 0)
            case .endOfMibView: header(0x82, 0)
            }
        }
    }

    /// The message in DER; nil only if the sizes computed and the bytes written disagree
    /// (never, by the tests; `encode()` then uses SwiftASN1).
    static func encode(_ message: SNMPMessage) -> [UInt8]? {
        let pdu = message.pdu
        var listSize = 0
        for bind in pdu.varbinds { listSize += fieldSize(contentSize(of: bind)) }
        let pduSize = fieldSize(signedSize(Int64(pdu.requestID))) + fieldSize(signedSize(pdu.errorStatus))
            + fieldSize(signedSize(pdu.errorIndex)) + fieldSize(listSize)
        let messageSize = fieldSize(signedSize(message.version.rawValue)) + fieldSize(message.community.count) + fieldSize(pduSize)
        let total = fieldSize(messageSize)
        var complete = true
        let bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            var writer = Writer(base: buffer.baseAddress!, capacity: total)
            writer.header(0x30, messageSize)
            writer.signed(message.version.rawValue)
            writer.header(0x04, message.community.count)
            writer.bytes(message.community)
            writer.header(0xA0 | UInt8(truncatingIfNeeded: pdu.type.rawValue), pduSize)
            writer.signed(Int64(pdu.requestID))
            writer.signed(pdu.errorStatus)
            writer.signed(pdu.errorIndex)
            writer.header(0x30, listSize)
            for bind in pdu.varbinds {
                writer.header(0x30, contentSize(of: bind))
                writer.oid(0x06, bind.oid)
                writer.value(bind.value)
            }
            complete = !writer.overflowed && writer.count == total
            // Unwritten memory is never handed out: on a mismatch the bytes are zeroed and dropped.
            if !complete { buffer.update(repeating: 0) }
            initialized = complete ? writer.count : 0
        }
        return complete ? bytes : nil
    }
}
