@testable import InetDNS
import XCTest

final class AuthorityTests: XCTestCase {
    private func name(_ text: String) -> DNSName { try! DNSName(text) }

    private lazy var authority: Authority = {
        let records = try! ZoneFileParser.parse(##"""
            $TTL 3600
            @        SOA ns1 hostmaster 1 7200 3600 1209600 300
                     NS  ns1
                     MX  10 mail
            ns1      A   192.0.2.53
            mail     A   192.0.2.25
                     AAAA 2001:db8::25
            www      CNAME host
            host     A   192.0.2.1
            chain1   CNAME chain2
            chain2   CNAME www
            away     CNAME www.elsewhere.test.
            loop1    CNAME loop2
            loop2    CNAME loop1
            *.wild   A   192.0.2.99
            *.wild   MX  5 mail
            a.b.ent  A   192.0.2.7
            sub      NS  ns.sub
            ns.sub   A   192.0.2.200
            _http._tcp SRV 0 0 80 host
            """##, origin: name("example.test."), file: "t")
        return Authority(zones: [try! Zone(origin: name("example.test."), records: records)])
    }()

    private func ask(_ qname: String, _ type: DNSType, edns: EDNS? = nil, opcode: UInt8 = 0) -> DNSMessage {
        authority.respond(to: DNSMessage(id: 7, opcode: opcode, recursionDesired: true, questions: [DNSQuestion(name: name(qname), type: type)], edns: edns))
    }

    func testExactAnswerIsAuthoritativeWithAdditionalAddresses() {
        let response = ask("EXAMPLE.test.", .mx)
        XCTAssertTrue(response.authoritative)
        XCTAssertEqual(response.rcode, DNSRCode.noError)
        XCTAssertEqual(response.questions.first?.name.description, "EXAMPLE.test.", "question echoed with the client's case")
        XCTAssertEqual(response.answers.map(\.data), [.mx(preference: 10, exchange: name("mail.example.test."))])
        XCTAssertEqual(Set(response.additional.map(\.type)), [.a, .aaaa])
        XCTAssertEqual(response.additional.count, 3, "mail's A and AAAA, ns1's A")
        XCTAssertEqual(ask("example.test.", .ns).authority, [], "NS at the apex is already the answer")
        XCTAssertTrue(response.recursionDesired)
        XCTAssertFalse(response.recursionAvailable)
    }

    func testCNAMEChainsAreFollowedInsideTheZone() {
        let response = ask("chain1.example.test.", .a)
        XCTAssertEqual(response.answers.map(\.type), [.cname, .cname, .cname, .a])
        XCTAssertEqual(response.answers.last?.data, .a([192, 0, 2, 1]))
        let away = ask("away.example.test.", .a)
        XCTAssertEqual(away.answers.map(\.type), [.cname], "targets outside the zone are left to the resolver")
        let loop = ask("loop1.example.test.", .a)
        XCTAssertEqual(loop.answers.count, 2, "a loop stops")
        XCTAssertEqual(ask("www.example.test.", .cname).answers.map(\.type), [.cname])
    }

    func testNXDOMAINAndNODATACarrySOAWithNegativeTTL() {
        let nx = ask("nothing.example.test.", .a)
        XCTAssertEqual(nx.rcode, DNSRCode.nxDomain)
        XCTAssertTrue(nx.answers.isEmpty)
        XCTAssertEqual(nx.authority.map(\.type), [.soa])
        XCTAssertEqual(nx.authority.first?.ttl, 300, "min(SOA TTL, MINIMUM)")
        let nodata = ask("host.example.test.", .aaaa)
        XCTAssertEqual(nodata.rcode, DNSRCode.noError)
        XCTAssertTrue(nodata.answers.isEmpty)
        XCTAssertEqual(nodata.authority.map(\.type), [.soa])
        let ent = ask("b.ent.example.test.", .a)
        XCTAssertEqual(ent.rcode, DNSRCode.noError, "an empty non-terminal exists")
        XCTAssertEqual(ent.authority.map(\.type), [.soa])
        let chainToNothing = ask("chain1.example.test.", .txt)
        XCTAssertEqual(chainToNothing.answers.map(\.type), [.cname, .cname, .cname])
        XCTAssertEqual(chainToNothing.authority.map(\.type), [.soa])
    }

    func testWildcardsFollowRFC4592() {
        let response = ask("anything.wild.example.test.", .a)
        XCTAssertEqual(response.answers.map(\.name), [name("anything.wild.example.test.")])
        XCTAssertEqual(response.answers.first?.data, .a([192, 0, 2, 99]))
        XCTAssertEqual(ask("x.y.wild.example.test.", .a).answers.count, 1, "deeper names match through the closest encloser")
        let mx = ask("m.wild.example.test.", .mx)
        XCTAssertEqual(Set(mx.additional.map(\.data)), [.a([192, 0, 2, 25]), .aaaa([0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [0x25]), .a([192, 0, 2, 53])])
        XCTAssertEqual(ask("m.wild.example.test.", .txt).authority.map(\.type), [.soa], "wildcard NODATA")
        XCTAssertEqual(ask("wild.example.test.", .a).rcode, DNSRCode.noError, "the wildcard's parent exists (empty non-terminal)")
        XCTAssertEqual(ask("nothing.ent.example.test.", .a).rcode, DNSRCode.nxDomain, "no wildcard under ent")
    }

    func testDelegationsAreReferralsWithGlue() {
        let response = ask("www.sub.example.test.", .a)
        XCTAssertFalse(response.authoritative)
        XCTAssertEqual(response.rcode, DNSRCode.noError)
        XCTAssertTrue(response.answers.isEmpty)
        XCTAssertEqual(response.authority.map(\.data), [.ns(name("ns.sub.example.test."))])
        XCTAssertEqual(response.additional.map(\.data), [.a([192, 0, 2, 200])])
        XCTAssertFalse(ask("sub.example.test.", .ns).authoritative, "the cut itself is referred too")
    }

    func testRefusedNotImpFormErrAndBadVers() {
        XCTAssertEqual(ask("example.org.", .a).rcode, DNSRCode.refused)
        XCTAssertEqual(ask("example.test.", .a, opcode: 2).rcode, DNSRCode.notImp)
        let twoQuestions = authority.respond(to: DNSMessage(questions: [DNSQuestion(name: name("a.example.test."), type: .a), DNSQuestion(name: name("b.example.test."), type: .a)]))
        XCTAssertEqual(twoQuestions.rcode, DNSRCode.formErr)
        let badVers = ask("example.test.", .soa, edns: EDNS(udpPayloadSize: 4096, version: 1))
        XCTAssertEqual(badVers.rcode, DNSRCode.badVers)
        XCTAssertEqual(badVers.edns?.version, 0)
        let withEDNS = ask("example.test.", .soa, edns: EDNS(udpPayloadSize: 4096))
        XCTAssertEqual(withEDNS.edns?.udpPayloadSize, Authority.maximumUDPPayload)
    }

    func testSRVTargetGetsAdditionalAddress() {
        let response = ask("_http._tcp.example.test.", .srv)
        XCTAssertEqual(response.additional.map(\.data), [.a([192, 0, 2, 1]), .a([192, 0, 2, 53])], "the SRV target, then the name server")
        XCTAssertEqual(response.authority.map(\.data), [.ns(name("ns1.example.test."))], "positive answers carry the zone's NS, as NSD's do")
    }

    func testZoneChecks() {
        XCTAssertThrowsError(try Zone(origin: name("x.test."), records: [])) { XCTAssertEqual($0 as? Zone.BuildError, .noSOA) }
        let soa = DNSRecord(name: name("x.test."), ttl: 1, data: .soa(mname: name("ns.x.test."), rname: name("h.x.test."), serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 1))
        XCTAssertThrowsError(try Zone(origin: name("x.test."), records: [soa, DNSRecord(name: name("y.test."), ttl: 1, data: .a([1, 2, 3, 4]))]))
        XCTAssertThrowsError(try Zone(origin: name("x.test."), records: [soa,
            DNSRecord(name: name("c.x.test."), ttl: 1, data: .cname(name("x.test."))),
            DNSRecord(name: name("c.x.test."), ttl: 1, data: .a([1, 2, 3, 4]))]))
    }
}

final class AnswerCacheTests: XCTestCase {
    func testCachedAnswerEqualsAFreshOneForAnotherIDAndLetterCase() throws {
        let origin = try DNSName("example.test.")
        let records = try ZoneFileParser.parse("$TTL 60\n@ SOA ns1 h 1 2 3 4 5\n NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n", origin: origin, file: "t")
        let authority = Authority(zones: [try Zone(origin: origin, records: records)])
        let cache = AnswerCache()
        func query(_ id: UInt16, _ name: String, edns: EDNS?) throws -> [UInt8] {
            try DNSMessageWriter.encode(DNSMessage(id: id, recursionDesired: true, questions: [DNSQuestion(name: DNSName(name), type: .a)], edns: edns))
        }
        func fresh(_ bytes: [UInt8], limit: Int) throws -> [UInt8] {
            try DNSMessageWriter.encode(authority.respond(to: DNSMessageReader.decode(bytes)), limit: limit)
        }
        let first = try query(1, "www.example.test.", edns: EDNS(udpPayloadSize: 4096))
        let key = try XCTUnwrap(AnswerCache.key(for: first, tcp: false, maximumUDP: 1232))
        XCTAssertEqual(key.limit, 1232)
        cache.store(try fresh(first, limit: key.limit), for: key, generation: 0)
        let second = try query(0xABCD, "WWW.Example.TEST.", edns: EDNS(udpPayloadSize: 4096))
        let secondKey = try XCTUnwrap(AnswerCache.key(for: second, tcp: false, maximumUDP: 1232))
        XCTAssertEqual(secondKey.bytes, key.bytes, "the key ignores ID and letter case")
        XCTAssertEqual(cache.answer(for: secondKey, query: second, generation: 0), try fresh(second, limit: 1232))
        XCTAssertNil(cache.answer(for: secondKey, query: second, generation: 1), "a zone change empties the cache")
        // Without EDNS, over TCP, or with other flags: other keys.
        XCTAssertNotEqual(AnswerCache.key(for: try query(1, "www.example.test.", edns: nil), tcp: false, maximumUDP: 1232)?.bytes, key.bytes)
        XCTAssertNotEqual(AnswerCache.key(for: first, tcp: true, maximumUDP: 1232)?.bytes, key.bytes)
        XCTAssertNil(AnswerCache.key(for: try query(1, "www.example.test.", edns: EDNS(version: 1)), tcp: false, maximumUDP: 1232), "BADVERS goes the slow way")
    }

    func testTheCacheStaysBoundedAndKeepsWhatWasJustStored() throws {
        let cache = AnswerCache()
        func key(_ index: Int) throws -> (AnswerCache.Key, [UInt8]) {
            let bytes = try DNSMessageWriter.encode(DNSMessage(id: 7, questions: [DNSQuestion(name: DNSName("h\(index).example.test."), type: .a)]))
            return (try XCTUnwrap(AnswerCache.key(for: bytes, tcp: false, maximumUDP: 1232)), bytes)
        }
        // Twice as many questions as there is room for: the oldest give way.
        let total = 2 * AnswerCache.maximumEntries
        for index in 0..<total {
            let (key, bytes) = try key(index)
            cache.store(bytes + [UInt8(index & 0xFF)], for: key, generation: 0)
            if index % 101 == 0 { XCTAssertEqual(cache.cached(key, generation: 0).map(Array.init), bytes + [UInt8(index & 0xFF)]) }
        }
        XCTAssertLessThanOrEqual(cache.count, AnswerCache.maximumEntries)
        XCTAssertGreaterThan(cache.count, AnswerCache.maximumEntries / 2, "the table fills before it evicts")
        // Another letter case is the same key; another generation sees nothing.
        let (key, _) = try key(total - 1)
        let upper = try DNSMessageWriter.encode(DNSMessage(id: 9, questions: [DNSQuestion(name: DNSName("H\(total - 1).EXAMPLE.test."), type: .a)]))
        let upperKey = try XCTUnwrap(AnswerCache.key(for: upper, tcp: false, maximumUDP: 1232))
        XCTAssertEqual(upperKey.hash, key.hash)
        XCTAssertNotNil(cache.cached(upperKey, generation: 0))
        XCTAssertNil(cache.cached(upperKey, generation: 1))
    }
}
