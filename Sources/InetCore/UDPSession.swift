import NIOCore
import NIOPosix

/// A connected UDP socket used for consecutive requests to one target, one at a time.
public final class UDPSession: Sendable {
    public let host: String
    public let port: Int
    public let channel: any Channel
    private let handler: NIOLoopBound<UDPReplyHandler>

    private init(host: String, port: Int, channel: any Channel, handler: NIOLoopBound<UDPReplyHandler>) {
        self.host = host
        self.port = port
        self.channel = channel
        self.handler = handler
    }

    /// A UDP socket connected to `host:port` (names resolved), reading whole datagrams.
    public static func open(host: String, port: Int, group: any EventLoopGroup) async throws -> UDPSession {
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPReplyHandler())
                }
            }
            .connect(host: host, port: port).get()
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: UDPReplyHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return UDPSession(host: host, port: port, channel: channel, handler: handler)
    }

    /// Sends one datagram and waits for the next one back; `nil` when none came in time.
    public func request(_ payload: ByteBuffer, timeout: TimeAmount) async throws -> ByteBuffer? {
        let channel = self.channel
        let handler = self.handler
        return try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<ByteBuffer?> in
            let promise = channel.eventLoop.makePromise(of: ByteBuffer?.self)
            handler.value.await(promise)
            let timer = channel.eventLoop.scheduleTask(in: timeout) { handler.value.complete(.success(nil)) }
            promise.futureResult.whenComplete { _ in timer.cancel() }
            guard let remote = channel.remoteAddress else {
                handler.value.complete(.failure(ChannelError.ioOnClosedChannel))
                return promise.futureResult
            }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: payload)).whenFailure { error in
                handler.value.complete(.failure(error))
            }
            return promise.futureResult
        }.get()
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Hands the next datagram (or socket error, e.g. ECONNREFUSED from an ICMP port
/// unreachable) to the one waiting request; anything else is dropped.
final class UDPReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private var pending: EventLoopPromise<ByteBuffer?>?

    func await(_ promise: EventLoopPromise<ByteBuffer?>) {
        complete(.success(nil))
        pending = promise
    }

    func complete(_ result: Result<ByteBuffer?, any Error>) {
        guard let promise = pending else { return }
        pending = nil
        promise.completeWith(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        complete(.success(unwrapInboundIn(data).data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        complete(.failure(error))
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(ChannelError.ioOnClosedChannel))
        context.fireChannelInactive()
    }
}

