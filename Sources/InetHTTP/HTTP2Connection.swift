import Hummingbird
import HummingbirdCore
import HTTPTypes
import InetCore
import Logging
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/2 connection (ALPN "h2" inside TLS): NIO's HTTP/2 handler, then InetKit's fast
/// frame handler, then a stream multiplexer whose streams the full server answers.
///
/// The fast frame handler answers a plain GET or HEAD of a file in the memory cache from the
/// connection's own frames (HEADERS in, HEADERS and DATA out), with the same answers per event
/// loop as HTTP/1.1's fast handler: such a request costs no stream channel, no task and no trip
/// through the router. Anything else (a body, a range, a condition other than If-None-Match, a
/// folder, a status page, a file past the cache) is a stream of its own, answered by the site
/// with the same limits and replies as over HTTP/1.1 (414, 413, 431).
struct HTTP2Connection: Sendable {
    let settings: HTTPSettings
    let responder: @Sendable (Request, any Channel) async -> Response
    let accessLog: AccessLog
    let fastAnswers: FastAnswersByLoop?

    typealias Stream = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    /// Sets up the pipeline on a channel whose TLS handshake chose "h2"; the task serves its streams.
    func setup(_ channel: any Channel, logger: Logger) -> EventLoopFuture<ConnectionTask> {
        channel.eventLoop.makeCompletedFuture {
            let (streams, continuation) = AsyncStream<Stream>.makeStream()
            let sync = channel.pipeline.syncOperations
            var initial = nioDefaultSettings
            // Room past max_header_bytes, so a head a little too large gets its 431 like over
            // HTTP/1.1; a much larger one is a connection error (RFC 9113 10.5.1).
            initial.removeAll { $0.parameter == .maxHeaderListSize }
            initial.append(HTTP2Setting(parameter: .maxHeaderListSize, value: min(max(16_384, settings.maxHeaderBytes + 4096), 1 << 21)))
            try sync.addHandler(NIOHTTP2Handler(mode: .server, initialSettings: initial))
            // Closes a connection without an open stream and without traffic for header_timeout
            // (HTTP/2's idle timeout).
            let idle = TimeAmount.seconds(clamping: settings.headerTimeout)
            try sync.addHandler(IdleStateHandler(allTimeout: idle))
            try sync.addHandler(HTTP2IdleCloser())
            if let fastAnswers {
                try sync.addHandler(HTTP2FastFrameHandler(answers: fastAnswers, accessLog: accessLog, maximumTarget: settings.maxURIBytes,
                                                          maximumHead: settings.maxHeaderBytes))
            }
            let multiplexer = HTTP2StreamMultiplexer(mode: .server, channel: channel, inboundStreamInitializer: { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTPServerCodec())
                    continuation.yield(try Stream(wrappingChannelSynchronously: stream))
                }
            })
            try sync.addHandler(multiplexer)
            channel.closeFuture.whenComplete { _ in continuation.finish() }
            return ConnectionTask {
                await withDiscardingTaskGroup { group in
                    for await stream in streams {
                        group.addTask { await serve(stream, logger: logger) }
                    }
                }
            }
        }
    }

    /// One stream: its request (the body read and bounded), the site's answer, the access line.
    private func serve(_ stream: Stream, logger: Logger) async {
        let channel = stream.channel
        do {
            try await stream.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                guard case .head(let head) = try await parts.next() else { return }
                let tooLarge = try await HTTPConnection.readBody(&parts, settings: settings)
                let started = NIODeadline.now()
                let response: Response
                if let refused = HTTPConnection.refusal(head, bodyTooLarge: tooLarge, settings: settings) {
                    response = refused
                } else {
                    response = await responder(Request(head: head, body: RequestBody(buffer: ByteBuffer())), channel)
                }
                try await ResponseWriter(outbound: outbound).write(response)
                accessLog.record(peer: channel.parent?.remoteAddress ?? channel.remoteAddress, head: head, version: .init(major: 2, minor: 0),
                                 status: response.status.code,
                                 bytes: head.method == .head ? 0 : response.headers[.contentLength].flatMap(Int.init) ?? 0,
                                 started: started, events: ConnectionEvents.of(channel.parent ?? channel))
            }
        } catch {
            logger.trace("http/2 stream ended", metadata: ["error": "\(error)"])
        }
    }
}

