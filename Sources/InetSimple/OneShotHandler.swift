import NIOCore

/// For the services that answer a connection with one message and close (daytime, qotd,
/// time): writes the message as soon as the connection is active, then closes. Whatever the
/// client sends is ignored.
final class OneShotHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let makeMessage: (ByteBufferAllocator) -> ByteBuffer
    /// Whether the message is a line of text (daytime, qotd) rather than bytes (time).
    private let text: Bool

    init(text: Bool = true, makeMessage: @escaping (ByteBufferAllocator) -> ByteBuffer) {
        self.text = text
        self.makeMessage = makeMessage
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { send(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        send(context: context)
        context.fireChannelActive()
    }

    private var sent = false

    private func send(context: ChannelHandlerContext) {
        guard !sent else { return }
        sent = true
        let message = makeMessage(context.channel.allocator)
        SimpleExchange.record(context.channel, answered: message, answerIsText: text)
        context.writeAndFlush(wrapOutboundOut(message)).whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A client that half-closes before reading still gets its answer.
        if let event = event as? ChannelEvent, event == .inputClosed { return }
        context.fireUserInboundEventTriggered(event)
    }
}
