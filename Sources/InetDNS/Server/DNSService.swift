import InetCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The authoritative DNS service on port 53, UDP and TCP (RFC 1035, RFC 7766). Zones come from
/// `services.dns.zones: [{origin, file}]`; without any, a built-in zone `inetkit.test.`
/// describes this host and its running services. AXFR over TCP for `allow_transfer` sources.
public struct DNSService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "dns", wellKnownPort: 53, transports: [.udp, .tcp], optionKeys: Set(["zones", "allow_transfer"]).union(ResponseRateLimiter.Settings.keys),
        summary: "an authoritative name server from zone files (RFC 1034/1035)",
        // Response-rate limiting (rrl_*) bounds what a forged source can make this server
        // reflect; a flat per-source limit would cut off a resolver that asks for many names.
        defaultUDPRate: (rate: 0, burst: 100),
        // A resolver or a load test keeps hundreds of queries in flight: on loopback each takes
        // about 1 KiB of the socket's buffer, so the system's default (208 KiB) dropped a burst
        // of 200 (dnsperf -q 200 lost queries). Room for ~1000.
        defaultUDPReceiveBuffer: 1 << 20
    ) { options throws(ConfigError) in
        try DNSService(options: options)
    }

    let zones: ZoneSource
    let transferFrom: [CIDR]
    let cache = AnswerCache()
    /// Response-rate limiting over UDP (nil: `rrl: false`).
    let rateLimiter: ResponseRateLimiter?
    let logger = Logger(label: "inetkit.dns")

    init(options: ServiceOptions) throws(ConfigError) {
        var loaded: [Zone] = []
        if let reader = options.reader, let list = reader.value("zones") {
            guard case .list(let items, _) = list else { throw reader.error("zones", "expected a list of {origin, file}") }
            for item in items {
                let entry = try ConfigReader(item, file: reader.file, path: reader.keyPath("zones"))
                try entry.rejectUnknownKeys(allowed: ["origin", "file"])
                guard let originText = try entry.string("origin"), let file = try entry.string("file") else {
                    throw entry.error("origin", "each zone needs origin and file")
                }
                let origin: DNSName
                do { origin = try DNSName(originText.hasSuffix(".") ? originText : originText + ".") } catch {
                    throw entry.error("origin", "'\(originText)' is not a domain name")
                }
                let path = file.hasPrefix("/") || options.configDirectory.isEmpty ? file : options.configDirectory + "/" + file
                guard let text = readTextFile(path, limit: 256 << 20) else { throw entry.error("file", "cannot read '\(path)'") }
                do {
                    let records = try ZoneFileParser.parse(text, origin: origin, file: path)
                    loaded.append(try Zone(origin: origin, records: records))
                } catch let error as ZoneFileError {
                    throw entry.error("file", error.description)
                } catch {
                    throw entry.error("file", "\(path): \(error)")
                }
            }
        }
        var cidrs: [CIDR] = []
        for text in try options.reader?.stringList("allow_transfer") ?? ["127.0.0.0/8", "::1/128"] {
            guard let cidr = CIDR(text) else { throw options.error("allow_transfer", "'\(text)' is not an address or CIDR") }
            cidrs.append(cidr)
        }
        transferFrom = cidrs
        zones = loaded.isEmpty ? .builtIn(BuiltInZone(host: options.host)) : .fixed(Authority(zones: loaded))
        rateLimiter = try ResponseRateLimiter.Settings.parse(options).map(ResponseRateLimiter.init(settings:))
    }

    /// Serves these zones (tests and fuzzing; the host makes the service from its options).
    init(zones: [Zone], transferFrom: [CIDR], rateLimiter: ResponseRateLimiter? = nil) {
        self.zones = .fixed(Authority(zones: zones))
        self.transferFrom = transferFrom
        self.rateLimiter = rateLimiter
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var from: StaticString = ""
        return reply(toDatagram: payload, allocator: allocator, from: &from)
    }

    public var datagramEventKind: String? { "dns.query" }

    public var datagramEventHex: Bool { false }

    public var servesDatagramsDirectly: Bool { true }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel, event: inout EventBody) -> ByteBuffer? {
        reply(toDatagram: payload, from: source, allocator: channel.allocator, event: &event)
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator, event: inout EventBody) -> ByteBuffer? {
        var from: StaticString = "zone"
        let answer = reply(toDatagram: payload, allocator: allocator, from: &from)
        let (reply, limited) = limit(answer, to: source, allocator: allocator)
        payload.withUnsafeReadableBytes { query in
            if let answer {
                answer.withUnsafeReadableBytes { DNSEventNotes.describe(query: query, reply: $0, from: from, into: &event) }
            } else {
                DNSEventNotes.describe(query: query, reply: nil, from: "none", into: &event)
            }
        }
        if let limited { event.string("rrl", limited) }
        return reply
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel) -> ByteBuffer? {
        reply(toDatagram: payload, from: source, allocator: channel.allocator)
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var from: StaticString = ""
        return limit(reply(toDatagram: payload, allocator: allocator, from: &from), to: source, allocator: allocator).reply
    }

    /// The answer as response-rate limiting lets it go: itself, nothing, or a truncated
    /// response; with what was done (`dropped`, `truncated`) when it was limited.
    func limit(_ answer: ByteBuffer?, to source: SocketAddress, allocator: ByteBufferAllocator) -> (reply: ByteBuffer?, limited: String?) {
        guard let rateLimiter, let answer else { return (answer, nil) }
        return answer.withUnsafeReadableBytes { bytes in
            switch rateLimiter.decide(reply: bytes, source: source, now: Int64(NIODeadline.now().uptimeNanoseconds)) {
            case .send:
                return (answer, nil)
            case .drop(let first):
                if first { noteLimiting(bytes, source: source) }
                return (nil, "dropped")
            case .slip(let first):
                if first { noteLimiting(bytes, source: source) }
                return (ResponseRateLimiter.truncated(bytes, allocator: allocator), "truncated")
            }
        }
    }

    /// One log line when a response to a source prefix starts being limited.
    private func noteLimiting(_ reply: UnsafeRawBufferPointer, source: SocketAddress) {
        var name = "?"
        var type = ""
        if let question = try? DNSMessageReader.decode(Array(reply)).questions.first {
            name = question.name.description
            type = question.type.description
        }
        logger.warning("dns response rate limit reached: identical responses to this source's prefix are dropped (every rrl_slip-th sent truncated) until it slows down", metadata: [
            "peer": "\(source.logDescription)", "qname": "\(name)", "qtype": "\(type)",
        ])
    }

    func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator, from: inout StaticString) -> ByteBuffer? {
        // The common case: a plain query whose answer is cached. The reply is the cached bytes
        // with this query's ID and question (its letter case) written over them, built straight
        // into the outgoing buffer.
        let generation = zones.generation
        let key = payload.withUnsafeReadableBytes { AnswerCache.key(for: $0, tcp: false, maximumUDP: Int(Authority.maximumUDPPayload)) }
        if let key, let cached = cache.cached(key, generation: generation) {
            var out = allocator.buffer(capacity: cached.count)
            out.writeBytes(cached)
            payload.withUnsafeReadableBytes { query in
                out.setBytes(UnsafeRawBufferPointer(rebasing: query[0..<2]), at: 0)
                out.setBytes(UnsafeRawBufferPointer(rebasing: query[key.question]), at: key.question.lowerBound)
            }
            from = "cache"
            return out
        }
        // Not cached: answered, then kept under the key already computed.
        let bytes = Array(payload.readableBytesView)
        guard let answer = answerUncached(bytes, transport: .udp) else { return nil }
        if let key { cache.store(answer, for: key, generation: generation) }
        return allocator.buffer(bytes: answer)
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(DNSTCPHandler(service: self))
    }

    /// The answer to one query's bytes; nil when nothing should be sent (not even a header).
    func answer(_ bytes: [UInt8], transport: Transport, peer: SocketAddress?) -> [UInt8]? {
        var from: StaticString = ""
        return answer(bytes, transport: transport, peer: peer, from: &from)
    }

    func answer(_ bytes: [UInt8], transport: Transport, peer: SocketAddress?, from: inout StaticString) -> [UInt8]? {
        let generation = zones.generation
        let key = AnswerCache.key(for: bytes, tcp: transport == .tcp, maximumUDP: Int(Authority.maximumUDPPayload))
        from = "zone"
        if let key, let cached = cache.answer(for: key, query: bytes, generation: generation) {
            from = "cache"
            return cached
        }
        guard let answer = answerUncached(bytes, transport: transport) else { return nil }
        if let key { cache.store(answer, for: key, generation: generation) }
        return answer
    }

    private func answerUncached(_ bytes: [UInt8], transport: Transport) -> [UInt8]? {
        let query: DNSMessage
        do {
            query = try DNSMessageReader.decode(bytes)
        } catch {
            // FORMERR echoing what can be read of the header; a response is never answered.
            guard let (id, flags) = DNSMessageReader.header(bytes), flags & 0x8000 == 0 else { return nil }
            let formErr = DNSMessage(id: id, isResponse: true, opcode: UInt8((flags >> 11) & 0xF), rcode: DNSRCode.formErr)
            return try? DNSMessageWriter.encode(formErr)
        }
        guard !query.isResponse else { return nil }
        var response = zones.authority.respond(to: query)
        if transport == .udp, query.questions.first?.type == .axfr, response.rcode == DNSRCode.noError {
            // RFC 5936 4.2: zone transfers are TCP only.
            response = DNSMessage(id: query.id, isResponse: true, rcode: DNSRCode.notImp, questions: query.questions)
        }
        let limit: Int
        if transport == .tcp {
            limit = 65_535
        } else if let edns = query.edns {
            limit = max(512, min(Int(edns.udpPayloadSize), Int(Authority.maximumUDPPayload)))
        } else {
            limit = 512
        }
        if let encoded = try? DNSMessageWriter.encode(response, limit: limit) { return encoded }
        // An answer that cannot be written at all (the question alone too large): SERVFAIL.
        let failure = DNSMessage(id: query.id, isResponse: true, opcode: query.opcode, rcode: DNSRCode.servFail)
        return try? DNSMessageWriter.encode(failure)
    }

    func mayTransfer(from peer: SocketAddress?) -> Bool {
        guard let peer else { return false }
        return transferFrom.contains { $0.contains(peer) }
    }
}

/// The zones in force: fixed from files, or the built-in zone rebuilt when listeners change.
enum ZoneSource: Sendable {
    case fixed(Authority)
    case builtIn(BuiltInZone)

    var authority: Authority {
        switch self {
        case .fixed(let authority): authority
        case .builtIn(let zone): zone.authority
        }
    }

    /// Changes when the zones do (the built-in zone follows the running services).
    var generation: Int {
        switch self {
        case .fixed: 0
        case .builtIn(let zone): zone.generation
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
