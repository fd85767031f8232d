import InetCore
import NIOCore

/// Answers each framed query on the connection (several per connection, RFC 7766 6.2.1),
/// and zone transfers for allowed peers. RFC 1035 4.2.2 / RFC 7766 8: each message is
/// preceded by its length in two octets.
///
/// Output never outruns the peer: a query is answered only while the channel is writable,
/// and reads stop while the channel is not writable or a whole frame's worth of unanswered
/// input is buffered. A client that pipelines queries and never reads costs one socket
/// buffer and at most one frame of input.
final class DNSTCPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let service: DNSService
    private var buffer = ByteBuffer()
    private var readHeld = false
    private var answering = false

    /// The most unanswered input kept: one largest frame and its length.
    static var maximumBuffered: Int { 65_537 }

    /// Where this connection's queries are recorded (nil: events off).
    private var events: ConnectionEvents?

    init(service: DNSService) {
        self.service = service
    }

    func handlerAdded(context: ChannelHandlerContext) {
        events = ConnectionEvents.of(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer.readableBytes == 0 {
            buffer = incoming
        } else {
            buffer.discardReadBytes()
            buffer.writeBuffer(&incoming)
        }
        answer(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            answer(context: context)
            context.flush()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if buffer.readableBytes >= Self.maximumBuffered || !context.channel.isWritable {
            readHeld = true
            return
        }
        context.read()
    }

    /// Queries answered in one turn of the event loop before the connection yields to the
    /// others on its loop.
    static var queriesPerTurn: Int { 64 }

    private let later = LaterTurn()

    /// Answers the whole frames in the buffer while the peer takes what is sent.
    private func answer(context: ChannelHandlerContext) {
        guard !answering else { return }
        answering = true
        defer { answering = false }
        var answered = 0
        while context.channel.isWritable,
              let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length) {
            guard answered < Self.queriesPerTurn else {
                continueLater(context: context)
                return
            }
            answered += 1
            buffer.moveReaderIndex(forwardBy: 2)
            guard let frame = buffer.readSlice(length: Int(length)) else { break }
            respond(to: Array(frame.readableBytesView), context: context)
        }
        if readHeld, context.channel.isWritable, buffer.readableBytes < Self.maximumBuffered {
            readHeld = false
            context.read()
        }
    }

    private func continueLater(context: ChannelHandlerContext) {
        later.schedule(on: context.eventLoop) {
            guard context.channel.isActive else { return }
            self.answer(context: context)
            context.flush()
        }
    }

    private func respond(to bytes: [UInt8], context: ChannelHandlerContext) {
        if let query = try? DNSMessageReader.decode(bytes), !query.isResponse, query.opcode == 0,
           query.questions.count == 1, query.questions[0].type == .axfr {
            let messages = transfer(query, peer: context.channel.remoteAddress)
            for message in messages { send(message, context: context) }
            note(query: bytes, reply: messages.first, from: "transfer", messages: messages.count)
            return
        }
        var from: StaticString = "zone"
        let answer = service.answer(bytes, transport: .tcp, peer: context.channel.remoteAddress, from: &from)
        if let answer { send(answer, context: context) }
        note(query: bytes, reply: answer, from: answer == nil ? "none" : from)
    }

    private func note(query: [UInt8], reply: [UInt8]?, from: StaticString, messages: Int = 1) {
        guard let events else { return }
        events.emit("dns.query") { body in
            query.withUnsafeBytes { query in
                if let reply {
                    reply.withUnsafeBytes { DNSEventNotes.describe(query: query, reply: $0, from: from, into: &body) }
                } else {
                    DNSEventNotes.describe(query: query, reply: nil, from: from, into: &body)
                }
            }
            if messages > 1 { body.int("messages", messages) }
        }
    }

    private func send(_ message: [UInt8], context: ChannelHandlerContext) {
        // The writer never makes a message over 65535 octets; checked anyway, not trusted.
        guard let length = UInt16(exactly: message.count) else { return }
        var buffer = context.channel.allocator.buffer(capacity: message.count + 2)
        buffer.writeInteger(length)
        buffer.writeBytes(message)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    /// AXFR (RFC 5936): the zone as SOA, every other record, SOA, in messages of up to
    /// ~16 KiB; REFUSED for peers outside `allow_transfer` and names that are no zone's origin.
    func transfer(_ query: DNSMessage, peer: SocketAddress?) -> [[UInt8]] {
        let question = query.questions[0]
        var response = DNSMessage(id: query.id, isResponse: true, authoritative: true, questions: query.questions)
        guard service.mayTransfer(from: peer), let zone = service.zones.authority.zone(for: question.name), zone.origin == question.name else {
            response.authoritative = false
            response.rcode = DNSRCode.refused
            return (try? DNSMessageWriter.encode(response)).map { [$0] } ?? []
        }
        let records = [zone.soa] + zone.records.filter { $0.type != .soa } + [zone.soa]
        var messages: [[UInt8]] = []
        var batch: [DNSRecord] = []
        var size = 12 + question.name.wireLength + 4
        func flush() {
            guard !batch.isEmpty else { return }
            response.answers = batch
            if let bytes = try? DNSMessageWriter.encode(response) { messages.append(bytes) }
            response.questions = []
            batch = []
            size = 12
        }
        for record in records {
            // Zone loading refused records that cannot be sent, so every size is known.
            let cost = DNSMessageWriter.wireSize(record) ?? 65_535
            if size + cost > 16_000 { flush() }
            batch.append(record)
            size += cost
        }
        flush()
        return messages
    }
}
