import InetCore
import Logging
import NIOCore
import NIOSSL

/// What a line-protocol session (SMTP, POP3, FTP) asks its connection to do, in order.
///
/// The session decides; the connection acts. Everything that touches a file, a socket, a lock
/// shared with other connections, the thread pool or a timer is an `Effect` of the session's
/// own type, run by the service's effect runner; its outcome comes back to the session through
/// `LineSession.complete(_:)`. So the session is a pure state machine that unit tests and the
/// fuzzers drive line by line, without sockets (the split of swift-nio-ssh).
public enum LineAction<Effect> {
    /// Queue a reply; `text` carries its own CRLFs.
    case reply(String)
    /// Queue raw bytes (a message being retrieved).
    case write(ByteBuffer)
    /// Flush and continue once everything queued so far has reached the socket (backpressure
    /// for long retrievals).
    case flushAndWait
    /// Run the effect and stop reading commands until its outcome, given to `complete(_:)`,
    /// yields the next actions. Input meanwhile stays buffered (bounded), so pipelined
    /// commands are answered in order.
    case perform(Effect)
    /// Run the effect without waiting for it (closing a data connection on ABOR).
    case signal(Effect)
    /// Flush, drop whatever the client sent after the command (RFC 3207 5, RFC 2595 4), and
    /// start the TLS handshake as the server.
    case startTLS
    /// Flush and close.
    case close
    /// Record a protocol exchange in the host's events (a message delivered, a retrieval, a
    /// transfer); nothing is sent.
    case event(LineEvent)
}

/// One protocol exchange a session reports (`smtp.message`, `pop3.retr`, `ftp.transfer`…):
/// its kind and members, added to the connection's event after its common members.
public struct LineEvent: Sendable {
    public enum Value: Sendable {
        case string(String)
        case int(Int)
        case bool(Bool)
        case strings([String])
        /// A password or other secret: recorded only with `report.show_credentials: true`.
        case secret(String)
    }

    public var kind: String
    public var fields: [(String, Value)]

    public init(_ kind: String, _ fields: [(String, Value)]) {
        self.kind = kind
        self.fields = fields
    }
}

/// How a received line ended.
public enum LineEnding: Sendable {
    case crlf
    /// A bare LF (accepted and normalised, as Postfix does by default).
    case lf
}

/// One connection's protocol state; used only on the connection's event loop.
public protocol LineSession: AnyObject {
    /// What the session asks of the world (files, sockets, delays).
    associatedtype Effect
    /// What came of an effect.
    associatedtype Outcome

    /// The greeting and anything else to do when the connection opens.
    func start(context: LineSessionContext) -> [LineAction<Effect>]
    /// One line without its ending.
    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction<Effect>]
    /// A line longer than `maximumLineLength` arrived; its bytes were discarded.
    func lineTooLong() -> [LineAction<Effect>]
    /// The outcome of the effect the session is waiting for.
    func complete(_ outcome: Outcome) -> [LineAction<Effect>]
    /// The longest line, without the ending, that `receive` takes in the current state.
    var maximumLineLength: Int { get }
    /// How long the client may stay silent in the current state, and the reply then.
    var timeout: (seconds: Double, reply: String) { get }
    /// The connection is gone: what to clean up (locks, half-written files, data connections).
    func closed() -> [Effect]
    /// A complete line that arrived while the session waits on an effect (a file transfer):
    /// actions to take now (FTP's ABOR and STAT), or nil to leave it for after the effect.
    func receiveWhileBusy(line: ByteBuffer) -> [LineAction<Effect>]?
    /// How a line the client sent shows in the transcript, asked before `receive`: the line,
    /// a masked form (`PASS ****`), or nil to leave it out (a message's body).
    func transcript(of line: ByteBuffer) -> String?
}

extension LineSession {
    public func receiveWhileBusy(line: ByteBuffer) -> [LineAction<Effect>]? { nil }

    public func transcript(of line: ByteBuffer) -> String? {
        String(decoding: line.readableBytesView, as: UTF8.self)
    }
}

