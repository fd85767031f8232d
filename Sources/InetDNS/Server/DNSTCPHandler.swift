import InetCore
import NIOCore

/// RFC 1035 4.2.2 / RFC 7766 8: each message is preceded by its length in two octets.
struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

/// Answers each framed query on the connection (several per connection, RFC 7766 6.2.1),
/// and zone transfers for allowed peers.
final class DNSTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let service: DNSService

    init(service: DNSService) {
        self.service = service
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        if let query = try? DNSMessageReader.decode(bytes), !query.isResponse, query.opcode == 0,
           query.questions.count == 1, query.questions[0].type == .axfr {
            for message in transfer(query, peer: context.channel.remoteAddress) { send(message, context: context) }
            return
        }
        if let answer = service.answer(bytes, transport: .tcp, peer: context.channel.remoteAddress) {
            send(answer, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
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
