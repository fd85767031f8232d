import SwiftASN1
import XCTest
@testable import InetSNMP

final class BERTests: XCTestCase {
    func testOIDEncodingRoundTrips() throws {
        let oid: OID = [1, 3, 6, 1, 4, 1, 32473, 1, 4294967295]
        let bytes = oid.encodedContent()
        XCTAssertEqual(Array(bytes.prefix(7)), [0x2B, 6, 1, 4, 1, 0x81, 0xFD])
        XCTAssertEqual(OID(encodedContent: bytes[...]), oid)
        XCTAssertEqual(OID("1.3.6.1.2.1.1.3.0")?.description, "1.3.6.1.2.1.1.3.0")
        XCTAssertEqual(OID([0, UInt32.max, 10, 9, 100]).description, "0.4294967295.10.9.100")
        XCTAssertEqual(OID([]).description, "")
        for raw: UInt in 0...8 {
            let type = try XCTUnwrap(PDUType(rawValue: raw))
            XCTAssertEqual(type.name, "\(type)")
        }
        XCTAssertEqual(OID(".1.3.6"), [1, 3, 6])
        XCTAssertNil(OID("1.3.x"))
        XCTAssertNil(OID("1..3"))
        XCTAssertNil(OID(encodedContent: [0x2B, 0x81][...]), "truncated sub-identifier")
        XCTAssertNil(OID(encodedContent: [0x2B, 0x80, 0x01][...]), "leading 0x80")
        XCTAssertNil(OID(encodedContent: [0x2B, 0x90, 0x80, 0x80, 0x80, 0x80, 0x01][...]), "sub-identifier over 32 bits")
        XCTAssertTrue(OID("1.3.6.1.2")! < OID("1.3.6.1.2.1")!)
        XCTAssertTrue(OID("1.3.6.1.2.1.10")! > OID("1.3.6.1.2.1.9.5")!)
    }

    /// Issue 11: a sub-identifier from 2^32 to 2^32+79 after the first trapped the decoder; an
    /// OID of 2.4294967295 trapped the encoder. Neither may trap; the first is refused, the
    /// second is a valid OID and round-trips.
    func testSubIdentifiersAtThe32BitBoundary() {
        for extra: UInt64 in [0, 1, 79, 80, 1 << 20] {
            var content: [UInt8] = [0x2B, 0x06, 0x01]
            var value = (1 << 32) + extra
            var digits: [UInt8] = [UInt8(value & 0x7F)]
            value >>= 7
            while value > 0 { digits.append(UInt8(value & 0x7F) | 0x80); value >>= 7 }
            content += digits.reversed()
            XCTAssertNil(OID(encodedContent: content[...]), "2^32 + \(extra)")
        }
        XCTAssertNil(OID(encodedContent: [0x2B, 0x90, 0x80, 0x80, 0x80, 0x00][...]))
        let widest: OID = [2, UInt32.max]
        let bytes = widest.encodedContent()
        XCTAssertEqual(bytes, [0x90, 0x80, 0x80, 0x80, 0x4F], "80 + 4294967295 = 4294967375 in base 128")
        XCTAssertEqual(OID(encodedContent: bytes[...]), widest)
        XCTAssertNil(OID(encodedContent: [0x90, 0x80, 0x80, 0x80, 0x50][...]), "first sub-identifier past 2.4294967295")
        XCTAssertEqual(OID(encodedContent: [0x4F][...]), [1, 39])
        XCTAssertEqual(OID([7]).encodedContent(), [0x82, 0x18], "a lone first arc, as 7 * 40")
    }

    func testMessageRoundTripsEveryValueType() throws {
        let binds: [VarBind] = [
            VarBind([1, 3, 6, 1, 2, 1, 1, 1, 0], .string("InetKit")),
            VarBind([1, 3, 6, 1, 2], .integer(-129)),
            VarBind([1, 3, 6, 1, 3], .integer(Int64(Int32.max))),
            VarBind([1, 3, 6, 1, 4], .null),
            VarBind([1, 3, 6, 1, 5], .objectIdentifier([1, 3, 6, 1, 4, 1, 32473])),
            VarBind([1, 3, 6, 1, 6], .ipAddress([192, 0, 2, 1])),
            VarBind([1, 3, 6, 1, 7], .counter32(UInt32.max)),
            VarBind([1, 3, 6, 1, 8], .gauge32(128)),
            VarBind([1, 3, 6, 1, 9], .timeTicks(4_294_967_295)),
            VarBind([1, 3, 6, 1, 10], .opaque([1, 2, 3])),
            VarBind([1, 3, 6, 1, 11], .counter64(UInt64.max)),
            VarBind([1, 3, 6, 1, 12], .noSuchObject),
            VarBind([1, 3, 6, 1, 13], .noSuchInstance),
            VarBind([1, 3, 6, 1, 14], .endOfMibView),
        ]
        let message = SNMPMessage(version: .v2c, community: Array("public".utf8),
                                  pdu: PDU(type: .response, requestID: -5, errorStatus: 2, errorIndex: 3, varbinds: binds))
        XCTAssertEqual(try SNMPMessage.decode(message.encode()), message)
    }

