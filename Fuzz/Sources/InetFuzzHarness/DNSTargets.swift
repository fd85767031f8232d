#if DEBUG
import InetCore
import NIOCore
@testable import InetDNS

enum DNSTargets {
    /// The message reader; what it reads, the writer writes, and reading that again agrees.
    static let message = FuzzTarget(name: "dns-message", summary: "DNS wire format: decode, encode, decode again", maximumLength: 65_535) { bytes in
        guard let message = try? DNSMessageReader.decode(bytes) else { return nil }
        let encoded: [UInt8]
        do {
            encoded = try DNSMessageWriter.encode(message)
        } catch {
            // Compression may differ from the original; only a message that cannot fit fails.
            return (error as? DNSWireError) == .messageTooLarge ? nil : "a decoded message does not encode: \(error)"
        }
        guard encoded.count >= 12, encoded[2] & 0x02 == 0 || message.truncated else { return nil }  // records dropped: not comparable
        let again: DNSMessage
        do {
            again = try DNSMessageReader.decode(encoded)
        } catch {
            return "the writer's output does not decode: \(error)"
        }
        guard again == message else { return "decode → encode → decode changed the message:\n\(message)\n\(again)" }
        return nil
    }

    static let zoneText = """
        $TTL 300
        @       IN SOA ns hostmaster 1 7200 3600 1209600 60
                IN NS  ns
                IN NS  ns.other.test.
                IN MX  10 mail
                IN TXT "v=spf1 -all" "second"
                IN CAA 0 issue "ca.test"
        ns      IN A    192.0.2.53
        ns      IN AAAA 2001:db8::53
        mail    IN A    192.0.2.25
        www     IN CNAME web
        web     IN A    192.0.2.80
        loop1   IN CNAME loop2
        loop2   IN CNAME loop1
        out     IN CNAME www.elsewhere.test.
        *.wild  IN A    192.0.2.99
        _ftp._tcp IN SRV 0 0 21 web
        sub     IN NS   ns.sub
        ns.sub  IN A    192.0.2.54
        a.b.c   IN A    192.0.2.1
        big     IN TXT  "\(String(repeating: "x", count: 255))" "\(String(repeating: "y", count: 255))" "\(String(repeating: "z", count: 255))"
        """

    static let service: DNSService = {
        let origin = try! DNSName("fuzz.test.")
        let records = try! ZoneFileParser.parse(zoneText, origin: origin, file: "fuzz.zone")
        return DNSService(zones: [try! Zone(origin: origin, records: records)], transferFrom: [CIDR("127.0.0.0/8")!])
    }()

    /// A query as a datagram (the answer cache, the authority, the writer with its size
    /// limits) and over TCP (with AXFR); the first byte picks the transport.
    static let reply = FuzzTarget(name: "dns-reply", summary: "the DNS service's answer to one query (UDP with the answer cache, TCP with AXFR)", maximumLength: 4096) { bytes in
        var input = FuzzInput(bytes)
        let tcp = input.bool()
        let query = input.rest()
        if tcp {
            let peer = try! SocketAddress(ipAddress: "127.0.0.1", port: 5353)
            if let parsed = try? DNSMessageReader.decode(query), parsed.questions.count == 1, parsed.questions[0].type == .axfr {
                for message in DNSTCPHandler(service: service).transfer(parsed, peer: peer) {
                    guard message.count <= 65_535, (try? DNSMessageReader.decode(message)) != nil else { return "an AXFR message does not decode" }
                }
            }
            guard let answer = service.answer(query, transport: .tcp, peer: peer) else { return nil }
            return check(answer, for: query, limit: 65_535)
        }
        let allocator = ByteBufferAllocator()
        let payload = allocator.buffer(bytes: query)
        // What the `dns.query` event says of it: valid JSON within the slot, whatever the query.
        if let problem = eventProblem(query: query, reply: service.reply(toDatagram: payload, allocator: allocator).map { Array($0.readableBytesView) }) {
            return problem
        }
        let first = service.reply(toDatagram: payload, allocator: allocator).map { Array($0.readableBytesView) }
        // Asked again, the answer may come from the cache: it must be the same bytes.
        let second = service.reply(toDatagram: payload, allocator: allocator).map { Array($0.readableBytesView) }
        guard first == second else { return "a cached answer differs from the first one" }
        guard let first else { return nil }
        // Response-rate limiting reads the answer (its class and names, pointers followed) and
        // may send a truncated one instead: never larger than the query, always a response.
        _ = first.withUnsafeBytes { ResponseRateLimiter.classify($0) }
        if let cut = first.withUnsafeBytes({ ResponseRateLimiter.truncated($0, allocator: allocator) }) {
            guard cut.readableBytes <= query.count else { return "a truncated answer of \(cut.readableBytes) octets for a query of \(query.count)" }
            guard let decoded = try? DNSMessageReader.decode(Array(cut.readableBytesView)), decoded.truncated, decoded.isResponse else {
                return "a truncated answer that does not decode as one"
            }
        }
        return check(first, for: query, limit: Int(Authority.maximumUDPPayload))
    }

    static func eventProblem(query: [UInt8], reply: [UInt8]?) -> String? {
        var body = EventBody(limit: 448)
        query.withUnsafeBytes { query in
            if let reply {
                reply.withUnsafeBytes { DNSEventNotes.describe(query: query, reply: $0, from: "zone", into: &body) }
            } else {
                DNSEventNotes.describe(query: query, reply: nil, from: "none", into: &body)
            }
        }
        let bytes = body.finish()
        guard bytes.count <= 448 else { return "an event body over its limit" }
        return FuzzJSON.isObject(Array(#"{"id":0"#.utf8) + bytes + Array("}".utf8)) ? nil : "an event body that is not JSON"
    }

    private static func check(_ answer: [UInt8], for query: [UInt8], limit: Int) -> String? {
        guard answer.count <= max(512, limit) else { return "an answer of \(answer.count) octets over the limit \(limit)" }
        guard let decoded = try? DNSMessageReader.decode(answer) else { return "an answer does not decode" }
        guard decoded.isResponse else { return "an answer without QR" }
        if let header = DNSMessageReader.header(query), decoded.id != header.id { return "an answer with another ID" }
        return nil
    }

    /// The zone-file parser and the zone built from it; every record it accepts can be sent.
    static let zone = FuzzTarget(name: "dns-zone", summary: "zone files: parse, build the zone, answer and encode", maximumLength: 16_384) { bytes in
        let text = String(decoding: bytes, as: UTF8.self)
        let origin = try! DNSName("fuzz.test.")
        guard let records = try? ZoneFileParser.parse(text, origin: origin, file: "fuzz.zone") else { return nil }
        for record in records where !DNSMessageWriter.fits(record) { return "the parser accepted a record that cannot be sent: \(record)" }
        guard let zone = try? Zone(origin: origin, records: records) else { return nil }
        let authority = Authority(zones: [zone])
        for record in records.prefix(8) {
            for type in [record.type, .any, .a] {
                let query = DNSMessage(id: 7, questions: [DNSQuestion(name: record.name, type: type)], edns: EDNS())
                let response = authority.respond(to: query)
                guard let bytes = try? DNSMessageWriter.encode(response, limit: 1232) else { return "an answer from the zone does not encode" }
                guard (try? DNSMessageReader.decode(bytes)) != nil else { return "an answer from the zone does not decode" }
            }
        }
        return nil
    }
}
#endif
