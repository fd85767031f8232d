@testable import InetDNS
import XCTest

final class ZoneFileParserTests: XCTestCase {
    private let origin = try! DNSName("example.test.")

    private func parse(_ text: String) throws -> [DNSRecord] {
        try ZoneFileParser.parse(text, origin: origin, file: "example.zone")
    }

    private func error(_ text: String) -> ZoneFileError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error as? ZoneFileError
        }
    }

    func testTheFullSyntax() throws {
        let records = try parse(##"""
            $TTL 1h ; default TTL
            @   IN  SOA ns1 hostmaster (
                    2026113001 ; serial
                    2h 1h 2w
                    300 )
                IN  NS  ns1
                    NS  ns2.other.test.
            ns1     A   192.0.2.53
            www 600 IN  CNAME host
            host    IN 120 A 192.0.2.1
                    AAAA 2001:db8::1
            @       MX  10 mail
            txt     TXT "hello \"world\"" plain "semi;colon" "\065\066"
            _http._tcp SRV 0 5 80 host
            @       CAA 0 issue "ca.test"
            $ORIGIN sub.example.test.
            deep    A 192.0.2.9
            odd     TYPE65280 \# 3 010203
            gen     A \# 4 C0000207
            esc\.dot A 192.0.2.10
            """##)
        XCTAssertEqual(records.count, 15)
        let soa = records[0]
        XCTAssertEqual(soa.name, origin)
        XCTAssertEqual(soa.ttl, 3600)
        XCTAssertEqual(soa.data, .soa(mname: try DNSName("ns1.example.test."), rname: try DNSName("hostmaster.example.test."),
                                      serial: 2026113001, refresh: 7200, retry: 3600, expire: 1_209_600, minimum: 300))
        XCTAssertEqual(records[1].data, .ns(try DNSName("ns1.example.test.")))
        XCTAssertEqual(records[2].name, origin, "an omitted owner is the previous one")
        XCTAssertEqual(records[2].data, .ns(try DNSName("ns2.other.test.")), "absolute names stay")
        XCTAssertEqual(records[4].ttl, 600)
        XCTAssertEqual(records[4].data, .cname(try DNSName("host.example.test.")))
        XCTAssertEqual(records[5].ttl, 120, "TTL after the class")
        XCTAssertEqual(records[6].name, try DNSName("host.example.test."))
        XCTAssertEqual(records[6].data, .aaaa([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]))
        XCTAssertEqual(records[7].data, .mx(preference: 10, exchange: try DNSName("mail.example.test.")))
        XCTAssertEqual(records[8].data, .txt([Array("hello \"world\"".utf8), Array("plain".utf8), Array("semi;colon".utf8), Array("AB".utf8)]))
        XCTAssertEqual(records[9].name, try DNSName("_http._tcp.example.test."))
        XCTAssertEqual(records[10].data, .caa(flags: 0, tag: Array("issue".utf8), value: Array("ca.test".utf8)))
        XCTAssertEqual(records[11].name, try DNSName("deep.sub.example.test."))
        XCTAssertEqual(records[12].data, .unknown(type: DNSType(rawValue: 65280), data: [1, 2, 3]))
        XCTAssertEqual(records[13].data, .a([192, 0, 2, 7]), "a known type in RFC 3597 form is decoded")
        XCTAssertEqual(records[14].name.labels.first, Array("esc.dot".utf8))
    }

    func testErrorsNameTheLine() {
        XCTAssertEqual(error("$TTL 60\n@ A 999.1.1.1\n")?.line, 2)
        XCTAssertEqual(error("$TTL 60\n\n\nwww A\n")?.line, 4)
        XCTAssertEqual(error("@ A 192.0.2.1\n")?.message.contains("no TTL"), true)
        XCTAssertEqual(error("$TTL 60\n@ SOA a b (1 2 3 4\n\n")?.line, 2, "unclosed parenthesis points at its opening line")
        XCTAssertEqual(error("$TTL 60\n@ TXT \"open\n")?.line, 2)
        XCTAssertEqual(error("$TTL 60\n@ FOO bar\n")?.message.contains("unknown type"), true)
        XCTAssertEqual(error("$TTL 60\n@ MX 70000 mail\n")?.line, 2)
        XCTAssertEqual(error("$TTL 60\n@ TXT \"\(String(repeating: "x", count: 256))\"\n")?.message.contains("255"), true)
        XCTAssertEqual(error("$TTL 60\n\(String(repeating: "a", count: 64)) A 192.0.2.1\n")?.line, 2)
        XCTAssertEqual(error("$INCLUDE other.zone\n")?.line, 1)
        XCTAssertEqual(error("$TTL 60\n  A 192.0.2.1\n")?.message.contains("owner"), true)
        XCTAssertEqual(error("$TTL 60\n@ TYPE99 \\# 2 01\n")?.line, 2)
        XCTAssertEqual(error("$TTL 60\n@ A 192.0.2.1 extra\n")?.message.contains("too many"), true)
        XCTAssertEqual(error("$TTL 60\n)\n")?.line, 2)
        XCTAssertEqual(error("$TTL 60\n@ CH A 192.0.2.1\n")?.line, 2)
        XCTAssertEqual(error("$TTL 99999999999\n")?.line, 1)
    }

    func testTTLUnits() throws {
        let parser = ZoneFileParser(file: "x", origin: origin)
        XCTAssertEqual(try parser.ttl("3600", line: 1), 3600)
        XCTAssertEqual(try parser.ttl("1h30m", line: 1), 5400)
        XCTAssertEqual(try parser.ttl("1W2D", line: 1), 604_800 + 172_800)
        XCTAssertThrowsError(try parser.ttl("h", line: 1))
        XCTAssertThrowsError(try parser.ttl("1x", line: 1))
    }

    private let head = "@ 3600 IN SOA ns hostmaster 1 2h 1h 2w 300\n"

    /// Issue 11: operator input that armed a crash at query time is refused with its line.
    func testOverlongCAATagIsRefusedAtItsLine() {
        let problem = error(head + "@ 3600 IN CAA 0 " + String(repeating: "a", count: 256) + " \"x\"\n")
        XCTAssertEqual(problem?.line, 2)
        XCTAssertNotNil(try? parse(head + "@ 3600 IN CAA 0 " + String(repeating: "a", count: 255) + " \"x\"\n"))
        XCTAssertEqual(error(head + "@ 3600 IN CAA 0 iss\u{00E9} \"x\"\n")?.line, 2, "ASCII letters and digits only")
        XCTAssertEqual(error(head + "@ 3600 IN CAA 0 \"issue\" \"x\"\n")?.line, 2)
    }

    func testTTLsThatOverflowAreRefused() {
        XCTAssertEqual(error("$TTL " + String(repeating: "4294967295w", count: 40) + "\n" + head)?.line, 1)
        XCTAssertEqual(error("$TTL 99999999999999999999999\n" + head)?.line, 1)
        XCTAssertEqual(error("$TTL 2147483648\n" + head)?.line, 1, "RFC 2181 8: at most 2^31 - 1")
        XCTAssertEqual(error(head + "x " + String(repeating: "1w", count: 5000) + " IN A 192.0.2.1\n")?.line, 2)
        XCTAssertEqual(error("$TTL \u{0663}\n" + head)?.line, 1, "ASCII digits only")
        XCTAssertEqual(try parse("$TTL 2147483647\n@ IN SOA ns hostmaster 1 2h 1h 2w 300\n").first?.ttl, 2_147_483_647)
        XCTAssertEqual(try parse("$TTL 1w1d1h1m1s\n@ IN SOA ns hostmaster 1 2h 1h 2w 300\n").first?.ttl, 694_861)
    }

    func testRecordsTooLargeToSendAreRefused() {
        let strings = Array(repeating: "\"" + String(repeating: "x", count: 255) + "\"", count: 300).joined(separator: " ")
        XCTAssertEqual(error(head + "big 3600 IN TXT " + strings + "\n")?.line, 2)
        XCTAssertEqual(error(head + "big 3600 IN TYPE999 \\# 70000 00\n")?.line, 2)
    }
}
