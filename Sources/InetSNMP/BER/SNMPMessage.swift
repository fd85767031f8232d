import SwiftASN1

/// A variable's value: the ASN.1 types of SNMPv2-SMI (RFC 2578 7.1) and the exceptions of
/// RFC 3416 (noSuchObject, noSuchInstance, endOfMibView).
public enum SNMPValue: Hashable, Sendable {
    case integer(Int64)
    case octetString([UInt8])
    case null
    case objectIdentifier(OID)
    case ipAddress([UInt8])
    case counter32(UInt32)
    case gauge32(UInt32)
    case timeTicks(UInt32)
    case opaque([UInt8])
    case counter64(UInt64)
    case noSuchObject
    case noSuchInstance
    case endOfMibView

    public static func string(_ text: String) -> SNMPValue { .octetString(Array(text.utf8)) }

    var isException: Bool {
        switch self {
        case .noSuchObject, .noSuchInstance, .endOfMibView: return true
        default: return false
        }
    }
}

/// One variable binding.
public struct VarBind: Hashable, Sendable {
    public var oid: OID
    public var value: SNMPValue

    public init(_ oid: OID, _ value: SNMPValue) {
        self.oid = oid
        self.value = value
    }
}

/// The PDU types of RFC 1157 and RFC 3416 (context-specific constructed tags).
public enum PDUType: UInt, Sendable {
    case getRequest = 0, getNextRequest = 1, response = 2, setRequest = 3, trapV1 = 4, getBulkRequest = 5
    case informRequest = 6, snmpV2Trap = 7, report = 8

    /// The case's name (`getRequest`), as `"\(type)"` writes it, without reflection (an
    /// event names the PDU of every request).
    public var name: String {
        switch self {
        case .getRequest: "getRequest"
        case .getNextRequest: "getNextRequest"
        case .response: "response"
        case .setRequest: "setRequest"
        case .trapV1: "trapV1"
        case .getBulkRequest: "getBulkRequest"
        case .informRequest: "informRequest"
        case .snmpV2Trap: "snmpV2Trap"
        case .report: "report"
        }
    }
}

/// Error statuses (RFC 3416 3; 0...5 are also SNMPv1's).
public enum ErrorStatus: Int64, Sendable {
    case noError = 0, tooBig, noSuchName, badValue, readOnly, genErr, noAccess, wrongType, wrongLength, wrongEncoding
    case wrongValue, noCreation, inconsistentValue, resourceUnavailable, commitFailed, undoFailed, authorizationError
    case notWritable, inconsistentName
}

public struct PDU: Hashable, Sendable {
    public var type: PDUType
    public var requestID: Int32
    /// error-status, or non-repeaters in a GetBulkRequest.
    public var errorStatus: Int64
    /// error-index, or max-repetitions in a GetBulkRequest.
    public var errorIndex: Int64
    public var varbinds: [VarBind]

    public init(type: PDUType, requestID: Int32, errorStatus: Int64 = 0, errorIndex: Int64 = 0, varbinds: [VarBind]) {
        self.type = type
        self.requestID = requestID
        self.errorStatus = errorStatus
        self.errorIndex = errorIndex
        self.varbinds = varbinds
    }
}

/// SNMPv1 (version 0) and SNMPv2c (version 1) messages, RFC 1157 4 and RFC 1901 3.
public struct SNMPMessage: Hashable, Sendable {
    public enum Version: Int64, Sendable {
        case v1 = 0
        case v2c = 1
    }

    public var version: Version
    public var community: [UInt8]
    public var pdu: PDU

    public init(version: Version, community: [UInt8], pdu: PDU) {
        self.version = version
        self.community = community
        self.pdu = pdu
    }
}

/// Why a datagram is not a message this agent can answer.
public enum SNMPDecodeError: Error, Equatable, Sendable {
    /// Not BER, or not the message structure: snmpInASNParseErrs.
    case malformed(String)
    /// A well-formed message of another version: snmpInBadVersions.
    case badVersion(Int64)
}