/// A command whose argument is a secret, as the transcript shows it: `PASS ****`.
public func maskedArgument(_ line: ByteBuffer, keep words: Int = 1) -> String {
    let text = String(decoding: line.readableBytesView, as: UTF8.self)
    var parts = text.split(separator: " ", maxSplits: words, omittingEmptySubsequences: false)
    guard parts.count > words else { return text }
    parts[words] = "****"
    return parts.joined(separator: " ")
}

/// What the session may know of its connection.
public struct LineSessionContext: Sendable {
    public var peer: SocketAddress?
    public var local: SocketAddress?
    /// The client's address already has the most connections the service allows
    /// (`max_connections_per_address`): the session says so and closes.
    public var overAddressLimit: Bool

    public init(peer: SocketAddress?, local: SocketAddress?, overAddressLimit: Bool = false) {
        self.peer = peer
        self.local = local
        self.overAddressLimit = overAddressLimit
    }
}

/// Runs a session's effects for one connection, on its event loop: each returns a future of
/// its outcome. `closed()` lets go of whatever the runner still holds.
public protocol LineEffectRunner<Effect, Outcome>: AnyObject {
    associatedtype Effect
    associatedtype Outcome
    func perform(_ effect: Effect, on loop: any EventLoop) -> EventLoopFuture<Outcome>
    func closed()
}

/// Connections per client address across a service's connections, checked when a connection
/// opens and released when it closes.
public struct LineAdmission: Sendable {
    public var counter: AddressConnectionCounter
    public var limit: Int

    public init(counter: AddressConnectionCounter, limit: Int) {
        self.counter = counter
        self.limit = limit
    }
}

