@testable import InetDNS
import XCTest

final class DNSCodecTests: XCTestCase {
    private func name(_ text: String) -> DNSName { try! DNSName(text) }

    private var sample: DNSMessage {
        let zone = name("example.test.")
        return DNSMessage(
            id: 0xBEEF, isResponse: true, authoritative: true, recursionDesired: true, rcode: DNSRCode.noError,
            questions: [DNSQuestion(name: name("WwW.Example.TEST."), type: .a)],
            answers: [
                DNSRecord(name: name("www.example.test."), ttl: 300, data: .cname(name("host.example.test."))),
                DNSRecord(name: name("host.example.test."), ttl: 300, data: .a([192, 0, 2, 1])),
                DNSRecord(name: name("host.example.test."), ttl: 300, data: .aaaa([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])),
                DNSRecord(name: zone, ttl: 300, data: .mx(preference: 10, exchange: name("mail.example.test."))),
                DNSRecord(name: zone, ttl: 300, data: .txt([Array("v=spf1 -all".utf8), []])),
                DNSRecord(name: name("_http._tcp.example.test."), ttl: 300, data: .srv(priority: 0, weight: 5, port: 10080, target: name("host.example.test."))),
                DNSRecord(name: zone, ttl: 300, data: .caa(flags: 0, tag: Array("issue".utf8), value: Array("ca.test".utf8))),
                DNSRecord(name: zone, ttl: 300, data: .unknown(type: DNSType(rawValue: 65280), data: [1, 2, 3])),
            ],
            authority: [DNSRecord(name: zone, ttl: 3600, data: .soa(mname: name("ns1.example.test."), rname: name("hostmaster.example.test."), serial: 2026113001, refresh: 7200, retry: 3600, expire: 1209600, minimum: 300))],
            additional: [DNSRecord(name: name("ns1.example.test."), ttl: 300, data: .a([192, 0, 2, 53]))],
            edns: EDNS(udpPayloadSize: 1232, options: [EDNSOption(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])]))
    }

    func testRoundTripKeepsEverythingIncludingLetterCase() throws {
        let bytes = try DNSMessageWriter.encode(sample)
        let decoded = try DNSMessageReader.decode(bytes)
        XCTAssertEqual(decoded, sample)
        XCTAssertEqual(decoded.questions[0].name.description, "WwW.Example.TEST.", "the question keeps the client's letter case")
    }

    func testNamesAreCompressed() throws {
        let bytes = try DNSMessageWriter.encode(sample)
        // Uncompressed, "example.test." alone would appear 10+ times (14 octets each).
        let needle: [UInt8] = [7] + Array("example".utf8) + [4] + Array("test".utf8) + [0]
        let occurrences = (0...(bytes.count - needle.count)).filter { Array(bytes[$0..<($0 + needle.count)]) == needle }.count
        XCTAssertEqual(occurrences, 1)
    }

    func testSRVTargetIsNeverCompressed() throws {
        let message = DNSMessage(answers: [
            DNSRecord(name: name("host.example.test."), ttl: 1, data: .a([1, 2, 3, 4])),
            DNSRecord(name: name("_x._tcp.example.test."), ttl: 1, data: .srv(priority: 1, weight: 1, port: 1, target: name("host.example.test."))),
        ])
        let bytes = try DNSMessageWriter.encode(message)
        let target: [UInt8] = [4] + Array("host".utf8) + [7] + Array("example".utf8) + [4] + Array("test".utf8) + [0]
        XCTAssertEqual(Array(bytes.suffix(target.count)), target)
    }

    func testTruncationSetsTCAndKeepsQuestionAndOPT() throws {
        var message = sample
        message.answers = (0..<100).map { _ in DNSRecord(name: name("host.example.test."), ttl: 1, data: .txt([[UInt8](repeating: 120, count: 200)])) }
        let bytes = try DNSMessageWriter.encode(message, limit: 512)
        XCTAssertLessThanOrEqual(bytes.count, 512)
        let decoded = try DNSMessageReader.decode(bytes)
        XCTAssertTrue(decoded.truncated)
        XCTAssertEqual(decoded.questions, message.questions)
        XCTAssertNotNil(decoded.edns)
        XCTAssertLessThan(decoded.answers.count, 100)
    }

    func testNamePresentationForm() throws {
        XCTAssertEqual(try DNSName("a\\.b.example.").labels.count, 2)
        XCTAssertEqual(try DNSName("a\\.b.example.").description, "a\\.b.example.")
        XCTAssertEqual(try DNSName("\\065bc.test").description, "Abc.test.")
        XCTAssertEqual(try DNSName("x\\000y.").description, "x\\000y.")
        XCTAssertThrowsError(try DNSName("a..b"))
        XCTAssertThrowsError(try DNSName(String(repeating: "a", count: 64) + ".test"))
        XCTAssertThrowsError(try DNSName(Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: ".")), "256 octets")
        XCTAssertNoThrow(try DNSName(Array(repeating: String(repeating: "a", count: 63), count: 3).joined(separator: ".") + "." + String(repeating: "b", count: 61)), "255 octets")
        XCTAssertEqual(try DNSName("WWW.Example."), try DNSName("www.example."))
        XCTAssertTrue(try DNSName("a.b.example.").isSubdomain(of: DNSName("EXAMPLE.")))
    }

    // MARK: - Malformed input: typed errors, never a crash

    private let header: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]

    private func decodeError(_ bytes: [UInt8]) -> DNSWireError? {
        do {
            _ = try DNSMessageReader.decode(bytes)
            return nil
        } catch {
            return error
        }
    }

    func testPointerLoopIsRejected() {
        // The question name is a pointer to itself (offset 12).
        XCTAssertEqual(decodeError(header + [0xC0, 12, 0, 1, 0, 1]), .badPointer)
        // Two pointers pointing at each other.
        let twoNames: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0] + [0xC0, 18, 0, 1, 0, 1] + [0xC0, 12, 0, 1, 0, 1]
        XCTAssertEqual(decodeError(twoNames), .badPointer)
    }

    func testForwardPointerIsRejected() {
        XCTAssertEqual(decodeError(header + [0xC0, 20, 0, 1, 0, 1, 1, 97, 0]), .badPointer)
    }

    func testOverlongLabelsAndNamesAndBadLabelTypes() {
        XCTAssertEqual(decodeError(header + [0x40] + Array(repeating: 97, count: 64) + [0, 0, 1, 0, 1]), .badLabelType)
        XCTAssertEqual(decodeError(header + [0x80, 0, 0, 1, 0, 1]), .badLabelType)
        let long: [UInt8] = Array(repeating: [UInt8(63)] + [UInt8](repeating: 97, count: 63), count: 5).flatMap { $0 }
        XCTAssertEqual(decodeError(header + long + [0, 0, 1, 0, 1]), .nameTooLong)
        // A name that exceeds 255 octets only through pointers is refused too.
        var viaPointers: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0]
        let three: [UInt8] = Array(repeating: [UInt8(63)] + [UInt8](repeating: 97, count: 63), count: 3).flatMap { $0 }
        viaPointers += three + [0, 0, 1, 0, 1]
        viaPointers += [UInt8(63)] + [UInt8](repeating: 98, count: 63) + [0xC0, 12, 0, 1, 0, 1]
        XCTAssertEqual(decodeError(viaPointers), .nameTooLong)
    }

    func testTruncatedMessagesAreRejected() throws {
        let full = try DNSMessageWriter.encode(sample)
        for cut in stride(from: 0, to: full.count, by: 7) {
            XCTAssertNotNil(decodeError(Array(full.prefix(cut))), "cut at \(cut)")
        }
        XCTAssertEqual(decodeError(Array(header.prefix(5))), .truncated)
        // Counts that promise more than the packet holds.
        XCTAssertEqual(decodeError([0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]), .truncated)
    }

    func testBadRDataAndOPTAreRejected() {
        let owner: [UInt8] = [1, 97, 0]
        // An A record with 5 octets of data.
        let badA: [UInt8] = [0, 1, 0x81, 0, 0, 0, 0, 1, 0, 0, 0, 0] + owner + [0, 1, 0, 1, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5]
        XCTAssertEqual(decodeError(badA), .badRData)
        // RDLENGTH past the end.
        let past: [UInt8] = [0, 1, 0x81, 0, 0, 0, 0, 1, 0, 0, 0, 0] + owner + [0, 1, 0, 1, 0, 0, 0, 1, 0, 50, 1, 2, 3, 4]
        XCTAssertEqual(decodeError(past), .truncated)
        // Two OPT records.
        let opt: [UInt8] = [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0]
        XCTAssertEqual(decodeError([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2] + opt + opt), .badOPT)
        // Trailing garbage.
        XCTAssertEqual(decodeError(header + owner + [0, 1, 0, 1, 9]), .trailingBytes)
    }

    func testRandomBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        let seed = (try? DNSMessageWriter.encode(sample)) ?? []
        for _ in 0..<20_000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if let message = try? DNSMessageReader.decode(bytes) {
                XCTAssertNoThrow(try DNSMessageWriter.encode(message))
            }
        }
    }

    func testEDNSExtendedRCodeAndVersion() throws {
        var message = DNSMessage(id: 1, isResponse: true, rcode: DNSRCode.badVers, edns: EDNS(udpPayloadSize: 4096, version: 0))
        let decoded = try DNSMessageReader.decode(DNSMessageWriter.encode(message))
        XCTAssertEqual(decoded.rcode, DNSRCode.badVers, "BADVERS (16) needs the extended RCODE bits")
        message.edns?.version = 1
        XCTAssertEqual(try DNSMessageReader.decode(DNSMessageWriter.encode(message)).edns?.version, 1)
    }

    /// The writer refuses what the wire cannot carry instead of trapping on a narrowing.
    func testWriterIsTotal() throws {
        let name = try DNSName("a.test.")
        func encode(_ data: RData) -> DNSWireError? {
            let message = DNSMessage(id: 1, isResponse: true, answers: [DNSRecord(name: name, ttl: 1, data: data)])
            do { _ = try DNSMessageWriter.encode(message); return nil } catch { return error }
        }
        XCTAssertEqual(encode(.caa(flags: 0, tag: Array(repeating: 0x61, count: 256), value: [])), .badRData)
        XCTAssertEqual(encode(.caa(flags: 0, tag: [], value: [])), .badRData)
        XCTAssertEqual(encode(.txt([Array(repeating: 0x61, count: 256)])), .badRData)
        XCTAssertEqual(encode(.a([1, 2, 3])), .badRData)
        XCTAssertEqual(encode(.aaaa([1, 2, 3, 4])), .badRData)
        XCTAssertEqual(encode(.unknown(type: DNSType(rawValue: 999), data: Array(repeating: 0, count: 70_000))), .messageTooLarge)
        XCTAssertNil(encode(.caa(flags: 0, tag: Array("issue".utf8), value: Array("ca.test".utf8))))
        let unchecked = DNSName(validatedLabels: [Array(repeating: 0x61, count: 64)])
        let bad = DNSMessage(id: 1, isResponse: true, questions: [DNSQuestion(name: unchecked, type: .a)])
        XCTAssertThrowsError(try DNSMessageWriter.encode(bad))
        let options = EDNS(options: [EDNSOption(code: 1, data: Array(repeating: 0, count: 70_000))])
        XCTAssertThrowsError(try DNSMessageWriter.encode(DNSMessage(id: 1, edns: options)))
        XCTAssertFalse(DNSMessageWriter.fits(DNSRecord(name: name, ttl: 1, data: .unknown(type: DNSType(rawValue: 999), data: Array(repeating: 0, count: 65_500)))))
        XCTAssertTrue(DNSMessageWriter.fits(DNSRecord(name: name, ttl: 1, data: .a([1, 2, 3, 4]))))
    }
}

final class DNSTypeNameTests: XCTestCase {
    func testTheTypesWithANameAreTheOnesNamesAreLookedUpAmong() {
        // `knownName` (a switch) and `known` (what `init?(name:)` searches) must list the same types.
        let named = (0...UInt16.max).filter { DNSType(rawValue: $0).knownName != nil }
        XCTAssertEqual(named, DNSType.known.sorted())
        for raw in DNSType.known {
            let name = DNSType(rawValue: raw).description
            XCTAssertEqual(DNSType(name: name.lowercased())?.rawValue, raw, name)
        }
        XCTAssertEqual(DNSType(rawValue: 65280).description, "TYPE65280")
        XCTAssertEqual(DNSType(name: "TYPE65280")?.rawValue, 65280)
        XCTAssertNil(DNSType(name: "NOPE"))
    }
}
