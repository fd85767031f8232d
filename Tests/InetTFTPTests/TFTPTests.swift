import InetCore
import NIOCore
import XCTest

@testable import InetTFTP

final class TFTPTests: XCTestCase {
    func testPacketsRoundTrip() throws {
        let packets: [TFTPPacket] = [
            .readRequest(file: Array("boot/pxelinux.0".utf8), mode: "octet", options: [TFTPOption(name: "blksize", value: "1428"), TFTPOption(name: "tsize", value: "0")]),
            .writeRequest(file: Array("up.bin".utf8), mode: "netascii", options: []),
            .data(block: 65_535, payload: [1, 2, 3]),
            .data(block: 0, payload: []),
            .ack(block: 7),
            .error(.fileNotFound, message: "file not found"),
            .optionAck([TFTPOption(name: "windowsize", value: "16")]),
        ]
        for packet in packets {
            XCTAssertEqual(try TFTPPacket.decode(packet.encode()), packet)
        }
        // tftp-hpa's RRQ, byte for byte; modes and option names are case-insensitive.
        XCTAssertEqual(try TFTPPacket.decode([0, 1] + Array("f".utf8) + [0] + Array("OCTET".utf8) + [0] + Array("BLKSIZE".utf8) + [0] + Array("512".utf8) + [0]),
                       .readRequest(file: [0x66], mode: "octet", options: [TFTPOption(name: "blksize", value: "512")]))
    }

    func testMalformedPackets() {
        XCTAssertThrowsError(try TFTPPacket.decode([0, 1])) { XCTAssertEqual($0 as? TFTPPacket.DecodeError, .short) }
        XCTAssertThrowsError(try TFTPPacket.decode([0, 9, 0, 0])) { XCTAssertEqual($0 as? TFTPPacket.DecodeError, .unknownOpcode(9)) }
        XCTAssertThrowsError(try TFTPPacket.decode([0, 1] + Array("file".utf8) + [0] + Array("octet".utf8)), "no final NUL")
        XCTAssertThrowsError(try TFTPPacket.decode([0, 1] + Array("file".utf8) + [0]), "no mode")
        XCTAssertThrowsError(try TFTPPacket.decode([0, 1] + Array("f".utf8) + [0] + Array("octet".utf8) + [0] + Array("blksize".utf8) + [0]), "an option without a value")
        var many: [UInt8] = [0, 1, 0x66, 0] + Array("octet".utf8) + [0]
        for index in 0..<40 { many += Array("o\(index)".utf8) + [0, 0x31, 0] }
        XCTAssertThrowsError(try TFTPPacket.decode(many))
        XCTAssertThrowsError(try TFTPPacket.decode([0, 1] + [UInt8](repeating: 0x61, count: 600) + [0] + Array("octet".utf8) + [0]))
        // Options that are not UTF-8 are ignored (re-encoding them would change their bytes).
        XCTAssertEqual(try TFTPPacket.decode([0, 2, 0] + Array("octet".utf8) + [0, 0xff, 0xfe, 0, 0x31, 0] + Array("tsize".utf8) + [0, 0x35, 0]),
                       .writeRequest(file: [], mode: "octet", options: [TFTPOption(name: "tsize", value: "5")]))
        XCTAssertThrowsError(try TFTPPacket.decode([0, 1, 0x66, 0, 0xff, 0]), "a mode that is not text")
    }

    func testOptionNegotiation() {
        let asked = [TFTPOption(name: "blksize", value: "100000"), TFTPOption(name: "tsize", value: "0"), TFTPOption(name: "windowsize", value: "500"),
                     TFTPOption(name: "timeout", value: "3"), TFTPOption(name: "multicast", value: ""), TFTPOption(name: "blksize", value: "8")]
        let (granted, oack) = TFTPOptions.negotiate(asked, write: false, fileSize: 1234, maximumBlockSize: 65_464, maximumWindowSize: 64)
        XCTAssertEqual(granted.blockSize, 65_464)
        XCTAssertEqual(granted.windowSize, 64)
        XCTAssertEqual(granted.timeout, 3)
        XCTAssertEqual(granted.transferSize, 1234)
        XCTAssertEqual(oack?.map(\.name), ["blksize", "tsize", "windowsize", "timeout"], "unknown options are left out, repeats ignored")
        XCTAssertNil(TFTPOptions.negotiate([TFTPOption(name: "blksize", value: "7"), TFTPOption(name: "timeout", value: "0")], write: false, fileSize: 1,
                                           maximumBlockSize: 512, maximumWindowSize: 1).1, "out-of-range values are refused: no OACK")
        XCTAssertEqual(TFTPOptions.negotiate([TFTPOption(name: "tsize", value: "99")], write: true, fileSize: nil, maximumBlockSize: 512, maximumWindowSize: 1).0.transferSize, 99)
        XCTAssertNil(TFTPOptions.negotiate([TFTPOption(name: "blksize", value: "99999999999999999999")], write: false, fileSize: 1, maximumBlockSize: 512, maximumWindowSize: 1).1)
    }

    func testSendWindowNeverAnswersADuplicateAck() {
        var window = TFTPSendWindow(size: 512 * 3, blockSize: 512, windowSize: 1)
        XCTAssertEqual(window.lastBlock, 4, "a size that is a multiple of the block ends with an empty block")
        XCTAssertEqual(window.window(), 1...1)
        XCTAssertEqual(window.acknowledge(1), .advanced)
        XCTAssertEqual(window.window(), 2...2)
        XCTAssertEqual(window.acknowledge(1), .ignored, "the Sorcerer's Apprentice: a duplicate ACK sends nothing")
        XCTAssertEqual(window.acknowledge(2), .advanced)
        XCTAssertEqual(window.acknowledge(2), .ignored)
        XCTAssertEqual(window.window(), 3...3)
        XCTAssertEqual(window.acknowledge(3), .advanced)
        XCTAssertEqual(window.window(), 4...4)
        XCTAssertEqual(window.range(of: 4).count, 0)
        XCTAssertEqual(window.acknowledge(4), .advanced)
        XCTAssertTrue(window.finished)
        XCTAssertNil(window.window())
    }