enum SNMPTag {
    static let ipAddress = ASN1Identifier(tagWithNumber: 0, tagClass: .application)
    static let counter32 = ASN1Identifier(tagWithNumber: 1, tagClass: .application)
    static let gauge32 = ASN1Identifier(tagWithNumber: 2, tagClass: .application)
    static let timeTicks = ASN1Identifier(tagWithNumber: 3, tagClass: .application)
    static let opaque = ASN1Identifier(tagWithNumber: 4, tagClass: .application)
    static let counter64 = ASN1Identifier(tagWithNumber: 6, tagClass: .application)
    static let noSuchObject = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    static let noSuchInstance = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)
    static let endOfMibView = ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)

    static func pdu(_ type: PDUType) -> ASN1Identifier {
        ASN1Identifier(tagWithNumber: type.rawValue, tagClass: .contextSpecific)
    }
}

// MARK: - Decoding

extension SNMPMessage {
    /// Decodes one message. Every length, tag and integer is checked; nothing here can trap.
    /// The common forms (definite lengths, one-byte tags) are read by `SNMPWire.decode`, which
    /// makes no node tree; anything it does not take (an error, indefinite lengths, BER's
    /// rarer forms) is decoded by SwiftASN1's BER parser, which also words the error.
    public static func decode(_ bytes: [UInt8]) throws(SNMPDecodeError) -> SNMPMessage {
        if let message = SNMPWire.decode(bytes) { return message }
        return try decodeWithSwiftASN1(bytes)
    }

    /// The reference decoder: SwiftASN1's BER parse, then the message structure. The fast
    /// path is checked against it (unit tests, and the `snmp-message` fuzz target).
    static func decodeWithSwiftASN1(_ bytes: [UInt8]) throws(SNMPDecodeError) -> SNMPMessage {
        let root: ASN1Node
        do {
            root = try BER.parse(bytes)
        } catch {
            throw .malformed("not BER: \(error)")
        }
        guard root.identifier == .sequence, case .constructed(let nodes) = root.content else { throw .malformed("message is not a SEQUENCE") }
        var iterator = nodes.makeIterator()
        guard let versionNode = iterator.next() else { throw .malformed("no version") }
        let versionNumber = try integer(versionNode)
        guard let communityNode = iterator.next(), communityNode.identifier == .octetString,
              case .primitive(let communityBytes) = communityNode.content else { throw .malformed("no community") }
        guard let pduNode = iterator.next(), iterator.next() == nil else { throw .malformed("no PDU, or extra fields") }
        guard let version = Version(rawValue: versionNumber) else { throw .badVersion(versionNumber) }
        let pdu = try decodePDU(pduNode)
        if version == .v1, pdu.type == .getBulkRequest || pdu.type == .snmpV2Trap || pdu.type == .informRequest || pdu.type == .report {
            throw .malformed("\(pdu.type) is not an SNMPv1 PDU")
        }
        return SNMPMessage(version: version, community: Array(communityBytes), pdu: pdu)
    }

    static func decodePDU(_ node: ASN1Node) throws(SNMPDecodeError) -> PDU {
        guard node.identifier.tagClass == .contextSpecific, let type = PDUType(rawValue: node.identifier.tagNumber),
              case .constructed(let fields) = node.content else { throw .malformed("unknown PDU tag \(node.identifier)") }
        guard type != .trapV1 else { throw .malformed("SNMPv1 traps are not accepted by the agent") }
        var iterator = fields.makeIterator()
        guard let idNode = iterator.next(), let statusNode = iterator.next(), let indexNode = iterator.next(),
              let listNode = iterator.next(), iterator.next() == nil else { throw .malformed("PDU needs four fields") }
        let id = try integer(idNode)
        guard let requestID = Int32(exactly: id) else { throw .malformed("request-id \(id) out of range") }
        let status = try integer(statusNode)
        let index = try integer(indexNode)
        guard listNode.identifier == .sequence, case .constructed(let list) = listNode.content else { throw .malformed("varbind list is not a SEQUENCE") }
        var varbinds: [VarBind] = []
        for bindNode in list {
            guard bindNode.identifier == .sequence, case .constructed(let pair) = bindNode.content else { throw .malformed("varbind is not a SEQUENCE") }
            var parts = pair.makeIterator()
            guard let nameNode = parts.next(), let valueNode = parts.next(), parts.next() == nil else { throw .malformed("varbind needs name and value") }
            guard nameNode.identifier == .objectIdentifier, case .primitive(let nameBytes) = nameNode.content,
                  let oid = OID(encodedContent: nameBytes) else { throw .malformed("bad variable name") }
            varbinds.append(VarBind(oid, try value(valueNode)))
            guard varbinds.count <= 1000 else { throw .malformed("too many varbinds") }
        }
        return PDU(type: type, requestID: requestID, errorStatus: status, errorIndex: index, varbinds: varbinds)
    }

