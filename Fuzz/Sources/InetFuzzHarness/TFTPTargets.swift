#if DEBUG
import InetCore
import NIOCore
@testable import InetTFTP

enum TFTPTargets {
    static let service = TFTPService(settings: TFTPSettings(root: "/nonexistent", uploadDirectory: "/nonexistent"))

    /// A TFTP packet: decode → encode → decode agrees; the request socket's answer is an ERROR
    /// or nothing; negotiated options stay inside the limits; and the same bytes read as a run of
    /// ACKs and DATA drive the two windows without a trap or a window past the file.
    static let packet = FuzzTarget(name: "tftp-packet", summary: "TFTP packets, option negotiation and the transfer windows", maximumLength: 4096) { bytes in
        if let packet = try? TFTPPacket.decode(bytes) {
            guard let again = try? TFTPPacket.decode(packet.encode()) else { return "an encoded packet does not decode: \(packet)" }
            switch (packet, again) {
            case (.error(let a, let m1), .error(let b, let m2)): guard a == b, m2.utf8.count <= m1.utf8.count else { return "error changed" }
            default: guard again == packet else { return "decode → encode → decode changed \(packet)" }
            }
            if case .readRequest(_, _, let options) = packet {
                let (granted, _) = TFTPOptions.negotiate(options, write: false, fileSize: 1000, maximumBlockSize: 1428, maximumWindowSize: 8)
                guard (8...1428).contains(granted.blockSize) || granted.blockSize == 512, (1...8).contains(granted.windowSize) else { return "options out of limits" }
            }
        }
        let allocator = ByteBufferAllocator()
        if let reply = service.reply(toDatagram: allocator.buffer(bytes: bytes), allocator: allocator) {
            guard case .error? = try? TFTPPacket.decode(Array(reply.readableBytesView)) else { return "port 69 answered with something other than ERROR" }
        }
        var input = FuzzInput(bytes)
        var sender = TFTPSendWindow(size: input.uint16() * 7, blockSize: max(8, input.uint16() % 2000), windowSize: max(1, Int(input.byte()) % 16))
        var receiver = TFTPReceiveWindow(blockSize: 512, windowSize: max(1, Int(input.byte()) % 8))
        let rest = input.rest()
        var index = 0
        while index + 2 < rest.count {
            let number = UInt16(rest[index]) << 8 | UInt16(rest[index + 1])
            if rest[index + 2] & 1 == 0 {
                _ = sender.window()
                _ = sender.acknowledge(number)
                guard sender.acknowledged <= sender.lastBlock, sender.sent <= sender.lastBlock else { return "the window went past the file" }
            } else {
                _ = receiver.data(number, count: Int(rest[index + 2]) * 4)
            }
            index += 3
        }
        return nil
    }
}
#endif
