import Foundation
@testable import InetHTTP
import InetCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

final class HTTPHeadScannerTests: XCTestCase {
    private func scan(_ text: String, maximumTarget: Int = 8192, maximumHead: Int = 32768) -> HTTPHeadScanner.Result {
        Array(text.utf8).withUnsafeBytes { HTTPHeadScanner.scan($0, maximumTarget: maximumTarget, maximumHead: maximumHead) }
    }

    private func head(_ text: String) throws -> HTTPHeadScanner.Head {
        guard case .complete(let head) = scan(text) else { throw XCTSkip("not complete: \(scan(text))") }
        return head
    }

    func testPlainGetsAndHeadsAreTaken() throws {
        let request = "GET /a/b.html?x=1&y HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8\r\nIf-None-Match: W/\"abc\"\r\n\r\nGET /next"
        let parsed = try head(request)
        let bytes = Array(request.utf8)
        XCTAssertFalse(parsed.isHead)
        XCTAssertEqual(String(decoding: bytes[parsed.target], as: UTF8.self), "/a/b.html?x=1&y")
        XCTAssertEqual(String(decoding: bytes[parsed.path], as: UTF8.self), "/a/b.html")
        XCTAssertEqual(String(decoding: bytes[parsed.ifNoneMatch!], as: UTF8.self), "W/\"abc\"")
        XCTAssertEqual(String(decoding: bytes[parsed.userAgent!], as: UTF8.self), "curl/8")
        XCTAssertEqual(parsed.length, request.utf8.count - "GET /next".utf8.count)
        XCTAssertTrue(parsed.keepAlive)
        XCTAssertTrue(try head("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n").isHead)
    }

    func testKeepAliveFollowsTheVersionAndConnectionOptions() throws {
        XCTAssertFalse(try head("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keepAlive)
        XCTAssertFalse(try head("GET / HTTP/1.1\r\nHost: h\r\nconnection: Keep-Alive, CLOSE\r\n\r\n").keepAlive)
        XCTAssertFalse(try head("GET / HTTP/1.0\r\n\r\n").keepAlive)
        XCTAssertTrue(try head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive)
        XCTAssertTrue(try head("GET / HTTP/1.0\r\n\r\n").http10)
    }

    func testEveryPrefixOfAHeadIsIncomplete() {
        let request = "GET /index.html HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n"
        for length in 0..<request.utf8.count {
            let prefix = String(decoding: Array(request.utf8.prefix(length)), as: UTF8.self)
            XCTAssertEqual(scan(prefix), .incomplete, "\(prefix.debugDescription)")
        }
    }

    func testWhatTheFullServerMustDecideIsHandedOver() {
        let refused = [
            "POST / HTTP/1.1\r\nHost: h\r\n\r\n",
            "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
            "get / HTTP/1.1\r\nHost: h\r\n\r\n",
            "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.1\nHost: h\n\n",
            "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{01}b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
            "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            "GET /a\u{7F} HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
            "GET /é HTTP/1.1\r\nHost: h\r\n\r\n",
        ]
        for request in refused {
            XCTAssertEqual(scan(request), .notFast, request.debugDescription)
        }
        XCTAssertEqual(scan("GET /\(String(repeating: "a", count: 300)) HTTP/1.1\r\nHost: h\r\n\r\n", maximumTarget: 256), .notFast)
        XCTAssertEqual(scan("GET / HTTP/1.1\r\nHost: h\r\nX: \(String(repeating: "a", count: 2000))", maximumHead: 1024), .notFast,
                       "a head past max_header_bytes is not waited for")
        let many = "GET / HTTP/1.1\r\nHost: h\r\n" + (0..<101).map { "X\($0): y\r\n" }.joined() + "\r\n"
        XCTAssertEqual(scan(many), .notFast)
        XCTAssertEqual(scan("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").isComplete, true)
    }
}

extension HTTPHeadScanner.Result {
    var isComplete: Bool {
        if case .complete = self { return true }
        return false
    }
}

/// The fast handler on an EmbeddedChannel: what it answers itself, what it hands over.
final class HTTPFastHandlerTests: XCTestCase {
    private var root = ""
    private var channel: EmbeddedChannel!
    private var forwarded: ForwardedBytes!

    final class ForwardedBytes: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        var bytes: [UInt8] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            bytes += Array(unwrapInboundIn(data).readableBytesView)
        }
    }