    static func integer(_ node: ASN1Node) throws(SNMPDecodeError) -> Int64 {
        guard node.identifier == .integer, case .primitive(let bytes) = node.content else { throw .malformed("expected INTEGER") }
        return try signed(bytes)
    }

    static func signed(_ bytes: ArraySlice<UInt8>) throws(SNMPDecodeError) -> Int64 {
        guard let first = bytes.first, bytes.count <= 8 else { throw .malformed("INTEGER of \(bytes.count) octets") }
        var value: Int64 = first & 0x80 != 0 ? -1 : 0
        for byte in bytes { value = (value << 8) | Int64(byte) }
        return value
    }

    static func unsigned(_ bytes: ArraySlice<UInt8>, bits: Int) throws(SNMPDecodeError) -> UInt64 {
        guard let first = bytes.first, first & 0x80 == 0 else { throw .malformed(bytes.isEmpty ? "empty unsigned value" : "negative unsigned value") }
        var trimmed = bytes
        while trimmed.count > 1, trimmed.first == 0 { trimmed = trimmed.dropFirst() }
        guard trimmed.count <= bits / 8 else { throw .malformed("unsigned value over \(bits) bits") }
        var value: UInt64 = 0
        for byte in trimmed { value = (value << 8) | UInt64(byte) }
        return value
    }

    static func unsigned32(_ bytes: ArraySlice<UInt8>) throws(SNMPDecodeError) -> UInt32 {
        guard let value = UInt32(exactly: try unsigned(bytes, bits: 32)) else { throw .malformed("unsigned value over 32 bits") }
        return value
    }

    static func value(_ node: ASN1Node) throws(SNMPDecodeError) -> SNMPValue {
        guard case .primitive(let bytes) = node.content else { throw .malformed("constructed value \(node.identifier)") }
        switch node.identifier {
        case .integer: return .integer(try signed(bytes))
        case .octetString: return .octetString(Array(bytes))
        case .null:
            guard bytes.isEmpty else { throw .malformed("NULL with content") }
            return .null
        case .objectIdentifier:
            guard let oid = OID(encodedContent: bytes) else { throw .malformed("bad OBJECT IDENTIFIER") }
            return .objectIdentifier(oid)
        case SNMPTag.ipAddress:
            guard bytes.count == 4 else { throw .malformed("IpAddress of \(bytes.count) octets") }
            return .ipAddress(Array(bytes))
        case SNMPTag.counter32: return .counter32(try unsigned32(bytes))
        case SNMPTag.gauge32: return .gauge32(try unsigned32(bytes))
        case SNMPTag.timeTicks: return .timeTicks(try unsigned32(bytes))
        case SNMPTag.opaque: return .opaque(Array(bytes))
        case SNMPTag.counter64: return .counter64(try unsigned(bytes, bits: 64))
        case SNMPTag.noSuchObject: return .noSuchObject
        case SNMPTag.noSuchInstance: return .noSuchInstance
        case SNMPTag.endOfMibView: return .endOfMibView
        default: throw .malformed("unknown value type \(node.identifier)")
        }
    }
}

// MARK: - Encoding

extension SNMPMessage {
    /// The message in DER (`SNMPWire.encode`: lengths computed first, then written in one pass).
    public func encode() -> [UInt8] {
        SNMPWire.encode(self) ?? encodeWithSwiftASN1()
    }