    func testWindowsAndPartialAcks() {
        var window = TFTPSendWindow(size: 10_000, blockSize: 1000, windowSize: 4)
        XCTAssertEqual(window.window(), 1...4)
        XCTAssertEqual(window.acknowledge(2), .advanced, "RFC 7440: an ACK inside the window")
        XCTAssertEqual(window.window(), 3...6, "the window restarts after the acknowledged block")
        XCTAssertEqual(window.acknowledge(9), .ignored, "not sent yet")
        XCTAssertEqual(window.acknowledge(6), .advanced)
        XCTAssertEqual(window.window(), 7...10)
        XCTAssertEqual(window.acknowledge(10), .advanced)
        XCTAssertEqual(window.window(), 11...11)
        XCTAssertEqual(window.acknowledge(11), .advanced)
        XCTAssertTrue(window.finished)
    }

    func testBlockNumbersRollOver() {
        // 70 000 blocks of 8 bytes: block 65 536 is 0 on the wire.
        var sender = TFTPSendWindow(size: 8 * 70_000 + 3, blockSize: 8, windowSize: 64)
        var receiver = TFTPReceiveWindow(blockSize: 8, windowSize: 64)
        var acks = 0
        while let range = sender.window() {
            var ack: UInt16?
            for block in range {
                let count = sender.range(of: block).count
                if case .accept(_, true) = receiver.data(TFTPSendWindow.wire(block), count: count) { ack = receiver.ackNumber }
            }
            guard let ack else { return XCTFail("no ACK for \(range)") }
            XCTAssertEqual(sender.acknowledge(ack), .advanced)
            acks += 1
        }
        XCTAssertTrue(sender.finished && receiver.finished)
        XCTAssertEqual(receiver.received, 70_001)
        XCTAssertEqual(acks, 70_001 / 64 + 1)
    }

    func testReceiverReacknowledgesOutOfOrderData() {
        var receiver = TFTPReceiveWindow(blockSize: 512, windowSize: 4)
        XCTAssertEqual(receiver.data(1, count: 512), .accept(block: 1, ack: false))
        XCTAssertEqual(receiver.data(3, count: 512), .reacknowledge)
        XCTAssertEqual(receiver.ackNumber, 1)
        XCTAssertEqual(receiver.data(1, count: 512), .reacknowledge, "a duplicate is not stored twice")
        XCTAssertEqual(receiver.data(2, count: 513), .reacknowledge, "larger than the block size")
        XCTAssertEqual(receiver.data(2, count: 100), .accept(block: 2, ack: true), "the last block is always acknowledged")
        XCTAssertTrue(receiver.finished)
    }

    func testNetASCII() {
        XCTAssertEqual(NetASCII.encode(Array("a\nb\rc".utf8)), Array("a\r\nb\r".utf8) + [0] + Array("c".utf8))
        XCTAssertEqual(NetASCII.decode(NetASCII.encode(Array("a\nb\rc\r\n\r".utf8))), Array("a\nb\rc\r\n\r".utf8))
    }

    func testPaths() throws {
        XCTAssertEqual(TFTPPath.relative(Array("boot//pxelinux.0".utf8)), "boot/pxelinux.0")
        for bad in ["/etc/passwd", "../etc/passwd", "a/../../b", "./x", "a\\b", "", "x\u{1b}y"] {
            XCTAssertNil(TFTPPath.relative(Array(bad.utf8)), bad)
        }
        XCTAssertNil(TFTPPath.relative([0x66, 0xff]), "not UTF-8")
        let root = NSTemporaryDirectory() + "inetkit-tftp-\(getpid())"
        try FileManager.default.createDirectory(atPath: root + "/pub", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root + "/pub/ok.txt", contents: Data("x".utf8))
        _ = FileManager.default.createFile(atPath: root + "/secret", contents: Data("s".utf8))
        unlink(root + "/pub/out")
        symlink(root + "/secret", root + "/pub/out")
        XCTAssertNotNil(TFTPPath.contained("ok.txt", in: root + "/pub"))
        XCTAssertNil(TFTPPath.contained("out", in: root + "/pub"), "a symlink out of the root")
    }

    func testRequestSocketAnswersOnlyErrors() {
        let service = TFTPService(settings: TFTPSettings(root: "/nonexistent", uploadDirectory: "/nonexistent"))
        let allocator = ByteBufferAllocator()
        func ask(_ bytes: [UInt8]) -> TFTPPacket? {
            service.reply(toDatagram: allocator.buffer(bytes: bytes), allocator: allocator).flatMap { try? TFTPPacket.decode(Array($0.readableBytesView)) }
        }
        if case .error(.illegalOperation, _)? = ask(TFTPPacket.ack(block: 1).encode()) {} else { XCTFail("an ACK to port 69") }
        XCTAssertNil(ask(TFTPPacket.error(.undefined, message: "x").encode()), "an error is never answered")
        if case .error(.illegalOperation, _)? = ask([0, 1, 0x66, 0] + Array("mail".utf8) + [0]) {} else { XCTFail("mail mode") }
        if case .error(.illegalOperation, _)? = ask([1, 2, 3]) {} else { XCTFail("garbage") }
    }
}
