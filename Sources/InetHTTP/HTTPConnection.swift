import Hummingbird
import InetCore
import HummingbirdCore
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// What the HTTP/1 head said that swift-http-types drops: the version and whether the
/// connection stays open after the response.
struct RequestLine: Sendable {
    var version: HTTPVersion
    var keepAlive: Bool
}

/// Feeds the connection's bytes to the HTTP decoder in slices, and only while the front
/// handler can take more requests (`HTTP1FrontHandler.isReady`): the channel is writable, no
/// parsed request waits, and few enough are in the async path. A pipelining client that
/// never reads its responses so costs one socket buffer, what one read cycle brought in, and
/// the requests parsed from one slice: never a response per request it sent.
final class HTTPInputGate: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The most bytes handed to the decoder at once.
    static var slice: Int { 4096 }
    /// Slices handed on in one turn of the event loop before yielding to other connections.
    static var slicesPerTurn: Int { 16 }

    weak var front: HTTP1FrontHandler?
    private let later = LaterTurn()
    private var buffer: ByteBuffer?
    private var readHeld = false
    private var pumping = false
    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil {
            buffer = incoming
        } else {
            buffer!.discardReadBytes()
            buffer!.writeBuffer(&incoming)
        }
        pump(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if buffer != nil {
            readHeld = true
            return
        }
        context.read()
    }

    /// The front handler can take requests again.
    func resume() {
        guard let context else { return }
        if pump(context: context) { context.fireChannelReadComplete() }
    }

    /// Forwards slices while the front handler is ready; reads again once all is forwarded.
    @discardableResult
    private func pump(context: ChannelHandlerContext) -> Bool {
        guard !pumping else { return false }
        pumping = true
        defer { pumping = false }
        var forwarded = 0
        while buffer != nil, front?.isReady(context.channel) ?? true {
            guard forwarded < Self.slicesPerTurn else {
                // Yield to the other connections on this loop; go on in a later turn.
                later.schedule(on: context.eventLoop) { self.resume() }
                return true
            }
            let count = min(Self.slice, buffer!.readableBytes)
            guard let piece = buffer!.readSlice(length: count) else { break }
            if buffer!.readableBytes == 0 { buffer = nil }
            forwarded += 1
            context.fireChannelRead(wrapInboundOut(piece))
        }
        if readHeld, buffer == nil {
            readHeld = false
            context.read()
        }
        return forwarded > 0
    }
}

