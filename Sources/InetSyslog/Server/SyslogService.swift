#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// syslog on UDP 514 (RFC 5426) and TCP 514 (RFC 6587 framing): every message, RFC 5424 or
/// RFC 3164, is stored as one JSON line under `<data_dir>/syslog/` (`SyslogStore`). Nothing is
/// ever sent back. Messages over `max_message_size` are truncated and flagged.
public struct SyslogService: InetService {
    public static let keys: Set<String> = ["dir", "max_message_size", "rotate_bytes", "max_total_bytes", "max_pending_bytes"]

    public static let descriptor = ServiceDescriptor(
        name: "syslog", wellKnownPort: 514, transports: [.udp, .tcp], optionKeys: keys,
        summary: "stores what syslog senders log as JSON lines (RFC 5424, RFC 3164; TCP framing RFC 6587)",
        // It never answers, so there is nothing to reflect: no per-source limit (rsyslog has
        // none either); the store bounds what a flood can cost. TCP senders keep one
        // connection open and idle for hours.
        defaultUDPRate: (rate: 0, burst: 100),
        defaultIdleTimeout: 86_400,
        // Senders burst and nothing asks them to slow down: room for ~10k messages.
        defaultUDPReceiveBuffer: 4 << 20,
        // One sender's messages are stored in the order it sent them.
        udpKeepsSourceOrder: true
    ) { options throws(ConfigError) in try SyslogService(options) }

    public let maximumMessage: Int
    public let store: SyslogStore
    let connections = SyslogConnections()

    public init(maximumMessage: Int = 8192, store: SyslogStore) {
        self.maximumMessage = maximumMessage
        self.store = store
    }

    init(_ options: ServiceOptions) throws(ConfigError) {
        let reader = options.reader
        var settings = SyslogStore.Settings(directory: try options.path("dir", default: "syslog"))
        if let value = try reader?.int("rotate_bytes", range: 4096...(1 << 40)) { settings.rotateBytes = value }
        if let value = try reader?.int("max_total_bytes", range: 8192...(1 << 50)) { settings.maximumTotalBytes = value }
        guard settings.maximumTotalBytes >= 2 * settings.rotateBytes else {
            throw options.error("max_total_bytes", "must be at least twice rotate_bytes (\(settings.rotateBytes)): the day's file and one rotated file")
        }
        if let value = try reader?.int("max_pending_bytes", range: 65_536...(1 << 30)) { settings.maximumPendingBytes = value }
        let maximum = try reader?.int("max_message_size", range: 480...(1 << 20)) ?? 8192
        self.init(maximumMessage: maximum, store: SyslogStore.shared(settings))
    }

    public func prepare() throws {
        try createDirectories(store.settings.directory, mode: 0o750)
    }

    /// Each message's event (`syslog.message`) comes from the store's thread once it is parsed.
    public var datagramEventKind: String? { nil }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel) -> ByteBuffer? {
        store(payload, from: source, events: HostEvents.of(channel).map { .datagram($0, channel) })
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator) -> ByteBuffer? {
        store(payload, from: source, events: nil)
    }

    private func store(_ payload: ByteBuffer, from source: SocketAddress, events: SyslogStore.Message.EventTarget?) -> ByteBuffer? {
        let length = payload.readableBytes
        guard length > 0 else { return nil }
        let kept = payload.withUnsafeReadableBytes { Array($0.prefix(maximumMessage)) }
        var message = SyslogStore.Message(bytes: kept, length: length, peer: .address(source), tcp: false)
        message.events = events
        _ = store.append(message)
        return nil
    }

    public func configureTCPConnection(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(SyslogConnectionHandler(
            framer: SyslogFramer(maximumMessage: maximumMessage), store: store, connections: connections))
    }

    public func drainConnections() {
        for channel in connections.all {
            channel.pipeline.fireUserInboundEventTriggered(SyslogConnectionHandler.Drain())
        }
    }

    public func finish() async {
        // Each connection stores its last message as it closes; then everything goes to disk.
        let deadline = NIODeadline.now() + .seconds(5)
        while !connections.all.isEmpty && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        await store.flush()
    }
}

/// The service's open TCP connections (to end them at shutdown).
final class SyslogConnections: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) {
        channels.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
    }

    func remove(_ channel: any Channel) {
        channels.withLockedValue { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var all: [any Channel] { channels.withLockedValue { Array($0.values) } }
}

/// One TCP sender: frames, parses and stores its messages, a batch per read. When the store
/// is full it stops reading until the store has caught up (the sender's TCP window closes; no
/// message is dropped). At shutdown it reads until the sender has been quiet for a moment, then
/// closes, storing a last unterminated message too.
final class SyslogConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    struct Drain: Sendable {}

    private var framer: SyslogFramer
    private let store: SyslogStore
    private let connections: SyslogConnections
    private var peer = SyslogStore.Message.Peer.text("?")
    private var events: SyslogStore.Message.EventTarget?
    private var batch: [SyslogStore.Message] = []
    private var paused = false
    private var draining = false
    private var readSinceDrainCheck = false
    private var drainTimer: Scheduled<Void>?
    private var finished = false
    /// How long a draining connection may be quiet before it is closed.
    static let quietPeriod = TimeAmount.milliseconds(200)

    init(framer: SyslogFramer, store: SyslogStore, connections: SyslogConnections) {
        self.framer = framer
        self.store = store
        self.connections = connections
    }

    func channelActive(context: ChannelHandlerContext) {
        peer = .text(context.channel.remoteAddress?.logDescription ?? "?")
        events = ConnectionEvents.of(context.channel).map { .connection($0) }
        connections.add(context.channel)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        readSinceDrainCheck = true
        buffer.withUnsafeReadableBytes { raw in
            framer.feed(raw) { frame in self.add(frame) }
        }
    }

    private func add(_ frame: SyslogFramer.Frame) {
        var message = SyslogStore.Message(bytes: frame.bytes, length: frame.length, incomplete: frame.incomplete, peer: peer, tcp: true)
        message.events = events
        batch.append(message)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        hand(context: context)
        context.fireChannelReadComplete()
    }

    /// Gives the batch to the store; pauses reading when the store is full.
    private func hand(context: ChannelHandlerContext) {
        guard !batch.isEmpty else { return }
        let admission = store.append(batch)
        batch.removeAll(keepingCapacity: true)
        guard admission == .storedButFull, !paused else { return }
        paused = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        let loop = context.eventLoop
        let resume = NIOLoopBound((self, context), eventLoop: loop)
        store.whenDrained {
            loop.execute {
                let (handler, context) = resume.value
                guard handler.paused else { return }
                handler.paused = false
                context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The sender is done (the host allows half-closure): store its last message, close.
            finish(context: context)
            context.close(promise: nil)
            return
        }
        if event is Drain {
            guard !draining else { return }
            draining = true
            readSinceDrainCheck = false
            armDrainTimer(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func armDrainTimer(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        drainTimer = context.eventLoop.scheduleTask(in: Self.quietPeriod) {
            let (handler, context) = bound.value
            if handler.readSinceDrainCheck || handler.paused {
                handler.readSinceDrainCheck = false
                handler.armDrainTimer(context: context)
            } else {
                context.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context: context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(context: context)
    }

    private func finish(context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        drainTimer?.cancel()
        if let frame = framer.finish() { add(frame) }
        hand(context: context)
        connections.remove(context.channel)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
