import InetCore
import NIOCore

/// Discard (RFC 863): reads and throws away; never replies.
public struct DiscardService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "discard", wellKnownPort: 9, transports: [.tcp, .udp],
        summary: "reads and throws away (RFC 863)"
    ) { _ in DiscardService() }

    public init() {}

    public func configureTCPConnection(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(DiscardHandler())
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        nil
    }
}

/// Drops every read; closes once the client has finished sending.
final class DiscardHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private var recorded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !recorded else { return }
        recorded = true
        SimpleExchange.record(context.channel, sent: unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
