import InetCore
@testable import InetSimple
import NIOCore
import NIOEmbedded
import XCTest

final class ServiceHandlerTests: XCTestCase {
    private func activeChannel(_ service: any InetService) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try service.configureTCPConnection(channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7)).wait()
        return channel
    }

    private func drainOutbound(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
        }
        return bytes
    }

    func testEchoReturnsEveryByteInOrder() throws {
        let channel = try activeChannel(EchoService())
        for chunk in ["hello ", "world", "\r\n", String(repeating: "x", count: 10_000)] {
            try channel.writeInbound(ByteBuffer(string: chunk))
        }
        channel.pipeline.fireChannelReadComplete()
        let echoed = try drainOutbound(channel)
        XCTAssertEqual(echoed, Array("hello world\r\n\(String(repeating: "x", count: 10_000))".utf8))
        XCTAssertTrue(channel.isActive, "echo keeps the connection until the client closes")
    }

    func testEchoClosesAfterClientHalfCloses() throws {
        let channel = try activeChannel(EchoService())
        try channel.writeInbound(ByteBuffer(string: "last words"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertEqual(try drainOutbound(channel), Array("last words".utf8))
        XCTAssertFalse(channel.isActive)
    }

    func testEchoUDPReturnsTheDatagram() {
        let payload = ByteBuffer(string: "ping")
        XCTAssertEqual(EchoService().reply(toDatagram: payload, allocator: ByteBufferAllocator()), payload)
    }

    func testDiscardNeverReplies() throws {
        let channel = try activeChannel(DiscardService())
        try channel.writeInbound(ByteBuffer(string: "into the void"))
        channel.pipeline.fireChannelReadComplete()
        XCTAssertEqual(try drainOutbound(channel), [])
        XCTAssertTrue(channel.isActive)
        XCTAssertNil(DiscardService().reply(toDatagram: ByteBuffer(string: "x"), allocator: ByteBufferAllocator()))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        XCTAssertFalse(channel.isActive)
    }

    func testDaytimeLineFollowsRFC867Form() {
        XCTAssertEqual(DaytimeService.line(secondsSince1970: 0), "Thursday, January 1, 1970 00:00:00-UTC\r\n")
        XCTAssertEqual(DaytimeService.line(secondsSince1970: 1_796_020_802), "Monday, November 30, 2026 06:40:02-UTC\r\n")
    }

    func testDaytimeTCPSendsOneLineAndCloses() throws {
        let channel = try activeChannel(DaytimeService(now: { 0 }))
        XCTAssertEqual(String(decoding: try drainOutbound(channel), as: UTF8.self), "Thursday, January 1, 1970 00:00:00-UTC\r\n")
        XCTAssertFalse(channel.isActive)
    }

    func testTimeIsSecondsSince1900BigEndian() throws {
        let channel = try activeChannel(TimeService(now: { 0 }))
        XCTAssertEqual(try drainOutbound(channel), [0x83, 0xAA, 0x7E, 0x80], "2208988800 = 0x83AA7E80 (RFC 868)")
        XCTAssertFalse(channel.isActive)
        var reply = TimeService(now: { 1_796_020_802 }).reply(toDatagram: ByteBuffer(), allocator: ByteBufferAllocator())!
        XCTAssertEqual(reply.readInteger(as: UInt32.self), UInt32(1_796_020_802 + 2_208_988_800), "fits 32 bits until 2036")
    }

    func testTimeDecodeHandles2036Wrap() {
        // 2040-01-01 is past the 32-bit wrap of 2036-02-07.
        let seconds2040 = 2_208_988_800
        let wrapped = UInt32(truncatingIfNeeded: seconds2040 + TimeService.epochOffset)
        XCTAssertEqual(TimeService.decode(wrapped, near: seconds2040), seconds2040)
        XCTAssertEqual(TimeService.decode(0x83AA_7E80, near: 100), 0)
    }

    func testQotdSendsAShortQuoteAndCloses() throws {
        let channel = try activeChannel(QotdService(quotes: ["one line\nsecond line"]))
        XCTAssertEqual(String(decoding: try drainOutbound(channel), as: UTF8.self), "one line\r\nsecond line\r\n")
        XCTAssertFalse(channel.isActive)
    }

    func testBuiltInQuotesFitRFC865() {
        for quote in QotdService(quotes: QotdService.builtIn).quotes {
            XCTAssertLessThanOrEqual(quote.utf8.count, 512)
            XCTAssertTrue(quote.utf8.allSatisfy { (32...126).contains($0) || $0 == 13 || $0 == 10 }, quote)
        }
    }

    func testQotdFileFormats() throws {
        XCTAssertEqual(try QotdService.parse("first\n%\nsecond\nline two\n%\n"), ["first", "second\nline two"])
        XCTAssertEqual(try QotdService.parse("a\n\n\nb\n"), ["a", "b"])
        XCTAssertThrowsError(try QotdService.parse("\n%\n\n")) { XCTAssertEqual(($0 as? QotdService.ParseError)?.line, 1) }
        let long = String(repeating: "y", count: 600)
        XCTAssertThrowsError(try QotdService.parse("ok\n%\n\(long)\n")) { error in
            XCTAssertEqual((error as? QotdService.ParseError)?.line, 3)
        }
    }

    func testChargenLinesFollowRFC864() {
        XCTAssertEqual(String(decoding: ChargenService.line(0), as: UTF8.self),
                       ##" !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefg"## + "\r\n")
        XCTAssertEqual(String(decoding: ChargenService.line(1), as: UTF8.self),
                       ##"!"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\]^_`abcdefgh"## + "\r\n")
        XCTAssertEqual(ChargenService.pattern.count, 95 * 74)
        XCTAssertEqual(Array(ChargenService.line(95)), ChargenService.line(0), "the pattern repeats after 95 lines")
    }

    func testChargenTCPStreamsValidPatternAndStopsWhenNotWritable() throws {
        let channel = EmbeddedChannel()
        channel.isWritable = false
        try ChargenService().configureTCPConnection(channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 19)).wait()
        XCTAssertEqual(try drainOutbound(channel), [], "nothing is written while the socket cannot take it")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        let first = try drainOutbound(channel)
        XCTAssertGreaterThan(first.count, 7_000)
        var checker = ChargenChecker()
        try checker.check(ByteBuffer(bytes: first), upTo: first.count)
        XCTAssertEqual(checker.received, first.count)
        XCTAssertEqual(Array(first.prefix(74)), ChargenService.line(0))
        channel.isWritable = false
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    func testChargenUDPDatagramIsAtMost512PrintableCharacters() {
        for _ in 0..<200 {
            let reply = ChargenService().reply(toDatagram: ByteBuffer(), allocator: ByteBufferAllocator())!
            XCTAssertLessThanOrEqual(reply.readableBytes, 512)
            XCTAssertTrue(reply.readableBytesView.allSatisfy { (32...126).contains($0) || $0 == 13 || $0 == 10 })
        }
    }

    func testChargenCheckerRejectsBrokenStreams() {
        var broken = ChargenService.line(0) + ChargenService.line(2)
        var checker = ChargenChecker()
        XCTAssertThrowsError(try checker.check(ByteBuffer(bytes: broken), upTo: broken.count))
        broken = Array(ChargenService.line(0).dropLast(2)) + [10]
        checker = ChargenChecker()
        XCTAssertThrowsError(try checker.check(ByteBuffer(bytes: broken), upTo: broken.count))
    }
}
