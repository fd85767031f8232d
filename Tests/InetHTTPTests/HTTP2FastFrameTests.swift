import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import XCTest
@testable import InetCore
@testable import InetHTTP

/// The HTTP/2 fast frame handler on an EmbeddedChannel: HEADERS frames in, the frames it
/// answers with out, and what it passes on to the stream multiplexer behind it.
final class HTTP2FastFrameTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var passed: PassedFrames!

    final class PassedFrames: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTP2Frame
        var frames: [HTTP2Frame] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            frames.append(unwrapInboundIn(data))
        }
    }

    override func setUpWithError() throws {
        let base = NSTemporaryDirectory() + "inetkit-h2fast-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try "hello, world\n".write(toFile: base + "/hello.txt", atomically: true, encoding: .utf8)
        try Data(repeating: 0x61, count: 100_000).write(to: URL(fileURLWithPath: base + "/big.bin"))
        let root = SitePath.realPath(base)!
        let fastPath = StaticFastPath(root: SiteRoot(root), statusPath: "/_inetkit", cache: FileCache(maximumBytes: 1 << 20, maximumFileBytes: 64 << 10))
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        channel = EmbeddedChannel()
        passed = PassedFrames()
        try channel.pipeline.syncOperations.addHandler(HTTP2FastFrameHandler(answers: FastAnswersByLoop(fastPath: fastPath), accessLog: AccessLog(logger: logger),
                                                                             maximumTarget: 256, maximumHead: 1024))
        try channel.pipeline.syncOperations.addHandler(passed)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
    }

    override func tearDown() {
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    private func request(_ stream: Int, _ path: String, method: String = "GET", extra: [(String, String)] = [], endStream: Bool = true) throws {
        var headers = HPACKHeaders([(":method", method), (":scheme", "https"), (":authority", "localhost"), (":path", path)])
        for (name, value) in extra { headers.add(name: name, value: value) }
        try channel.writeInbound(HTTP2Frame(streamID: HTTP2StreamID(stream), payload: .headers(.init(headers: headers, endStream: endStream))))
    }

    private func answered() throws -> [HTTP2Frame] {
        channel.pipeline.fireChannelReadComplete()
        var frames: [HTTP2Frame] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) { frames.append(frame) }
        return frames
    }

    func testACachedFileIsAnsweredFromTheFrames() throws {
        try request(1, "/hello.txt?x=1")
        let frames = try answered()
        XCTAssertEqual(frames.count, 2)
        guard case .headers(let head) = frames[0].payload, case .data(let data) = frames[1].payload else { return XCTFail("\(frames)") }
        XCTAssertEqual(frames[0].streamID, 1)
        XCTAssertEqual(head.headers.first(name: ":status"), "200")
        XCTAssertEqual(head.headers.first(name: "content-length"), "13")
        XCTAssertEqual(head.headers.first(name: "content-type"), "text/plain")
        XCTAssertNotNil(head.headers.first(name: "date"))
        XCTAssertFalse(head.endStream)
        XCTAssertTrue(data.endStream)
        guard case .byteBuffer(let body) = data.data else { return XCTFail("a file region under TLS") }
        XCTAssertEqual(String(buffer: body), "hello, world\n")
        XCTAssertTrue(passed.frames.isEmpty)

        // HEAD: the fields, no body; If-None-Match with the ETag: 304.
        try request(3, "/hello.txt", method: "HEAD")
        let headOnly = try answered()
        XCTAssertEqual(headOnly.count, 1)
        guard case .headers(let fields) = headOnly[0].payload else { return XCTFail() }
        XCTAssertTrue(fields.endStream)
        XCTAssertEqual(fields.headers.first(name: "content-length"), "13")
        let eTag = try XCTUnwrap(fields.headers.first(name: "etag"))
        try request(5, "/hello.txt", extra: [("if-none-match", eTag)])
        let notModified = try answered()
        guard notModified.count == 1, case .headers(let status) = notModified[0].payload else { return XCTFail("\(notModified)") }
        XCTAssertEqual(status.headers.first(name: ":status"), "304")
        XCTAssertTrue(status.endStream)
    }

    func testWhatTheFullServerDecidesIsPassedOnUntouched() throws {
        let cases: [(String, String, [(String, String)], Bool)] = [
            ("/big.bin", "GET", [], true),                        // past the cache: streamed by the full server
            ("/hello.txt", "GET", [("range", "bytes=0-3")], true), // a range
            ("/hello.txt", "POST", [], true),                     // another method
            ("/hello.txt", "GET", [], false),                     // a body follows
            ("/missing", "GET", [], true),                        // 404 from the site
            ("/_inetkit/status.json", "GET", [], true),           // the host's pages
            ("/" + String(repeating: "a", count: 300), "GET", [], true),          // past max_uri_bytes: 414
            ("/hello.txt", "GET", [("x-big", String(repeating: "b", count: 2000))], true), // past max_header_bytes: 431
        ]
        for (index, (path, method, extra, end)) in cases.enumerated() {
            try request(2 * index + 1, path, method: method, extra: extra, endStream: end)
        }
        XCTAssertTrue(try answered().isEmpty)
        XCTAssertEqual(passed.frames.map { Int($0.streamID) }, Array(stride(from: 1, through: 2 * cases.count - 1, by: 2)))
    }

    func testFramesWaitWhileTheOutputDoes() throws {
        channel.isWritable = false
        try request(1, "/hello.txt")
        try request(3, "/missing")
        XCTAssertTrue(try answered().isEmpty, "nothing is answered while the channel cannot take it")
        XCTAssertTrue(passed.frames.isEmpty, "nor passed on: the frames keep their order")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(try answered().count, 2)
        XCTAssertEqual(passed.frames.map { Int($0.streamID) }, [3])
    }
}

/// HTTP/2's idle timeout closes a connection only while no stream is open.
final class HTTP2IdleCloserTests: XCTestCase {
    func testAnOpenStreamKeepsTheConnection() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2IdleCloser())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        channel.pipeline.fireUserInboundEventTriggered(NIOHTTP2StreamCreatedEvent(streamID: 1, localInitialWindowSize: nil, remoteInitialWindowSize: nil))
        channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.all)
        XCTAssertTrue(channel.isActive, "a request in progress (a long poll) keeps its connection")
        channel.pipeline.fireUserInboundEventTriggered(StreamClosedEvent(streamID: 1, reason: nil))
        channel.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.all)
        XCTAssertFalse(channel.isActive, "idle with no stream open: closed")
    }
}