    func testKnownEncodingOfAGetRequest() throws {
        // snmpget -v1 -c public HOST 1.3.6.1.2.1.1.1.0, as net-snmp sends it (request-id 1).
        let bytes: [UInt8] = [0x30, 0x26, 0x02, 0x01, 0x00, 0x04, 0x06, 0x70, 0x75, 0x62, 0x6C, 0x69, 0x63, 0xA0, 0x19, 0x02, 0x01,
                              0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x0E, 0x30, 0x0C, 0x06, 0x08, 0x2B, 0x06, 0x01,
                              0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00]
        let message = try SNMPMessage.decode(bytes)
        XCTAssertEqual(message.version, .v1)
        XCTAssertEqual(message.community, Array("public".utf8))
        XCTAssertEqual(message.pdu.type, .getRequest)
        XCTAssertEqual(message.pdu.varbinds, [VarBind([1, 3, 6, 1, 2, 1, 1, 1, 0], .null)])
        XCTAssertEqual(message.encode(), bytes)
    }

    /// The fast reader and writer (`SNMPWire`) against SwiftASN1's: the same bytes for every
    /// value type and size class, and, for every one-byte corruption of requests and responses,
    /// a message only where SwiftASN1 finds the same one. BER's rarer forms (indefinite
    /// lengths, a length in more octets than needed) are left to SwiftASN1 or read alike.
    func testWireCodecAgreesWithSwiftASN1() throws {
        let longString = SNMPValue.octetString(Array(repeating: 0x41, count: 300))
        let numbers: [Int64] = [0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, 32768, -32769, Int64(Int32.max), Int64(Int32.min), Int64.max, Int64.min]
        let unsigned: [UInt64] = [0, 1, 127, 128, 255, 256, 0x7FFF_FFFF, 0x8000_0000, UInt64(UInt32.max), UInt64.max, 1 << 63]
        var binds: [VarBind] = numbers.map { VarBind([1, 3, 6, 1, 2], .integer($0)) }
        binds += unsigned.flatMap { value -> [VarBind] in
            let small = UInt32(truncatingIfNeeded: value)
            return [VarBind([1, 3, 6, 1, 7], .counter32(small)), VarBind([1, 3, 6, 1, 8], .gauge32(small)),
                    VarBind([1, 3, 6, 1, 9], .timeTicks(small)), VarBind([1, 3, 6, 1, 11], .counter64(value))]
        }
        binds += [
            VarBind([1, 3, 6, 1, 2, 1, 1, 1, 0], .string("InetKit")), VarBind([1, 3, 6, 1, 4], .null),
            VarBind([2, UInt32.max, 0, 127, 128, 16383, 16384], .objectIdentifier([1, 3, 6, 1, 4, 1, 32473])),
            VarBind([2, 999], .objectIdentifier([2, 999])), VarBind([1, 3, 6, 1, 6], .ipAddress([192, 0, 2, 1])),
            VarBind([1, 3, 6, 1, 10], .opaque([])), VarBind([1, 3, 6, 1, 12], .noSuchObject),
            VarBind([1, 3, 6, 1, 13], .noSuchInstance), VarBind([1, 3, 6, 1, 14], .endOfMibView), VarBind([1, 3, 6, 1, 15], longString),
        ]
        var messages: [SNMPMessage] = []
        for type in [PDUType.getRequest, .getNextRequest, .response, .setRequest, .getBulkRequest, .report] {
            for count in [0, 1, 3, binds.count] {
                messages.append(SNMPMessage(version: type == .getBulkRequest || type == .report ? .v2c : .v1, community: Array("public".utf8),
                                            pdu: PDU(type: type, requestID: Int32(count) - 2, errorStatus: Int64(count), errorIndex: -1, varbinds: Array(binds.prefix(count)))))
            }
        }
        messages.append(SNMPMessage(version: .v2c, community: Array(repeating: 0x63, count: 200), pdu: PDU(type: .response, requestID: Int32.min, varbinds: [])))
        for message in messages {
            let encoded = message.encode()
            XCTAssertEqual(encoded, message.encodeWithSwiftASN1(), "\(message.pdu.type) with \(message.pdu.varbinds.count) varbinds")
            XCTAssertEqual(SNMPWire.decode(encoded), message)
            for bind in message.pdu.varbinds {
                var serializer = DER.Serializer()
                try bind.serialize(into: &serializer)
                XCTAssertEqual(bind.encodedSize, serializer.serializedBytes.count)
            }
        }
        // A lone first arc is written as `first * 40` (and so reads back as two arcs): the same bytes.
        let lone = SNMPMessage(version: .v2c, community: [], pdu: PDU(type: .response, requestID: 0, varbinds: [VarBind([7], .objectIdentifier([1]))]))
        XCTAssertEqual(lone.encode(), lone.encodeWithSwiftASN1())
        var corruptions = 0
        for message in messages where message.pdu.varbinds.count <= 3 {
            let valid = message.encode()
            for index in valid.indices {
                for value: UInt8 in [0x00, 0x01, 0x05, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xA5, 0xFF] {
                    var bytes = valid
                    bytes[index] = value
                    let reference = try? SNMPMessage.decodeWithSwiftASN1(bytes)
                    if let fast = SNMPWire.decode(bytes) {
                        XCTAssertEqual(fast, reference, "byte \(index) set to \(value)")
                    } else if reference == nil {
                        corruptions += 1
                    }
                    XCTAssertEqual(try? SNMPMessage.decode(bytes), reference)
                }
            }
            XCTAssertNil(SNMPWire.decode(valid + [0]), "trailing bytes")
            XCTAssertNil(SNMPWire.decode(Array(valid.dropLast())), "truncated")
        }
        XCTAssertGreaterThan(corruptions, 100, "corruptions both refuse")
        // A length in more octets than needed is BER: both read it. Indefinite: SwiftASN1's.
        let request: [UInt8] = [0x30, 0x81, 0x1A, 0x02, 0x01, 0x01, 0x04, 0x01, 0x70, 0xA0, 0x12, 0x02, 0x01, 0x07, 0x02, 0x01, 0x00,
                                0x02, 0x01, 0x00, 0x30, 0x07, 0x30, 0x05, 0x06, 0x01, 0x2B, 0x05, 0x00]
        XCTAssertNotNil(SNMPWire.decode(request))
        XCTAssertEqual(SNMPWire.decode(request), try SNMPMessage.decodeWithSwiftASN1(request))
        let indefinite: [UInt8] = [0x30, 0x80] + request.dropFirst(3) + [0x00, 0x00]
        XCTAssertNil(SNMPWire.decode(indefinite))
        XCTAssertEqual(try SNMPMessage.decode(indefinite), try SNMPMessage.decodeWithSwiftASN1(request))
    }

