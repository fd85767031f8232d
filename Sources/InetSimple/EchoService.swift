import InetCore
import NIOCore

/// Echo (RFC 862): every byte received is sent back, on TCP until the client closes, on UDP
/// one datagram for each datagram.
public struct EchoService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "echo", wellKnownPort: 7, transports: [.tcp, .udp],
        summary: "returns every byte received (RFC 862)"
    ) { _ in EchoService() }

    public init() {}

    public func configureTCPConnection(_ channel: any Channel) throws {
        // The host's BackPressureHandler stops reading while the echo cannot be written, so a
        // client that sends without reading never makes the server buffer without bound.
        try channel.pipeline.syncOperations.addHandler(EchoHandler())
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        // A copy: the datagram is a slice of the socket's pooled receive buffer, which can be
        // reused for the next read only once no reply holds on to it.
        var copy = allocator.buffer(capacity: payload.readableBytes)
        copy.writeImmutableBuffer(payload)
        return copy
    }
}

/// Writes back what it reads; flushes once per read burst.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var recorded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !recorded {
            recorded = true
            let bytes = unwrapInboundIn(data)
            SimpleExchange.record(context.channel, sent: bytes, answered: bytes)
        }
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client finished sending: everything echoed is flushed, then we close.
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.fireErrorCaught(error)
    }
}
