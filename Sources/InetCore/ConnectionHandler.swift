import Logging
import NIOCore

/// Sits first in every TCP connection's pipeline: counts bytes both ways, closes the connection
/// when the idle timer fires, and writes the connection's one log line when it ends.
final class ConnectionAccountingHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let counters: ServiceCounters
    private let logger: Logger
    private let peer: String
    private let started = NIODeadline.now()
    private var bytesIn = 0
    private var bytesOut = 0
    private var outcome: String?
    private var failed = false

    private let onActive: @Sendable () -> Void
    private let events: ConnectionEvents?

    init(counters: ServiceCounters, logger: Logger, peer: String, events: ConnectionEvents? = nil, onActive: @escaping @Sendable () -> Void = {}) {
        self.counters = counters
        self.logger = logger
        self.peer = peer
        self.events = events
        self.onActive = onActive
    }

    func channelActive(context: ChannelHandlerContext) {
        onActive()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = unwrapInboundIn(data).readableBytes
        bytesIn += count
        counters.bytesIn.bump(count)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Counted when the bytes reach the socket, not when queued: a client that goes away
        // leaves queued bytes unsent, and the log must not claim them.
        let count: Int
        switch unwrapOutboundIn(data) {
        case .byteBuffer(let buffer): count = buffer.readableBytes
        case .fileRegion(let region): count = region.readableBytes
        }
        let written = promise ?? context.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.futureResult.whenSuccess {
            bound.value.bytesOut += count
            bound.value.counters.bytesOut.bump(count)
        }
        context.write(data, promise: written)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            let notice = ConnectionIdleNotice()
            context.fireUserInboundEventTriggered(notice)
            if notice.handledByService { return }
            outcome = outcome ?? "idle timeout"
            failed = true
            context.close(promise: nil)
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            outcome = outcome ?? "closed by peer"
        }
        context.fireUserInboundEventTriggered(event)
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        outcome = outcome ?? "closed by server"
        context.close(mode: mode, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if outcome == nil {
            outcome = "error: \(error)"
            failed = true
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        counters.activeConnections.bump(-1)
        if failed { counters.errors.bump(1) }
        if logger.logLevel <= .info {
            logger.info("connection", metadata: [
                "service": "\(counters.service)",
                "transport": "tcp",
                "peer": "\(peer)",
                "duration_ms": "\(Self.milliseconds(since: started))",
                "bytes_in": "\(bytesIn)",
                "bytes_out": "\(bytesOut)",
                "outcome": "\(outcome ?? "closed by peer")",
            ])
        }
        if let events {
            let nanoseconds = (NIODeadline.now() - started).nanoseconds
            let (bytesIn, bytesOut, outcome) = (bytesIn, bytesOut, outcome ?? "closed by peer")
            events.emit("connection.close") { body in
                body.milliseconds("duration_ms", nanoseconds: nanoseconds)
                body.int("bytes_in", bytesIn)
                body.int("bytes_out", bytesOut)
                body.string("outcome", outcome)
            }
        }
        context.fireChannelInactive()
    }

    static func milliseconds(since start: NIODeadline) -> String {
        let nanos = (NIODeadline.now() - start).nanoseconds
        let tenths = nanos / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }
}

/// Sent down a connection's pipeline when its `idle_timeout` passes. A service that times its
/// sessions itself (SMTP's command and data timeouts, POP3's autologout timer) sets
/// `handledByService`, and the host then leaves the connection to it.
public final class ConnectionIdleNotice {
    public var handledByService = false

    public init() {}
}

/// Installed instead of the service when `max_connections` is reached: the connection is
/// closed as soon as it is active, so the client sees an immediate end, never a hang.
final class RefuseConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func channelActive(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension SocketAddress {
    /// `ip:port` with brackets for IPv6; for logs.
    public var logDescription: String {
        guard let ip = ipAddress, let port else { return "\(self)" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