    func testMalformedInputIsRejectedNotTrapped() {
        let valid = SNMPMessage(version: .v2c, community: Array("public".utf8),
                                pdu: PDU(type: .getRequest, requestID: 7, varbinds: [VarBind([1, 3, 6, 1, 2, 1, 1, 3, 0], .null)])).encode()
        // Every truncation and every single-byte corruption: an error or a message, never a crash.
        for length in 0..<valid.count {
            XCTAssertThrowsError(try SNMPMessage.decode(Array(valid.prefix(length))), "truncated to \(length)")
        }
        for index in valid.indices {
            for value: UInt8 in [0x00, 0x7F, 0x80, 0x81, 0x84, 0xFF] {
                var bytes = valid
                bytes[index] = value
                _ = try? SNMPMessage.decode(bytes)
            }
        }
        let cases: [(String, [UInt8])] = [
            ("length past the end", [0x30, 0x7F, 0x02, 0x01, 0x01]),
            ("overlong length of length", [0x30, 0x89, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
            ("indefinite length", [0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00]),
            ("wrong outer tag", [0x31, 0x03, 0x02, 0x01, 0x01]),
            ("huge version", [0x30, 0x0B, 0x02, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
            ("nesting", Array(repeating: [0x30, 0x02], count: 1).flatMap { $0 } + [0x30, 0x00]),
        ]
        for (name, bytes) in cases {
            XCTAssertThrowsError(try SNMPMessage.decode(bytes), name)
        }
        var deep: [UInt8] = [0x05, 0x00]
        for _ in 0..<200 { deep = [0x30] + Self.length(deep.count) + deep }
        XCTAssertThrowsError(try SNMPMessage.decode(deep), "nesting depth")
        // Version 3 is well-formed but not ours.
        let v3 = SNMPMessage(version: .v1, community: [], pdu: PDU(type: .getRequest, requestID: 1, varbinds: [])).encode()
        var patched = v3
        patched[4] = 3
        XCTAssertThrowsError(try SNMPMessage.decode(patched)) { error in
            XCTAssertEqual(error as? SNMPDecodeError, .badVersion(3))
        }
        // A negative request-id is fine; one past 32 bits is not.
        let big = [0x30, 0x1A, 0x02, 0x01, 0x01, 0x04, 0x01, 0x70, 0xA0, 0x12, 0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00,
                   0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x00] as [UInt8]
        XCTAssertThrowsError(try SNMPMessage.decode(big + [0, 0]))
    }

    static func length(_ count: Int) -> [UInt8] {
        if count < 128 { return [UInt8(count)] }
        if count < 256 { return [0x81, UInt8(count)] }
        return [0x82, UInt8(count >> 8), UInt8(count & 0xFF)]
    }
}
