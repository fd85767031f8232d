import XCTest
@testable import InetSNMP

final class BERTests: XCTestCase {
    func testOIDEncodingRoundTrips() throws {
        let oid: OID = [1, 3, 6, 1, 4, 1, 32473, 1, 4294967295]
        let bytes = oid.encodedContent()
        XCTAssertEqual(Array(bytes.prefix(7)), [0x2B, 6, 1, 4, 1, 0x81, 0xFD])
        XCTAssertEqual(OID(encodedContent: bytes[...]), oid)
        XCTAssertEqual(OID("1.3.6.1.2.1.1.3.0")?.description, "1.3.6.1.2.1.1.3.0")
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
