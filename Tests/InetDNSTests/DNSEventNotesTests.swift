import Foundation
import InetCore
@testable import InetDNS
import XCTest

/// The `dns.query` event's description of an exchange, from the wire bytes.
final class DNSEventNotesTests: XCTestCase {
    /// A query for `labels` (raw label bytes) of `type`.
    private func query(_ labels: [[UInt8]], type: UInt16 = 1) -> [UInt8] {
        var bytes: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in labels { bytes.append(UInt8(label.count)); bytes += label }
        bytes += [0, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        return bytes
    }

    private func describe(_ query: [UInt8], limit: Int = 1024) throws -> [String: Any] {
        var body = EventBody(limit: limit)
        query.withUnsafeBytes { DNSEventNotes.describe(query: $0, reply: nil, from: "none", into: &body) }
        let json = #"{"id":0"# + String(decoding: body.finish(), as: UTF8.self) + "}"
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any], json)
    }

    func testTheQuestionIsShownInPresentationForm() throws {
        let event = try describe(query([Array("www".utf8), Array("example".utf8), Array("test".utf8)], type: 28))
        XCTAssertEqual(event["qname"] as? String, "www.example.test.")
        XCTAssertEqual(event["qtype"] as? String, "AAAA")
        XCTAssertEqual(event["rcode"] as? String, "none")
        XCTAssertEqual(try describe(query([]))["qname"] as? String, ".")
    }

    func testOddBytesAreEscapedAsTheZoneFileWouldAndMarkupStaysText() throws {
        let event = try describe(query([Array("a.b\\c".utf8), [0x20, 0xFF, 0x00], Array("<img onerror=x>".utf8)]))
        XCTAssertEqual(event["qname"] as? String, #"a\.b\\c.\032\255\000.<img\032onerror=x>."#)
        // In the JSON itself the markup is escaped (\u003c), so no consumer can paste a tag.
        var body = EventBody(limit: 1024)
        query([Array("<b>".utf8)]).withUnsafeBytes { DNSEventNotes.describe(query: $0, reply: nil, from: "none", into: &body) }
        let raw = String(decoding: body.finish(), as: UTF8.self)
        XCTAssertFalse(raw.contains("<"), raw)
        XCTAssertTrue(raw.contains(#"\u003cb\u003e"#), raw)
    }

    func testMalformedQuestionsGiveAnEmptyNameAndLongOnesStayWithinTheEvent() throws {
        XCTAssertEqual(try describe([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 63, 0x61])["qname"] as? String, "")
        XCTAssertEqual(try describe([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1])["qname"] as? String, "")
        // 4 labels of 63 bytes that each need a \DDD escape: 1000+ bytes of text.
        let long = query(Array(repeating: [UInt8](repeating: 0xFE, count: 63), count: 3) + [[UInt8](repeating: 0xFE, count: 61)])
        let full = try describe(long, limit: 4096)
        XCTAssertEqual((full["qname"] as? String)?.count, 250 * 4 + 4)
        XCTAssertNil(full["truncated"])
        let cut = try describe(long, limit: 256)
        XCTAssertEqual(cut["truncated"] as? Bool, true)
        XCTAssertLessThan((cut["qname"] as? String)?.count ?? 999, 256)
    }

    func testTheLiteralNamesOfTypesAndRcodesAreTheirNames() {
        for type in 0...300 {
            let type = DNSType(rawValue: UInt16(type))
            XCTAssertEqual(type.staticName.map { "\($0)" }, type.knownName)
        }
        XCTAssertEqual(DNSType(rawValue: 28).description, "AAAA")
        XCTAssertEqual(DNSType(rawValue: 65280).description, "TYPE65280")
        for code in UInt16(0)...20 {
            let name = DNSRCodeName.name(code)
            if let known = DNSRCodeName.staticName(code) {
                XCTAssertEqual("\(known)", name)
            } else {
                XCTAssertEqual(name, "RCODE\(code)")
            }
        }
        XCTAssertEqual(DNSRCodeName.name(3), "NXDOMAIN")
    }

    func testHostnameLabelsAndOddLabelsMixed() throws {
        let event = try describe(query([Array("Mail-01_x".utf8), Array("a b".utf8), Array("example".utf8)], type: 65280))
        XCTAssertEqual(event["qname"] as? String, #"Mail-01_x.a\032b.example."#)
        XCTAssertEqual(event["qtype"] as? String, "TYPE65280")
    }
}