/// Sits between NIO's HTTP/1 codec and the HTTP-types codec:
/// - answers simple requests for small files itself, on the event loop (`StaticFastPath`),
///   but only while no request is in the async path, so answers stay in request order;
/// - remembers each forwarded request's version and keep-alive (swift-http-types drops them);
/// - closes a connection whose client takes longer than `header_timeout` to send a request
///   head (slowloris), or to send the next one on a kept-alive connection;
/// - takes a pipelined request only while its answer can be written: while the channel is not
///   writable, or `maximumOutstanding` requests wait in the async path, parsed requests queue
///   here (at most one `HTTPInputGate` slice of them) and the gate stops feeding the decoder.
final class HTTP1FrontHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let lines: NIOLockedValueBox<[RequestLine]>
    private let headerTimeout: TimeAmount
    private let fastPath: StaticFastPath?
    private let accessLog: AccessLog
    private var timer: Scheduled<Void>?
    /// Requests handed to the async path whose response has not ended yet.
    private var outstanding = 0
    /// A fast-path answer waiting for its request's end.
    private var pending: (request: HTTPRequestHead, answer: StaticFastPath.Answer, started: NIODeadline)?
    private var needsFlush = false
    private var closing = false
    /// Parsed request parts not taken yet, in order.
    private var queue = CircularBuffer<HTTPServerRequestPart>()
    private var draining = false
    private let gate: HTTPInputGate
    /// Where this connection's requests are recorded (nil: events off).
    private var events: ConnectionEvents?

    /// Requests in the async path (pipelined behind one being answered) before more queue.
    static var maximumOutstanding: Int { 16 }

    /// Whether the header timer starts with the connection (false: an `HTTPFastHandler` in
    /// front times the heads until it hands the connection over, `takeOver()`).
    private let armAtStart: Bool
    /// Under TLS: no file regions (a file not in the cache is answered by the async path).
    private let secure: Bool
    private var context: ChannelHandlerContext?

    init(lines: NIOLockedValueBox<[RequestLine]>, headerTimeout: TimeAmount, fastPath: StaticFastPath?, accessLog: AccessLog, gate: HTTPInputGate,
         armAtStart: Bool = true, secure: Bool = false) {
        self.secure = secure
        self.lines = lines
        self.headerTimeout = headerTimeout
        self.fastPath = fastPath
        self.accessLog = accessLog
        self.gate = gate
        self.armAtStart = armAtStart
    }

    /// The fast handler in front hands the connection over: from now on the heads are timed here.
    func takeOver() {
        guard let context, !closing, outstanding == 0, pending == nil, queue.isEmpty else { return }
        arm(context: context)
    }

    /// Whether another request head can be taken now.
    func isReady(_ channel: any Channel) -> Bool {
        queue.isEmpty && channel.isWritable && outstanding < Self.maximumOutstanding
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        events = ConnectionEvents.of(context.channel)
        if armAtStart { arm(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        timer?.cancel()
        // The connection ended between a request's head and its end: nothing will be sent.
        if case .file(let handle, _) = pending?.answer.body { try? handle.close() }
        pending = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let part = unwrapInboundIn(data)
        // A head waits while its answer could not be written; whatever follows a waiting
        // part waits behind it. Bodies and ends of a request already taken go on.
        if !queue.isEmpty || (isHead(part) && !isReady(context.channel)) {
            queue.append(part)
            return
        }
        take(part, context: context)
    }

    private func isHead(_ part: HTTPServerRequestPart) -> Bool {
        if case .head = part { return true }
        return false
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Takes queued parts while heads can be taken; then lets the gate feed the decoder again.
    private func drain(context: ChannelHandlerContext) {
        guard !draining else { return }
        draining = true
        var took = false
        while let part = queue.first, !closing {
            if isHead(part), !(context.channel.isWritable && outstanding < Self.maximumOutstanding) { break }
            queue.removeFirst()
            took = true
            take(part, context: context)
        }
        if closing { queue.removeAll() }
        draining = false
        if took {
            // What the async path was handed is delivered at read-complete.
            context.fireChannelReadComplete()
            if needsFlush {
                needsFlush = false
                context.flush()
            }
        }
        if queue.isEmpty, !closing { gate.resume() }
    }

    private func take(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        let data = wrapInboundOut(part)
        switch part {
        case .head(let head):
            timer?.cancel()
            timer = nil
            if outstanding == 0, let fastPath, let answer = fastPath.answer(head) {
                if secure, case .file(let handle, _) = answer.body {
                    try? handle.close()
                } else {
                    pending = (head, answer, NIODeadline.now())
                    return
                }
            }
            outstanding += 1
            let line = RequestLine(version: head.version, keepAlive: head.isKeepAlive)
            lines.withLockedValue { $0.append(line) }
        case .body:
            if pending != nil { return }
        case .end:
            if let (request, answer, started) = pending {
                pending = nil
                send(answer, for: request, started: started, context: context)
                return
            }
        }
        context.fireChannelRead(data)
    }

    private func send(_ answer: StaticFastPath.Answer, for request: HTTPRequestHead, started: NIODeadline, context: ChannelHandlerContext) {
        var head = answer.head
        let keepAlive = request.isKeepAlive
        if !keepAlive {
            head.headers.replaceOrAdd(name: "Connection", value: "close")
        } else if request.version == .http1_0 {
            head.headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let done = context.eventLoop.makePromise(of: Void.self)
        switch answer.body {
        case .none:
            break
        case .buffer(let body):
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        case .file(let handle, let size):
            context.write(wrapOutboundOut(.body(.fileRegion(FileRegion(fileHandle: handle, readerIndex: 0, endIndex: size)))), promise: nil)
            done.futureResult.whenComplete { _ in try? handle.close() }
        }
        context.write(wrapOutboundOut(.end(nil)), promise: done)
        done.futureResult.assumeIsolated().whenComplete { _ in self.responseSent(context: context) }
        needsFlush = true
        accessLog.record(peer: context.channel.remoteAddress, method: request.method.rawValue, target: request.uri, version: request.version,
                         referer: request.headers.first(name: "referer"), agent: request.headers.first(name: "user-agent"),
                         status: Int(head.status.code), bytes: answer.body.count, started: started,
                         events: events, host: events == nil ? nil : request.headers.first(name: "host"))
        if !keepAlive {
            closing = true
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.futureResult.whenComplete { _ in bound.value.close(promise: nil) }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        outstanding = max(0, outstanding - 1)
        if outstanding == Self.maximumOutstanding - 1 || (outstanding == 0 && !queue.isEmpty) {
            // Room in the async path again: take what waits, after this write.
            context.eventLoop.assumeIsolated().execute { self.drain(context: context) }
        }
        let sent = promise ?? context.eventLoop.makePromise()
        sent.futureResult.assumeIsolated().whenComplete { _ in self.responseSent(context: context) }
        context.write(data, promise: sent)
    }

    /// A response has reached the socket: with no request in hand, the client has
    /// `header_timeout` to send the next head. (Timed from here, not from the request, so a
    /// download longer than the timeout is never cut off.)
    private func responseSent(context: ChannelHandlerContext) {
        guard !closing, outstanding == 0, pending == nil, queue.isEmpty else { return }
        arm(context: context)
    }

    private func arm(context: ChannelHandlerContext) {
        timer?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: headerTimeout) {
            bound.value.close(promise: nil)
        }
    }
}

/// One HTTP/1.x connection: reads requests in order (pipelining), answers each through the
/// router, writes the access log line, keeps the connection open as HTTP/1.1 and 1.0 say.
struct HTTPConnection: Sendable {
    let settings: HTTPSettings
    let responder: @Sendable (Request, any Channel) async -> Response
    let accessLog: AccessLog
    let fastPath: StaticFastPath?
    /// The fast handler's answers, per event loop (nil: no fast handler, e.g. the file cache off).
    var fastAnswers: FastAnswersByLoop? = nil
    /// Behind a TLS handler (HTTPS's HTTP/1.1): bodies as bytes, never file regions.
    var secure = false

    func setup(_ channel: any Channel, logger: Logger) -> EventLoopFuture<ConnectionTask> {
        channel.eventLoop.makeCompletedFuture {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderListSize = settings.maxHeaderBytes
            limits.maxHeaderFieldSize = settings.maxHeaderBytes
            let sync = channel.pipeline.syncOperations
            let lines = NIOLockedValueBox<[RequestLine]>([])
            let gate = HTTPInputGate()
            let front = HTTP1FrontHandler(
                lines: lines, headerTimeout: .seconds(clamping: settings.headerTimeout),
                fastPath: fastPath, accessLog: accessLog, gate: gate, armAtStart: fastAnswers == nil, secure: secure)
            // First the fast handler, which answers static files until a request needs more;
            // then the full pipeline it hands the connection to.
            if let fastAnswers {
                try sync.addHandler(HTTPFastHandler(settings: settings, accessLog: accessLog, answers: fastAnswers, front: front, secure: secure))
            }
            // In front of the decoder that configureHTTPServerPipeline adds.
            try sync.addHandler(gate)
            try sync.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false,
                withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: limits)
            gate.front = front
            try sync.addHandler(front)
            try sync.addHandler(HTTP1ToHTTPServerCodec(secure: secure))
            let async = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            return ConnectionTask { await serve(async, lines: lines, logger: logger) }
        }
    }

    /// The answer to a request past the service's limits (413 past `max_body_bytes`, 414 past
    /// `max_uri_bytes`), or nil. The same over HTTP/1.x, TLS and HTTP/2.
    static func refusal(_ head: HTTPRequest, bodyTooLarge: Bool, settings: HTTPSettings) -> Response? {
        if bodyTooLarge || (head.headerFields[.contentLength].flatMap(Int.init) ?? 0) > settings.maxBodyBytes {
            return HTTPErrors.page(.contentTooLarge, "The request body is larger than \(settings.maxBodyBytes) bytes.")
        }
        if (head.path ?? "").utf8.count > settings.maxURIBytes {
            return HTTPErrors.page(.uriTooLong, "The request target is longer than \(settings.maxURIBytes) bytes.")
        }
        // HTTP/1's decoder refuses a larger head before this (431 from the parser's error);
        // HTTP/2's HPACK decoder takes up to the list size the server advertised.
        var headBytes = 0
        for field in head.headerFields {
            headBytes += field.name.rawName.utf8.count + field.value.utf8.count + 4
        }
        if headBytes > settings.maxHeaderBytes {
            return HTTPErrors.page(.requestHeaderFieldsTooLarge, "The request head is larger than \(settings.maxHeaderBytes) bytes.")
        }
        return nil
    }

    /// Reads a request's body up to its end, counting it; true when it went past
    /// `max_body_bytes` (then the rest is left unread). Over HTTP/1.x and HTTP/2 alike.
    static func readBody(_ parts: inout NIOAsyncChannelInboundStream<HTTPRequestPart>.AsyncIterator, settings: HTTPSettings) async throws -> Bool {
        var bodyBytes = 0
        while let part = try await parts.next() {
            switch part {
            case .body(let buffer):
                bodyBytes += buffer.readableBytes
                if bodyBytes > settings.maxBodyBytes { return true }
            case .end, .head:
                return false
            }
        }
        return false
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, lines: NIOLockedValueBox<[RequestLine]>, logger: Logger) async {
        let channel = connection.channel
        let peer = channel.remoteAddress
        let events = ConnectionEvents.of(channel)
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                let writer = outbound
                do {
                    while let part = try await iterator.next() {
                        guard case .head(let head) = part else { continue }
                        let line = lines.withLockedValue { $0.isEmpty ? RequestLine(version: .http1_1, keepAlive: true) : $0.removeFirst() }
                        // Read (and bound) the body before answering: static files take none.
                        var tooLarge = try await Self.readBody(&iterator, settings: settings)
                        let started = NIODeadline.now()
                        var response: Response
                        if let refused = Self.refusal(head, bodyTooLarge: tooLarge, settings: settings) {
                            response = refused
                            tooLarge = tooLarge || refused.status == .contentTooLarge
                        } else {
                            response = await responder(Request(head: head, body: RequestBody(buffer: ByteBuffer())), channel)
                        }
                        let keepAlive = line.keepAlive && !tooLarge && head.headerFields[.connection]?.lowercased() != "close"
                        if !keepAlive { response.headers[.connection] = "close" } else if line.version == .http1_0 { response.headers[.connection] = "keep-alive" }
                        let sent = response.headers[.contentLength].flatMap(Int.init) ?? 0
                        try await ResponseWriter(outbound: writer).write(response)
                        accessLog.record(peer: peer, head: head, version: line.version, status: response.status.code,
                                         bytes: head.method == .head ? 0 : sent, started: started, events: events)
                        if !keepAlive { break }
                    }
                } catch let error as HTTPParserError {
                    // A malformed request: answer once, then close (the parser cannot resync).
                    let response: Response
                    switch error {
                    case .headerOverflow: response = HTTPErrors.page(.requestHeaderFieldsTooLarge, "The request head is larger than \(settings.maxHeaderBytes) bytes.")
                    default: response = HTTPErrors.page(.badRequest, "Malformed request: \(error).")
                    }
                    var closing = response
                    closing.headers[.connection] = "close"
                    try? await ResponseWriter(outbound: writer).write(closing)
                    accessLog.recordMalformed(peer: peer, status: response.status.code, events: events, reason: "\(error)")
                }
                outbound.finish()
                try? await channel.closeFuture.get()
            }
        } catch {
            logger.trace("http connection ended", metadata: ["error": "\(error)"])
        }
    }
}

extension ResponseWriter {
    /// Writes a whole response (head and body).
    consuming func write(_ response: Response) async throws {
        try await self.write(response: response.head, body: response.body)
    }
}