/// Drives a `LineSession` on a TCP connection: splits input into lines (bounded), answers each
/// line before looking at the next (so pipelined commands are answered in order and an
/// asynchronous step such as a durable delivery finishes before anything after it), runs the
/// session's effects, enforces the session's timeouts, and inserts TLS in front of itself for
/// STARTTLS/STLS.
///
/// Output never outruns the peer: while the channel is not writable no further line is
/// answered, and reads stop while unanswered input is buffered past `maximumBuffered`. A
/// client that pipelines commands and never reads costs one socket buffer and one input
/// buffer, and its command timeout still runs.
public final class LineProtocolHandler<Session: LineSession>: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer
    public typealias Action = LineAction<Session.Effect>

    private let session: Session
    private let effects: any LineEffectRunner<Session.Effect, Session.Outcome>
    private let tls: NIOSSLContext?
    private let logger: Logger
    private let admission: LineAdmission?
    /// Unanswered input buffered before reads pause.
    private let maximumBuffered: Int

    private var buffer: ByteBuffer?
    /// Where to look for the next LF (bytes before it were already searched).
    private var scanned = 0
    /// Inside an over-long line: its bytes are dropped up to the next LF.
    private var discarding = false
    private var pending: [Action] = []
    /// Replies not yet written (see `emit`).
    private var outgoing: ByteBuffer?
    private var pendingIndex = 0
    private var waiting = false
    /// Waiting only for queued output to reach the peer (`flushAndWait`): unlike an effect,
    /// this wait counts against the session's timeout, or a client that stops reading in the
    /// middle of a retrieval would hold the connection forever.
    private var flushing = false
    private var readHeld = false
    private var closing = false
    private var lastActivity = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private var countedAddress: String?
    /// Where the transcript and the session's exchanges go (nil: events off).
    private var events: ConnectionEvents?

    public init(session: Session, effects: any LineEffectRunner<Session.Effect, Session.Outcome>, tls: NIOSSLContext?, logger: Logger,
                admission: LineAdmission? = nil, maximumBuffered: Int = 64 * 1024) {
        self.session = session
        self.effects = effects
        self.tls = tls
        self.logger = logger
        self.admission = admission
        self.maximumBuffered = maximumBuffered
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        events = ConnectionEvents.of(context.channel)
        if context.channel.isActive { begin(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        begin(context: context)
        context.fireChannelActive()
    }

    private var begun = false

    private func begin(context: ChannelHandlerContext) {
        guard !begun else { return }
        begun = true
        var over = false
        if let admission {
            let address = context.channel.remoteAddress?.ipAddress ?? "?"
            if admission.counter.open(address, limit: admission.limit) { countedAddress = address } else { over = true }
        }
        let sessionContext = LineSessionContext(peer: context.channel.remoteAddress, local: context.channel.localAddress, overAddressLimit: over)
        enqueue(session.start(context: sessionContext))
        lastActivity = context.eventLoop.now
        armTimer(context: context)
        drive(context: context)
        context.flush()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        lastActivity = context.eventLoop.now
        if closing { return }
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = incoming
            scanned = 0
        } else {
            // Keep only the unfinished line before appending, so the buffer never grows with
            // bytes already answered.
            if buffer!.readerIndex > 0 { buffer!.discardReadBytes() }
            buffer!.writeBuffer(&incoming)
        }
        drive(context: context)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        context.fireChannelReadComplete()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The peer has read what was queued: answer what it sent meanwhile.
        if context.channel.isWritable {
            drive(context: context)
            context.flush()
        }
        context.fireChannelWritabilityChanged()
    }

    public func read(context: ChannelHandlerContext) {
        if (buffer?.readableBytes ?? 0) > maximumBuffered || !context.channel.isWritable {
            readHeld = true
            return
        }
        context.read()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client is done sending; finish what it asked for, then close.
            inputClosed = true
            drive(context: context)
            return
        }
        if let notice = event as? ConnectionIdleNotice {
            // The session's own timeouts (command, data, autologout) govern this connection.
            notice.handledByService = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The client half-closed: once every buffered line is answered, close.
    private var inputClosed = false

    public func channelInactive(context: ChannelHandlerContext) {
        closing = true
        timer?.cancel()
        release()
        for effect in session.closed() { _ = effects.perform(effect, on: context.eventLoop) }
        effects.closed()
        context.fireChannelInactive()
    }

    private func release() {
        if let countedAddress, let admission { admission.counter.close(countedAddress) }
        countedAddress = nil
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        closing = true
        context.close(promise: nil)
    }

    // MARK: - The loop

    private func enqueue(_ actions: [Action]) {
        if pendingIndex == pending.count {
            pending = actions
            pendingIndex = 0
        } else {
            pending.append(contentsOf: actions)
        }
    }

    private var driving = false

    /// Lines answered in one turn of the event loop before the connection yields to the
    /// others on its loop (a pipelining client cannot hold the loop for a megabyte of input).
    static var linesPerTurn: Int { 256 }

    private let later = LaterTurn()

    private func drive(context: ChannelHandlerContext) {
        guard !driving else { return }
        driving = true
        defer {
            emit(context: context)
            driving = false
        }
        var answered = 0
        while !waiting, !closing {
            if pendingIndex < pending.count {
                let action = pending[pendingIndex]
                pendingIndex += 1
                perform(action, context: context)
                continue
            }
            // Answer the next line only while the peer takes what we send.
            guard context.channel.isWritable else { break }
            guard answered < Self.linesPerTurn else {
                continueLater(context: context)
                break
            }
            guard let actions = nextLine() else { break }
            answered += 1
            enqueue(actions)
        }
        if pendingIndex == pending.count, !pending.isEmpty {
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
        }
        while waiting, !closing, context.channel.isWritable, let actions = busyLine() {
            for action in actions { perform(action, context: context) }
            emit(context: context)
            context.flush()
        }
        if inputClosed, !waiting, !closing, pendingIndex == pending.count, !hasCompleteLine {
            perform(.close, context: context)
        }
        if readHeld, !closing, context.channel.isWritable, (buffer?.readableBytes ?? 0) <= maximumBuffered {
            readHeld = false
            context.read()
        }
    }

    /// Goes on answering buffered lines in a later turn of the loop.
    private func continueLater(context: ChannelHandlerContext) {
        later.schedule(on: context.eventLoop) {
            guard let context = self.context, !self.closing else { return }
            self.drive(context: context)
            context.flush()
        }
    }

    /// Writes the replies gathered so far as one buffer (thousands of pipelined replies are
    /// one write, not thousands: the pending-output bound then counts bytes, not buffers).
    private func emit(context: ChannelHandlerContext) {
        guard let out = outgoing, out.readableBytes > 0 else { return }
        outgoing = nil
        context.write(wrapOutboundOut(out), promise: nil)
    }

    /// Whether a whole line waits in the buffer (more to answer before a half-close closes).
    private var hasCompleteLine: Bool {
        guard let bytes = buffer, bytes.readableBytes > 0 else { return false }
        return bytes.readableBytesView.contains(0x0A)
    }

    /// While the session waits: offers the next complete line to `receiveWhileBusy`, and
    /// consumes it only if the session takes it.
    private func busyLine() -> [Action]? {
        guard let bytes = buffer, bytes.readableBytes > 0, !discarding,
              let newline = bytes.readableBytesView.firstIndex(of: 0x0A) else { return nil }
        var line = bytes.getSlice(at: bytes.readerIndex, length: newline - bytes.readerIndex) ?? ByteBuffer()
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == 0x0D {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        guard line.readableBytes <= session.maximumLineLength else { return nil }
        let shown = events?.transcripts == true ? session.transcript(of: line) : nil
        // Consumed before the session sees it: what it does (closing a data connection) may
        // finish the step at once and re-enter this handler.
        let readerIndex = bytes.readerIndex
        buffer!.moveReaderIndex(to: newline + 1)
        scanned = 0
        guard let actions = session.receiveWhileBusy(line: line) else {
            buffer!.moveReaderIndex(to: readerIndex)
            return nil
        }
        if let shown { events?.line(.client, shown) }
        return actions
    }

    /// The session's actions for the next complete line in the buffer, or nil when none is.
    private func nextLine() -> [Action]? {
        guard var bytes = buffer, bytes.readableBytes > 0 else { return nil }
        let view = bytes.readableBytesView
        let start = view.startIndex + scanned
        guard let newline = view[start...].firstIndex(of: 0x0A) else {
            let limit = session.maximumLineLength + 1
            if bytes.readableBytes > limit {
                // Too long already: drop what is buffered and the rest of the line when it comes.
                discarding = true
                buffer!.moveReaderIndex(forwardBy: bytes.readableBytes)
                scanned = 0
            } else {
                scanned = bytes.readableBytes
            }
            return nil
        }
        let length = newline - view.startIndex
        guard var line = bytes.readSlice(length: length) else { return nil }
        bytes.moveReaderIndex(forwardBy: 1)
        buffer = bytes
        scanned = 0
        var ending = LineEnding.lf
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == 0x0D {
            line.moveWriterIndex(to: line.writerIndex - 1)
            ending = .crlf
        }
        if discarding {
            discarding = false
            events?.line(.client, "(a line longer than \(session.maximumLineLength) bytes, discarded)")
            return session.lineTooLong()
        }
        if line.readableBytes > session.maximumLineLength {
            events?.line(.client, "(a line longer than \(session.maximumLineLength) bytes, discarded)")
            return session.lineTooLong()
        }
        if let events, events.transcripts, let shown = session.transcript(of: line) { events.line(.client, shown) }
        return session.receive(line: line, ending: ending)
    }

    private func perform(_ action: Action, context: ChannelHandlerContext) {
        if case .reply(let text) = action {
            if let events, events.transcripts { events.lines(.server, text) }
            if outgoing == nil { outgoing = context.channel.allocator.buffer(capacity: max(256, text.utf8.count)) }
            outgoing!.writeString(text)
            return
        }
        emit(context: context)
        switch action {
        case .reply:
            break
        case .event(let event):
            guard let events else { return }
            events.emit(event.kind) { body in
                for (name, value) in event.fields {
                    switch value {
                    case .string(let text): body.string(named: name, text)
                    case .int(let number): body.int(named: name, number)
                    case .bool(let flag): body.bool(named: name, flag)
                    case .strings(let list): body.strings(named: name, list)
                    case .secret(let text): if events.settings.showCredentials { body.string(named: name, text) }
                    }
                }
            }
        case .write(let bytes):
            context.write(wrapOutboundOut(bytes), promise: nil)
        case .flushAndWait:
            waiting = true
            flushing = true
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
            promise.futureResult.assumeIsolated().whenComplete { result in
                self.flushing = false
                self.resume(with: result.isFailure ? [.close] : [])
            }
        case .perform(let effect):
            waiting = true
            context.flush()
            effects.perform(effect, on: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let outcome):
                    self.resume(with: self.closing ? [] : self.session.complete(outcome))
                case .failure(let error):
                    self.logger.error("session step failed", metadata: ["error": "\(error)"])
                    self.resume(with: [.close])
                }
            }
        case .signal(let effect):
            _ = effects.perform(effect, on: context.eventLoop)
        case .startTLS:
            guard let tls else { return }
            context.flush()
            // RFC 3207 5: anything pipelined after STARTTLS is discarded, never read as TLS data.
            buffer = nil
            scanned = 0
            discarding = false
            do {
                try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .before(self))
            } catch {
                closing = true
                context.close(promise: nil)
            }
        case .close:
            closing = true
            timer?.cancel()
            // The last replies go out first; a peer that does not read them is dropped after
            // a short linger instead of holding the connection open.
            let linger = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(clamping: min(session.timeout.seconds, Self.closeLinger))) {
                context.close(promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
                linger.cancel()
                context.close(promise: nil)
            }
        }
    }

    /// The longest a closing connection waits for its peer to take the last replies.
    static var closeLinger: Double { 10 }

    private func resume(with actions: [Action]) {
        guard let context, !closing else { return }
        if driving {
            // Completed from inside `drive` (a step finished synchronously): continue afterwards.
            context.eventLoop.assumeIsolated().execute { self.resume(with: actions) }
            return
        }
        waiting = false
        lastActivity = context.eventLoop.now
        // The actions of the finished step run before whatever was queued behind it.
        let rest = Array(pending[pendingIndex...])
        pending = actions + rest
        pendingIndex = 0
        drive(context: context)
        context.flush()
    }

    // MARK: - Timeouts

    private func armTimer(context: ChannelHandlerContext) {
        let seconds = session.timeout.seconds
        // While an effect runs (a transfer can outlast the command timeout) the clock is not
        // running: look again a timeout from now, never at a deadline already past.
        // The loop's own clock (an EmbeddedEventLoop's is virtual: a real-time deadline there
        // would always be due and the timer would spin).
        let due = max(lastActivity + .seconds(clamping: seconds), context.eventLoop.now + .seconds(clamping: min(seconds, 1)))
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) {
            self.timerFired()
        }
    }

    private func timerFired() {
        guard let context, !closing else { return }
        let (seconds, reply) = session.timeout
        if (waiting && !flushing) || context.eventLoop.now < lastActivity + .seconds(clamping: seconds) {
            armTimer(context: context)
            return
        }
        logger.debug("session timeout", metadata: ["seconds": "\(seconds)"])
        pending = []
        pendingIndex = 0
        waiting = false
        closing = true
        // The peer may not be reading (that is often why it timed out): the reply goes out if
        // the socket takes it now, and the connection closes either way.
        emit(context: context)
        var out = context.channel.allocator.buffer(capacity: reply.utf8.count)
        out.writeString(reply)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        context.close(promise: nil)
    }
}

extension Result {
    public var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
}

/// A session's error replies, counted: past `limit` the error reply is followed by `closing`
/// and the connection ends (SMTP's 421, POP3's -ERR, FTP's 421).
public struct LineErrorBudget: Sendable {
    public let limit: Int
    public let closing: String
    public private(set) var count = 0

    public init(limit: Int, closing: String) {
        self.limit = limit
        self.closing = closing
    }

    /// Counts one error; true once the limit is reached.
    public mutating func spend() -> Bool {
        count += 1
        return count >= limit
    }

    /// The reply `text` (without CRLF), counted; with the closing line and a close at the limit.
    public mutating func fail<Effect>(_ text: String) -> [LineAction<Effect>] {
        spend() ? [.reply(text + "\r\n"), .reply(closing + "\r\n"), .close] : [.reply(text + "\r\n")]
    }
}
