@testable import InetDNS
import InetCore
import NIOCore
import XCTest

final class ResponseRateLimiterTests: XCTestCase {
    private func name(_ text: String) -> DNSName { try! DNSName(text) }

    private lazy var authority: Authority = {
        let records = try! ZoneFileParser.parse("""
            $TTL 3600
            @        SOA ns1 hostmaster 1 7200 3600 1209600 300
                     NS  ns1
            ns1      A   192.0.2.53
            www      A   192.0.2.1
            mail     A   192.0.2.25
            sub      NS  ns.sub
            ns.sub   A   192.0.2.200
            """, origin: name("example.test."), file: "t")
        return Authority(zones: [try! Zone(origin: name("example.test."), records: records)])
    }()

    /// This server's response to one question, as sent.
    private func reply(_ qname: String, _ type: DNSType) -> [UInt8] {
        let query = DNSMessage(id: 9, questions: [DNSQuestion(name: name(qname), type: type)])
        return try! DNSMessageWriter.encode(authority.respond(to: query))
    }

    private func classify(_ qname: String, _ type: DNSType) -> (ResponseRateLimiter.ResponseClass, UInt64, UInt16)? {
        reply(qname, type).withUnsafeBytes { ResponseRateLimiter.classify($0) }
    }

    private let source = try! SocketAddress(ipAddress: "192.0.2.10", port: 5353)

    func testResponsesAreCountedByClassAndName() throws {
        let www = try XCTUnwrap(classify("www.example.test.", .a))
        XCTAssertEqual(www.0, .positive)
        XCTAssertEqual(www.2, DNSType.a.rawValue)
        XCTAssertEqual(try XCTUnwrap(classify("WWW.Example.TEST.", .a)).1, www.1, "names compare without case")
        XCTAssertNotEqual(try XCTUnwrap(classify("mail.example.test.", .a)).1, www.1)
        // Every missing name of a zone counts as the zone: random names do not evade it.
        let missing = try XCTUnwrap(classify("nope-1.example.test.", .a))
        XCTAssertEqual(missing.0, .nxdomain)
        XCTAssertEqual(try XCTUnwrap(classify("other-2.example.test.", .aaaa)).1, missing.1)
        XCTAssertEqual(try XCTUnwrap(classify("www.example.test.", .mx)).0, .nodata)
        XCTAssertEqual(try XCTUnwrap(classify("host.sub.example.test.", .a)).0, .referral)
        XCTAssertEqual(try XCTUnwrap(classify("elsewhere.test.", .a)).0, .error, "REFUSED")
        XCTAssertEqual(try XCTUnwrap(classify("www.example.test.", .any)).0, .any)
        XCTAssertNil([UInt8](repeating: 0, count: 12).withUnsafeBytes { ResponseRateLimiter.classify($0) }, "a query is no response")
    }

    func testIdenticalResponsesOverTheRateAreDroppedWithEverySecondOneTruncated() {
        var settings = ResponseRateLimiter.Settings()
        settings.rate = 10
        let limiter = ResponseRateLimiter(settings: settings)
        let answer = reply("www.example.test.", .a)
        let decisions = (0..<20).map { _ in answer.withUnsafeBytes { limiter.decide(reply: $0, source: source, now: 1_000_000_000) } }
        XCTAssertEqual(Array(decisions.prefix(10)), Array(repeating: ResponseRateLimiter.Decision.send, count: 10))
        XCTAssertEqual(Array(decisions.suffix(10)), [.drop(first: true), .slip(first: false), .drop(first: false), .slip(first: false),
                                                     .drop(first: false), .slip(first: false), .drop(first: false), .slip(first: false),
                                                     .drop(first: false), .slip(first: false)])
        // Other names, and other prefixes, have their own budget; the same /24 shares it.
        XCTAssertEqual(reply("mail.example.test.", .a).withUnsafeBytes { limiter.decide(reply: $0, source: source, now: 1_000_000_000) }, .send)
        let elsewhere = try! SocketAddress(ipAddress: "198.51.100.1", port: 53)
        XCTAssertEqual(answer.withUnsafeBytes { limiter.decide(reply: $0, source: elsewhere, now: 1_000_000_000) }, .send)
        let neighbour = try! SocketAddress(ipAddress: "192.0.2.200", port: 53)
        XCTAssertNotEqual(answer.withUnsafeBytes { limiter.decide(reply: $0, source: neighbour, now: 1_000_000_000) }, .send)
        // A tenth of a second later there is room for one more.
        XCTAssertEqual(answer.withUnsafeBytes { limiter.decide(reply: $0, source: source, now: 1_100_000_001) }, .send)
    }

    func testNXDOMAINHasItsOwnRateAndExemptSourcesAreNeverLimited() {
        var settings = ResponseRateLimiter.Settings()
        settings.rate = 5
        settings.nxdomainRate = 50
        settings.exempt = [CIDR("10.0.0.0/8")!]
        let limiter = ResponseRateLimiter(settings: settings)
        let sent = (0..<60).filter { index in
            reply("random-\(index).example.test.", .a).withUnsafeBytes { limiter.decide(reply: $0, source: source, now: 5_000_000_000) } == .send
        }
        XCTAssertEqual(sent.count, 50)
        let trusted = try! SocketAddress(ipAddress: "10.1.2.3", port: 53)
        let answer = reply("www.example.test.", .a)
        XCTAssertTrue((0..<100).allSatisfy { _ in answer.withUnsafeBytes { limiter.decide(reply: $0, source: trusted, now: 5_000_000_000) } == .send })
    }

    func testTheTruncatedResponseIsNoLargerThanTheQueryAndSaysTC() throws {
        let query = try DNSMessageWriter.encode(DNSMessage(id: 77, questions: [DNSQuestion(name: name("www.example.test."), type: .any)], edns: EDNS(udpPayloadSize: 4096)))
        let answer = try DNSMessageWriter.encode(authority.respond(to: try DNSMessageReader.decode(query)))
        let truncated = try XCTUnwrap(answer.withUnsafeBytes { ResponseRateLimiter.truncated($0, allocator: ByteBufferAllocator()) })
        XCTAssertLessThanOrEqual(truncated.readableBytes, query.count)
        let message = try DNSMessageReader.decode(Array(truncated.readableBytesView))
        XCTAssertTrue(message.truncated && message.isResponse)
        XCTAssertEqual(message.id, 77)
        XCTAssertEqual(message.questions.map(\.name.description), ["www.example.test."])
        XCTAssertTrue(message.answers.isEmpty && message.authority.isEmpty && message.additional.isEmpty)
    }

    func testIPv6SourcesCountByTheir56BitPrefix() {
        let a = try! SocketAddress(ipAddress: "2001:db8:0:1200::1", port: 53)
        let b = try! SocketAddress(ipAddress: "2001:db8:0:12ff:ffff::2", port: 53)
        let c = try! SocketAddress(ipAddress: "2001:db8:0:1300::1", port: 53)
        XCTAssertEqual(ResponseRateLimiter.prefix(a, ipv4: 24, ipv6: 56), ResponseRateLimiter.prefix(b, ipv4: 24, ipv6: 56))
        XCTAssertNotEqual(ResponseRateLimiter.prefix(a, ipv4: 24, ipv6: 56), ResponseRateLimiter.prefix(c, ipv4: 24, ipv6: 56))
        let mapped = try! SocketAddress(ipAddress: "::ffff:192.0.2.99", port: 53)
        XCTAssertEqual(ResponseRateLimiter.prefix(mapped, ipv4: 24, ipv6: 56), ResponseRateLimiter.prefix(source, ipv4: 24, ipv6: 56))
    }
}