    override func setUpWithError() throws {
        let base = NSTemporaryDirectory() + "inetkit-fast-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/docs", withIntermediateDirectories: true)
        try "hello, world\n".write(toFile: base + "/hello.txt", atomically: true, encoding: .utf8)
        try "<p>index</p>".write(toFile: base + "/index.html", atomically: true, encoding: .utf8)
        try Data(repeating: 0x61, count: 300_000).write(to: URL(fileURLWithPath: base + "/big.bin"))
        root = SitePath.realPath(base)!
        var options = try HTTPSettings(options: ServiceOptions(reader: nil, dataDirectory: base, configDirectory: base))
        options.root = root
        options.headerTimeout = 5
        let fastPath = StaticFastPath(root: SiteRoot(root), statusPath: "/_inetkit", cache: FileCache(maximumBytes: 1 << 20, maximumFileBytes: 64 << 10))
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let front = HTTP1FrontHandler(lines: NIOLockedValueBox([]), headerTimeout: .seconds(5), fastPath: nil, accessLog: AccessLog(logger: logger),
                                      gate: HTTPInputGate(), armAtStart: false)
        channel = EmbeddedChannel()
        forwarded = ForwardedBytes()
        try channel.pipeline.syncOperations.addHandler(HTTPFastHandler(settings: options, accessLog: AccessLog(logger: logger),
                                                                       answers: FastAnswersByLoop(fastPath: fastPath), front: front))
        try channel.pipeline.syncOperations.addHandler(forwarded)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
    }

    override func tearDown() {
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    private func send(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
        channel.pipeline.fireChannelReadComplete()
    }

    private func output() throws -> String {
        var text = ""
        while let data = try channel.readOutbound(as: IOData.self) {
            switch data {
            case .byteBuffer(let buffer): text += String(buffer: buffer)
            case .fileRegion(let region): text += "<file \(region.readableBytes)>"
            }
        }
        return text
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        try send("GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\nHEAD /hello.txt?x HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        let text = try output()
        let responses = text.components(separatedBy: "HTTP/1.1 200 OK\r\n").dropFirst()
        XCTAssertEqual(responses.count, 3, text)
        let first = Array(responses)[0]
        XCTAssertTrue(first.contains("Content-Length: 13\r\n") && first.contains("Content-Type: text/plain") && first.contains("\r\nDate: "), first)
        XCTAssertTrue(first.hasSuffix("\r\n\r\nhello, world\n"), first)
        XCTAssertTrue(Array(responses)[1].hasSuffix("\r\n\r\n"), "HEAD has no body")
        XCTAssertTrue(Array(responses)[1].contains("Content-Length: 13\r\n"))
        XCTAssertTrue(Array(responses)[2].hasSuffix("<p>index</p>"), "a folder's index.html")
        XCTAssertTrue(forwarded.bytes.isEmpty)
        XCTAssertTrue(channel.isActive)
    }

    func testAMatchingETagIsNotModifiedAndHTTP10ClosesUnlessAskedNotTo() throws {
        try send("GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n")
        let first = try output()
        let eTag = try XCTUnwrap(first.components(separatedBy: "\r\n").first { $0.hasPrefix("ETag: ") }).dropFirst(6)
        try send("GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\nIf-None-Match: \"other\", \(eTag)\r\n\r\n")
        let second = try output()
        XCTAssertTrue(second.hasPrefix("HTTP/1.1 304 Not Modified\r\n") && second.contains("Connection: keep-alive\r\n") && second.hasSuffix("\r\n\r\n"), second)
        try send("GET /hello.txt HTTP/1.0\r\n\r\n")
        let third = try output()
        XCTAssertTrue(third.contains("Connection: close\r\n") && third.hasSuffix("hello, world\n"), third)
        XCTAssertFalse(channel.isActive, "closed once the response was written")
    }

    func testLargeFilesGoBySendfile() throws {
        try send("GET /big.bin HTTP/1.1\r\nHost: h\r\n\r\n")
        let text = try output()
        XCTAssertTrue(text.contains("Content-Length: 300000\r\n") && text.hasSuffix("\r\n\r\n<file 300000>"), text)
    }

    func testTheFirstRequestItDoesNotTakeAndAllAfterGoToTheFullPipelineUnchanged() throws {
        try send("GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\nGET /missing HTTP/1.1\r\nHost: h\r\n\r\nGET /hel")
        XCTAssertTrue(try output().hasSuffix("hello, world\n"))
        XCTAssertEqual(String(decoding: forwarded.bytes, as: UTF8.self), "GET /missing HTTP/1.1\r\nHost: h\r\n\r\nGET /hel")
        try send("lo.txt HTTP/1.1\r\nHost: h\r\n\r\n")
        XCTAssertEqual(try output(), "", "after the hand-over everything is the full pipeline's")
        XCTAssertTrue(String(decoding: forwarded.bytes, as: UTF8.self).hasSuffix("GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n"))
        // A POST, a status page and a malformed head are handed over too.
        for request in ["POST /hello.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", "GET /_inetkit/status.json HTTP/1.1\r\nHost: h\r\n\r\n", "GET / HTTP/1.1\r\n\r\n"] {
            try setUpWithError()
            try send(request)
            XCTAssertEqual(String(decoding: forwarded.bytes, as: UTF8.self), request)
            XCTAssertEqual(try output(), "")
        }
    }

    func testNothingIsParsedWhileTheClientDoesNotReadItsResponses() throws {
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        try send("GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n")
        XCTAssertEqual(try output(), "")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(try output().components(separatedBy: "hello, world\n").count, 3)
    }

    func testAClientSlowToSendAHeadIsClosed() throws {
        try send("GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n")
        _ = try output()
        try send("GET /hello.txt HTTP/1.1\r\nHo")
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        XCTAssertFalse(channel.isActive)
    }
}

/// The fast handler's access line is the line the full server's access log writes.
final class AccessLineTests: XCTestCase {
    private func captured(_ body: (LogSink) -> Void) throws -> String {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let sink = LogSink(descriptor: fds[1])
        body(sink)
        sink.flush()
        close(fds[1])
        var bytes = [UInt8](repeating: 0, count: 65_536)
        let count = read(fds[0], &bytes, bytes.count)
        close(fds[0])
        return String(decoding: bytes.prefix(max(0, count)), as: UTF8.self)
    }

    /// The line without its time and duration (they differ between two calls).
    private func stable(_ line: String) -> String {
        line.replacingOccurrences(of: #"^\S+ |^\{"time":"[^"]*","#, with: "", options: .regularExpression)
            .replacingOccurrences(of: #"\[[^\]]*\]"#, with: "[T]", options: .regularExpression)
            .replacingOccurrences(of: #"duration_ms=?"?:?"?[0-9.]+"?"#, with: "D", options: .regularExpression)
    }

    func testBothWritersWriteTheSameLineInBothFormats() throws {
        var logger = Logger(label: "test")
        logger.logLevel = .info
        let peer = try SocketAddress(ipAddress: "192.0.2.7", port: 40_001)
        let target = "/a b\"c\\d?x=<1>"
        let agent = "curl/8 \u{1}\u{7F}é"
        for format in [LogFormat.text, .json] {
            LogLine.format = format
            defer { LogLine.format = .text }
            let full = try captured { sink in
                var log = AccessLog(logger: logger)
                log.sink = sink
                log.record(peer: peer, method: "GET", target: target, version: .http1_1, referer: nil, agent: agent,
                           status: 200, bytes: 13, started: .now())
            }
            let fast = try captured { sink in
                Array(target.utf8).withUnsafeBytes { target in
                    Array(agent.utf8).withUnsafeBytes { agent in
                        AccessLine().write(peer: AccessLine.Peer(peer), isHead: false, target: target, http10: false, status: 200, bytes: 13,
                                           referer: nil, agent: agent, started: .now(), to: sink)
                    }
                }
            }
            // (The full server keeps non-ASCII text; the fast one writes its bytes as \xHH.)
            let escaped = format == .json ? #"\\xC3\\xA9"# : #"\xC3\xA9"#
            XCTAssertEqual(stable(fast), stable(full).replacingOccurrences(of: "é", with: escaped), format.rawValue)
            if format == .json {
                XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(fast.utf8)))
            } else {
                XCTAssertTrue(fast.contains(#" INFO 192.0.2.7 - - ["#) && fast.contains(#""GET /a b\x22c\x5Cd?x=<1> HTTP/1.1" 200 13 "-" "curl/8 \x1\x7F\xC3\xA9" duration_ms="#), fast)
                XCTAssertTrue(fast.hasSuffix(" peer=192.0.2.7:40001 service=http status=200\n"), fast)
            }
        }
    }
}

/// LogLine's bytes: the time as InetLogHandler writes it, numbers and durations written as digits.
final class LogLineTests: XCTestCase {
    func testTimeLevelNumbersAndDurationsInBothFormats() throws {
        for format in [LogFormat.text, .json] {
            LogLine.format = format
            defer { LogLine.format = .text }
            var fds: [Int32] = [0, 0]
            XCTAssertEqual(pipe(&fds), 0)
            let sink = LogSink(descriptor: fds[1])
            let before = InetLogHandler.timestamp()
            var line = LogLine(level: .info, message: "exchange")
            line.field("bytes_in", 1234)
            line.field("delta", -5)
            line.field("zero", 0)
            line.field("duration_ms", millisecondsSince: .now() - .milliseconds(12))
            line.field("outcome", "no reply")
            line.field("peer", address: try SocketAddress(ipAddress: "192.0.2.7", port: 40_001))
            line.field("peer6", address: try SocketAddress(ipAddress: "::1", port: 53))
            line.write(to: sink)
            let after = InetLogHandler.timestamp()
            sink.flush()
            close(fds[1])
            var bytes = [UInt8](repeating: 0, count: 4096)
            let count = read(fds[0], &bytes, bytes.count)
            close(fds[0])
            let text = String(decoding: bytes.prefix(max(0, count)), as: UTF8.self)
            let time = #"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)"#
            let pattern = format == .text
                ? "^\(time) INFO exchange bytes_in=1234 delta=-5 zero=0 duration_ms=12\\.[0-9] outcome=\"no reply\" peer=192.0.2.7:40001 peer6=\\[::1\\]:53\n$"
                : "^\\{\"time\":\"\(time)\",\"level\":\"info\",\"msg\":\"exchange\",\"bytes_in\":1234,\"delta\":-5,\"zero\":0,\"duration_ms\":12\\.[0-9],\"outcome\":\"no reply\",\"peer\":\"192.0.2.7:40001\",\"peer6\":\"\\[::1\\]:53\"\\}\n$"
            let match = try XCTUnwrap(text.range(of: pattern, options: .regularExpression), text)
            XCTAssertFalse(match.isEmpty)
            // The same clock and layout as the handler's: between its times before and after.
            let written = try XCTUnwrap(text.range(of: time, options: .regularExpression))
            let stamp = String(text[written])
            XCTAssertTrue(before <= stamp && stamp <= after, "\(before) <= \(stamp) <= \(after)")
        }
    }
}
