import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Serves one UDP socket of one service: counts, rate-limits per source, asks the service for
/// a reply, sends it if the socket can take it, and logs the exchange. Replies are never
/// queued without bound: when the send buffer is full the datagram is dropped and counted.
final class DatagramServiceHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// The service of the configuration generation in force; replaced when a reload makes a
    /// new one (SNMP communities, DNS zones), checked with one atomic load per datagram.
    private var service: any InetService
    private let name: String
    private let counters: ServiceCounters
    private let logger: Logger
    private let limitsBox: LimitsBox
    /// Shared by every UDP socket of the service (one per event loop), so a source's rate is
    /// the configured one whichever socket the kernel hands its datagrams to.
    private let limiter: NIOLockedValueBox<SourceRateLimiter>
    private var limitsGeneration: Int
    private var needsFlush = false
    /// Sources this socket has seen, so each new one is noted once in the counters.
    private var seenSources = Set<SourceKey>()

    /// Where exchanges are recorded, and the ring and settings in force (refreshed on reload).
    private let events: HostEvents
    private var ring: EventRing? {
        didSet { writer = ring?.writer }
    }
    /// The ring's writing side, used per datagram (no reference counting on the shared ring).
    private var writer: EventRingWriter?
    private var eventSettings: EventSettings
    var localPort = 0

    /// Whether exchanges are recorded as events now.
    var recordsEvents: Bool { writer != nil && eventKind != nil }

    /// What every event of a datagram from `peer` to this socket starts with
    /// (`,"transport":"udp","peer":"…","port":N`), encoded once per source by a socket that
    /// keeps its sources (`DirectDatagramSocket`).
    func eventMembers(peer: SocketAddress) -> EventMembers {
        let port = localPort
        return EventMembers { body in
            body.plain("transport", "udp")
            body.address("peer", peer)
            body.int("port", port)
        }
    }
    private let eventKind: String?
    /// Whether the service describes its exchanges itself (not the generic `datagram` kind).
    private let eventDescribed: Bool
    private let eventHex: Bool
    /// The wall-clock time of this read batch's events (0: not read yet): the datagrams of one
    /// batch arrived together, and one clock read serves them all.
    private var batchTime = 0

    init(service: any InetService, name: String, counters: ServiceCounters, limits: LimitsBox, limiter: NIOLockedValueBox<SourceRateLimiter>, logger: Logger,
         events: HostEvents = HostEvents()) {
        self.events = events
        let ring = events.ring
        self.ring = ring
        writer = ring?.writer
        eventSettings = events.settings
        self.service = service
        eventKind = service.datagramEventKind
        eventDescribed = service.datagramEventKind.map { $0 != "datagram" } ?? false
        eventHex = service.datagramEventHex
        self.name = name
        self.counters = counters
        self.limitsBox = limits
        self.logger = logger
        let (current, generation) = limits.current
        self.limiter = limiter
        limiter.withLockedValue {
            $0.rate = current.udpRate
            $0.burst = current.udpBurst
            $0.maximumSources = current.udpMaxSources
        }
        self.limitsGeneration = generation
        rateLimited = current.udpRate > 0
    }

    private var rateLimited: Bool

    func handlerAdded(context: ChannelHandlerContext) {
        localPort = context.channel.localAddress?.port ?? 0
        HostEvents.register(events, for: context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        publishCounts()
        HostEvents.unregister(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let channel = context.channel
        exchange(envelope.data, from: envelope.remoteAddress, allocator: channel.allocator, channel: channel) { reply in
            guard channel.isWritable else { return false }
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)), promise: nil)
            needsFlush = true
            return true
        }
    }

    /// One datagram: counted, rate-limited, answered (through `write`, which says whether the
    /// socket took the reply), recorded as an event and logged. `channel` is nil on a socket
    /// served directly (the service answers from the datagram alone).
    @inline(__always)
    func exchange(_ payload: ByteBuffer, from remoteAddress: SocketAddress, peerMembers: EventMembers? = nil, allocator: ByteBufferAllocator, channel: (any Channel)?,
                  write: (ByteBuffer) -> Bool) {
        let size = payload.readableBytes
        lastEventID = 0
        pending.datagramsIn &+= 1
        pending.bytesIn &+= size
        let started = NIODeadline.now()
        refreshLimits()

        let source = SourceKey(remoteAddress)
        if let source, seenSources.count < ServiceCounters.maximumTrackedPeers, seenSources.insert(source).inserted {
            counters.notePeer(remoteAddress.ipAddress ?? "?")
        }
        // With udp_rate 0 there is nothing to limit: no lock shared by the sockets is taken.
        let decision = rateLimited ? source.map { key in limiter.withLockedValue { $0.admit(key, now: started) } } ?? .allow : .allow
        guard decision == .allow else {
            pending.datagramsDropped &+= 1
            if decision == .startLimiting, let ring {
                let peer = remoteAddress.logDescription
                let port = localPort
                _ = HostEvents.emit(ring: ring, service: name, kind: "datagram.limited", connection: 0) { body in
                    body.string("transport", "udp")
                    body.string("peer", peer)
                    body.int("port", port)
                    body.string("outcome", "rate limited: later datagrams from this source are dropped until it slows down")
                }
            }
            if decision == .startLimiting {
                logger.warning("udp rate limit reached; dropping datagrams from this source until it slows down", metadata: [
                    "service": "\(name)", "transport": "udp", "peer": "\(remoteAddress.logDescription)",
                ])
            }
            if let kiss = service.replyWhenRateLimited(toDatagram: payload, from: remoteAddress, first: decision == .startLimiting, allocator: allocator),
               kiss.readableBytes <= size, write(kiss) {
                pending.datagramsOut &+= 1
                pending.bytesOut &+= kiss.readableBytes
            }
            return
        }
        var outcome = "no reply"
        var sent = 0
        /// Writes the reply, if there is one and the socket takes it.
        func send(_ answer: ByteBuffer?) {
            guard let reply = answer else { return }
            guard write(reply) else {
                pending.datagramsDropped &+= 1
                outcome = "dropped: send buffer full"
                return
            }
            sent = reply.readableBytes
            pending.datagramsOut &+= 1
            pending.bytesOut &+= sent
            outcome = "replied"
        }
        // (A local: read through `self` inside the event's closure, the service struct was
        // copied field by field for every datagram.)
        let service = self.service
        if let writer, let kind = eventKind {
            if batchTime == 0 { batchTime = EventBody.now() }
            // The event is encoded in its ring slot while the exchange happens (the service
            // describes it as it answers): no buffer, no copy.
            let id = writer.allocateID()
            lastEventID = id
            writer.publish(id: id, service: name, kind: kind, connection: 0, time: batchTime) { body in
                if let peerMembers {
                    body.members(peerMembers)
                } else {
                    body.plain("transport", "udp")
                    body.address("peer", remoteAddress)
                    body.int("port", localPort)
                }
                let answer = if let channel {
                    service.reply(toDatagram: payload, from: remoteAddress, channel: channel, event: &body)
                } else {
                    service.reply(toDatagram: payload, from: remoteAddress, allocator: allocator, event: &body)
                }
                send(answer)
                body.int("bytes_in", size)
                body.int("bytes_out", sent)
                // (A described exchange that was answered needs no outcome: its rcode says it.)
                if !eventDescribed || sent == 0 { body.string("outcome", outcome) }
                body.milliseconds("duration_ms", nanoseconds: (NIODeadline.now() - started).nanoseconds)
                // A service that describes its exchanges (DNS, SNMP) has no need of the hex.
                if eventSettings.hexBytes > 0, eventHex {
                    body.hex("hex_in", payload.readableBytesView, maximum: eventSettings.hexBytes)
                    if let answer, sent > 0 { body.hex("hex_out", answer.readableBytesView, maximum: eventSettings.hexBytes) }
                }
            }
        } else {
            if let channel {
                send(service.reply(toDatagram: payload, from: remoteAddress, channel: channel))
            } else {
                send(service.reply(toDatagram: payload, from: remoteAddress, allocator: allocator))
            }
        }
        if logger.logLevel <= .info {
            var line = LogLine(level: .info, message: "exchange")
            line.field("bytes_in", size)
            line.field("bytes_out", sent)
            line.field("duration_ms", millisecondsSince: started)
            line.field("outcome", outcome)
            line.field("peer", address: remoteAddress)
            line.field("service", name)
            line.field("transport", "udp")
            line.write()
        }
    }

    /// This socket's counts since its last read batch: added to the host's shared counters once
    /// per batch, not per datagram (atomic adds on cache lines every loop shares were a
    /// measurable part of a DNS query).
    private struct PendingCounts {
        var datagramsIn = 0, bytesIn = 0, datagramsOut = 0, bytesOut = 0, datagramsDropped = 0
    }
    private var pending = PendingCounts()

    private func publishCounts() {
        guard pending.datagramsIn != 0 || pending.datagramsDropped != 0 || pending.datagramsOut != 0 else { return }
        if pending.datagramsIn != 0 {
            counters.datagramsIn.bump(pending.datagramsIn)
            counters.bytesIn.bump(pending.bytesIn)
        }
        if pending.datagramsOut != 0 {
            counters.datagramsOut.bump(pending.datagramsOut)
            counters.bytesOut.bump(pending.bytesOut)
        }
        if pending.datagramsDropped != 0 { counters.datagramsDropped.bump(pending.datagramsDropped) }
        pending = PendingCounts()
    }

    /// The end of a read batch: its counts go to the shared counters.
    func batchEnded() {
        batchTime = 0
        publishCounts()
    }

    /// Replies the socket could not send after all (a direct socket learns it at sendmmsg):
    /// counted as dropped, not as sent.
    func repliesLost(_ count: Int, bytes: Int, events: [Int] = []) {
        pending.datagramsOut &-= count
        pending.bytesOut &-= bytes
        pending.datagramsDropped &+= count
        // The exchanges' events were written before the batch was sent and say "replied": this
        // one, which names them, says their replies never left (the send buffer was full).
        guard let writer, count > 0 else { return }
        let port = localPort
        let ids = events.filter { $0 > 0 }
        writer.publish(id: writer.allocateID(), service: name, kind: "datagram.replies_lost", connection: 0, time: EventBody.now()) { body in
            body.plain("transport", "udp")
            body.int("port", port)
            body.int("count", count)
            body.int("bytes", bytes)
            if !ids.isEmpty { body.ints("events", ids) }
            body.plain("outcome", "dropped: send buffer full")
        }
    }

    /// The id of the event the last exchange was recorded as (0: none).
    private(set) var lastEventID = 0

    /// A datagram dropped before it was looked at (longer than max_datagram).
    func droppedUnread(_ size: Int, from source: SocketAddress?) {
        pending.datagramsIn &+= 1
        pending.bytesIn &+= size
        pending.datagramsDropped &+= 1
        logger.debug("udp datagram longer than max_datagram dropped", metadata: [
            "service": "\(name)", "transport": "udp", "peer": "\(source?.logDescription ?? "?")", "bytes": "\(size)",
        ])
    }

    /// An error of the socket (counted, logged at debug; at error when the socket is no longer
    /// read because of it).
    func socketError(_ error: any Error, stopped: Bool = false) {
        counters.errors.bump(1)
        if stopped {
            logger.error("udp socket no longer read", metadata: ["service": "\(name)", "error": "\(error)"])
        } else {
            logger.debug("udp socket error", metadata: ["service": "\(name)", "error": "\(error)"])
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        batchEnded()
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP socket stays open whatever one datagram caused (e.g. an ICMP error surfacing
        // as a read error); count it and go on.
        socketError(error)
    }

    private func refreshLimits() {
        let generation = limitsBox.generation
        guard generation != limitsGeneration else { return }
        let (current, service, latest) = limitsBox.snapshot
        self.service = service
        limiter.withLockedValue {
            $0.rate = current.udpRate
            $0.burst = current.udpBurst
            $0.maximumSources = current.udpMaxSources
        }
        limitsGeneration = latest
        rateLimited = current.udpRate > 0
        ring = events.ring
        eventSettings = events.settings
    }
}
