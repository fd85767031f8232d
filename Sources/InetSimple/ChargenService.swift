import InetCore
import NIOCore

/// Character Generator (RFC 864). TCP: the RFC's rotating 72-character lines, streamed until
/// the client closes, written only while the socket can take them (a client that never
/// reads costs one send buffer, not unbounded memory). UDP: one datagram of a random
/// 0-512 characters of the same pattern per datagram received.
public struct ChargenService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "chargen", wellKnownPort: 19, transports: [.tcp, .udp],
        summary: "streams lines of printable characters (RFC 864)"
    ) { _ in ChargenService() }

    public init() {}

    public func configureTCPConnection(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(ChargenHandler())
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let length = Int.random(in: 0...512)
        var buffer = allocator.buffer(capacity: length)
        buffer.writeBytes(Self.pattern.prefix(length))
        return buffer
    }

    /// The 95 printable ASCII characters, space to tilde.
    static let printable: [UInt8] = Array(32...126)
    public static let lineLength = 72

    /// Line `n` (0-based) of the pattern: 72 characters starting at printable[n % 95], CRLF.
    public static func line(_ n: Int) -> [UInt8] {
        (0..<lineLength).map { printable[(n + $0) % printable.count] } + [13, 10]
    }

    /// One full cycle: 95 lines, after which the pattern repeats exactly.
    public static let pattern: [UInt8] = (0..<95).flatMap(line)
}

/// Streams the chargen cycle while the channel is writable.
final class ChargenHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var cycle: ByteBuffer?

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        pump(context: context)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { pump(context: context) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump(context: context)
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client has stopped sending; RFC 864 streams until it closes, so go on.
        if let event = event as? ChannelEvent, event == .inputClosed { return }
        context.fireUserInboundEventTriggered(event)
    }

    private func pump(context: ChannelHandlerContext) {
        if cycle == nil {
            cycle = context.channel.allocator.buffer(bytes: ChargenService.pattern)
            SimpleExchange.record(context.channel, answered: cycle)
        }
        guard let cycle, context.channel.isActive else { return }
        // Each write shares the one buffer's storage; writes stop as soon as the channel
        // reports it is not writable and resume on the writability change.
        var written = 0
        while context.channel.isWritable && written < 16 {
            context.write(wrapOutboundOut(cycle), promise: nil)
            written += 1
        }
        context.flush()
        if context.channel.isWritable {
            // The socket took everything at once; go on after other work on this loop.
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.execute {
                let (handler, context) = bound.value
                handler.pumpLater(context: context)
            }
        }
    }

    private func pumpLater(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        pump(context: context)
    }
}