    /// The reference encoder: SwiftASN1's DER serializer. `encode()` gives the same bytes.
    func encodeWithSwiftASN1() -> [UInt8] {
        var serializer = DER.Serializer()
        // Appending primitive and constructed nodes cannot fail for these closures.
        try? serializer.appendConstructedNode(identifier: .sequence) { message in
            message.appendPrimitiveNode(identifier: .integer) { $0.append(contentsOf: Self.signedBytes(version.rawValue)) }
            message.appendPrimitiveNode(identifier: .octetString) { $0.append(contentsOf: community) }
            try pdu.serialize(into: &message)
        }
        return serializer.serializedBytes
    }

    /// Minimal two's-complement octets (X.690 8.3).
    static func signedBytes(_ value: Int64) -> [UInt8] {
        var bytes = withUnsafeBytes(of: value.bigEndian, Array.init)
        while bytes.count > 1, (bytes[0] == 0 && bytes[1] & 0x80 == 0) || (bytes[0] == 0xFF && bytes[1] & 0x80 != 0) {
            bytes.removeFirst()
        }
        return bytes
    }

    /// Unsigned values as non-negative INTEGER octets (a leading zero when the top bit is set).
    static func unsignedBytes(_ value: UInt64) -> [UInt8] {
        var bytes = withUnsafeBytes(of: value.bigEndian, Array.init)
        while bytes.count > 1, bytes[0] == 0, bytes[1] & 0x80 == 0 { bytes.removeFirst() }
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return bytes
    }
}

extension PDU {
    func serialize(into serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: SNMPTag.pdu(type)) { fields in
            fields.appendPrimitiveNode(identifier: .integer) { $0.append(contentsOf: SNMPMessage.signedBytes(Int64(requestID))) }
            fields.appendPrimitiveNode(identifier: .integer) { $0.append(contentsOf: SNMPMessage.signedBytes(errorStatus)) }
            fields.appendPrimitiveNode(identifier: .integer) { $0.append(contentsOf: SNMPMessage.signedBytes(errorIndex)) }
            try fields.appendConstructedNode(identifier: .sequence) { list in
                for bind in varbinds { try bind.serialize(into: &list) }
            }
        }
    }
}

extension VarBind {
    func serialize(into serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { pair in
            pair.appendPrimitiveNode(identifier: .objectIdentifier) { $0.append(contentsOf: oid.encodedContent()) }
            value.serialize(into: &pair)
        }
    }

    /// The encoded size of this binding, for fitting a response into the message size.
    var encodedSize: Int { SNMPWire.fieldSize(SNMPWire.contentSize(of: self)) }
}

extension SNMPValue {
    func serialize(into serializer: inout DER.Serializer) {
        let (identifier, content): (ASN1Identifier, [UInt8]) = {
            switch self {
            case .integer(let value): return (.integer, SNMPMessage.signedBytes(value))
            case .octetString(let bytes): return (.octetString, bytes)
            case .null: return (.null, [])
            case .objectIdentifier(let oid): return (.objectIdentifier, oid.encodedContent())
            case .ipAddress(let bytes): return (SNMPTag.ipAddress, bytes)
            case .counter32(let value): return (SNMPTag.counter32, SNMPMessage.unsignedBytes(UInt64(value)))
            case .gauge32(let value): return (SNMPTag.gauge32, SNMPMessage.unsignedBytes(UInt64(value)))
            case .timeTicks(let value): return (SNMPTag.timeTicks, SNMPMessage.unsignedBytes(UInt64(value)))
            case .opaque(let bytes): return (SNMPTag.opaque, bytes)
            case .counter64(let value): return (SNMPTag.counter64, SNMPMessage.unsignedBytes(value))
            case .noSuchObject: return (SNMPTag.noSuchObject, [])
            case .noSuchInstance: return (SNMPTag.noSuchInstance, [])
            case .endOfMibView: return (SNMPTag.endOfMibView, [])
            }
        }()
        serializer.appendPrimitiveNode(identifier: identifier) { $0.append(contentsOf: content) }
    }
}