/// Closes the connection on the idle event of the `IdleStateHandler` before it, when no stream
/// is open: a request being answered (a long poll, an event stream) keeps its connection.
final class HTTP2IdleCloser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame

    private var openStreams = 0

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is IdleStateHandler.IdleStateEvent:
            if openStreams == 0 { context.close(promise: nil) }
            return
        case is NIOHTTP2StreamCreatedEvent:
            openStreams += 1
        case is StreamClosedEvent:
            openStreams = max(0, openStreams - 1)
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Answers plain GETs and HEADs of cached files from the connection's HEADERS frames; every
/// other frame, and every other request, goes on to the stream multiplexer. While the channel is
/// not writable it takes no frame (they wait, in order, with what one read brought) and stops
/// reading, so a client that asks and never reads costs a socket buffer and one read's frames.
final class HTTP2FastFrameHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let answersByLoop: FastAnswersByLoop
    private let accessLog: AccessLog
    private let maximumTarget: Int
    /// Past this (counted as `HTTPConnection.refusal` counts), the full server answers 431.
    private let maximumHead: Int
    private var answers: FastAnswers?
    private var events: ConnectionEvents?
    private var needsFlush = false
    private var readHeld = false

    init(answers: FastAnswersByLoop, accessLog: AccessLog, maximumTarget: Int, maximumHead: Int) {
        self.maximumHead = maximumHead
        answersByLoop = answers
        self.accessLog = accessLog
        self.maximumTarget = maximumTarget
    }

    func handlerAdded(context: ChannelHandlerContext) {
        answers = answersByLoop.answers(on: context.eventLoop)
        events = ConnectionEvents.of(context.channel)
    }

    /// Frames read while the channel could not take more output, in order: taken once it can.
    private var waiting = CircularBuffer<HTTP2Frame>()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard waiting.isEmpty, context.channel.isWritable else {
            waiting.append(frame)
            return
        }
        take(frame, context: context)
    }

    private func take(_ frame: HTTP2Frame, context: ChannelHandlerContext) {
        if case .headers(let headers) = frame.payload, headers.endStream, answer(headers.headers, stream: frame.streamID, context: context) {
            return
        }
        context.fireChannelRead(wrapInboundOut(frame))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// Takes waiting frames while the channel can take their answers.
    private func drain(context: ChannelHandlerContext) {
        var took = false
        while context.channel.isWritable, let frame = waiting.popFirst() {
            take(frame, context: context)
            took = true
        }
        if took { channelReadComplete(context: context) }
    }

    func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable, waiting.isEmpty else {
            readHeld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            drain(context: context)
            if waiting.isEmpty, readHeld {
                readHeld = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Whether the request of these headers was answered here.
    private func answer(_ request: HPACKHeaders, stream: HTTP2StreamID, context: ChannelHandlerContext) -> Bool {
        guard let answers else { return false }
        var method: String?
        var target: String?
        var authority: String?
        var ifNoneMatch: String?
        var agent: String?
        var referer: String?
        var headBytes = 0
        for (name, value, _) in request {
            if name.utf8.first != UInt8(ascii: ":") { headBytes += name.utf8.count + value.utf8.count + 4 }
            switch name {
            case ":method": method = value
            case ":path": target = value
            case ":authority": authority = value
            case "if-none-match": ifNoneMatch = value
            case "user-agent": agent = value
            case "referer": referer = value
            case "range", "if-range", "if-modified-since", "content-length", "transfer-encoding": return false
            default: break
            }
        }
        guard let method, method == "GET" || method == "HEAD", let target, target.utf8.count <= maximumTarget,
              headBytes <= maximumHead else { return false }
        let started = NIODeadline.now()
        let now = Int(time(nil))
        var path = Substring(target)
        if let query = path.firstIndex(of: "?") { path = path[..<query] }
        let found = path.utf8.withContiguousStorageIfAvailable { answers.answer(path: UnsafeRawBufferPointer($0), now: now) }
            ?? Array(path.utf8).withUnsafeBytes { answers.answer(path: $0, now: now) }
        // Only cached bodies: under TLS a larger file is streamed by the full server.
        guard let found, case .cached(let body) = found.body else { return false }
        let notModified = ifNoneMatch.map { value in Array(value.utf8).withUnsafeBytes { found.matches(ifNoneMatch: $0) } } ?? false
        let sendsBody = method == "GET" && !notModified && body.readableBytes > 0
        var fields = HPACKHeaders()
        fields.reserveCapacity(found.http2Fields.count + 2)
        fields.add(name: ":status", value: notModified ? "304" : "200")
        for (name, value) in found.http2Fields { fields.add(name: name, value: value) }
        fields.add(name: "date", value: answers.dateValue(now: now))
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: fields, endStream: !sendsBody)))), promise: nil)
        if sendsBody {
            context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(body), endStream: true)))), promise: nil)
        }
        needsFlush = true
        let status = notModified ? 304 : 200
        let sent = sendsBody ? body.readableBytes : 0
        if events != nil || accessLog.logger.logLevel <= .info {
            accessLog.record(peer: context.channel.remoteAddress, method: method, target: target, version: .init(major: 2, minor: 0),
                             referer: referer, agent: agent, status: status, bytes: sent, started: started, events: events, host: authority)
        }
        return true
    }
}
