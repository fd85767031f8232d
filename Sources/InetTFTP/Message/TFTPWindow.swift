/// The sender's side of a transfer (the server on a read, the client on a write): which blocks
/// go out, what an ACK means. Blocks are counted from 1 without bound; on the wire the number is
/// the low 16 bits (files over 65535 blocks roll over to 0, as tftp-hpa and most clients do).
///
/// Only a timeout resends (the Sorcerer's Apprentice bug of RFC 1350 is answering a duplicate ACK
/// with a duplicate DATA: a duplicate or stale ACK here changes nothing). An ACK for a block
/// inside the window (RFC 7440 §4) restarts the window after that block.
public struct TFTPSendWindow: Equatable, Sendable {
    public let blockSize: Int
    public let windowSize: Int
    public let size: Int
    /// The highest block acknowledged.
    public private(set) var acknowledged: Int64 = 0
    /// The highest block sent.
    public private(set) var sent: Int64 = 0

    public init(size: Int, blockSize: Int, windowSize: Int) {
        self.size = max(0, size)
        self.blockSize = max(1, blockSize)
        self.windowSize = max(1, windowSize)
    }

    /// The last block: shorter than a full one (empty when the size is a multiple of it).
    public var lastBlock: Int64 { Int64(size / blockSize) + 1 }
    public var finished: Bool { acknowledged == lastBlock }

    /// The byte range of a block.
    public func range(of block: Int64) -> (offset: Int, count: Int) {
        let offset = Int(block - 1) * blockSize
        return (offset, max(0, min(blockSize, size - offset)))
    }

    public static func wire(_ block: Int64) -> UInt16 { UInt16(truncatingIfNeeded: block) }

    /// The blocks to send now: the window after the last acknowledged one (also what a timeout resends).
    public mutating func window() -> ClosedRange<Int64>? {
        guard !finished else { return nil }
        let first = acknowledged + 1
        let last = min(acknowledged + Int64(windowSize), lastBlock)
        sent = max(sent, last)
        return first...last
    }

    public enum AckOutcome: Equatable, Sendable {
        /// Progress: send `window()` next (or stop when finished).
        case advanced
        /// A duplicate or stale ACK: nothing to do.
        case ignored
    }

    /// An ACK with the wire number `block`.
    public mutating func acknowledge(_ block: UInt16) -> AckOutcome {
        guard sent > acknowledged else { return .ignored }
        // The one block in (acknowledged, sent] with that wire number (a window is < 65536 blocks).
        var candidate = sent
        while candidate > acknowledged {
            if Self.wire(candidate) == block {
                acknowledged = candidate
                return .advanced
            }
            candidate -= 1
        }
        return .ignored
    }
}

/// The receiver's side (the server on a write, the client on a read): which DATA to keep and
/// when to acknowledge.
public struct TFTPReceiveWindow: Equatable, Sendable {
    public let blockSize: Int
    public let windowSize: Int
    /// Blocks received in order.
    public private(set) var received: Int64 = 0
    public private(set) var finished = false
    private var sinceAck = 0

    public init(blockSize: Int, windowSize: Int) {
        self.blockSize = max(1, blockSize)
        self.windowSize = max(1, windowSize)
    }

    public enum DataOutcome: Equatable, Sendable {
        /// The next block: keep it; `ack` when an ACK is due (end of a window, or the last block).
        case accept(block: Int64, ack: Bool)
        /// Out of order or a duplicate: acknowledge what was received in order (so the sender
        /// goes on from there), keep nothing.
        case reacknowledge
    }

    public mutating func data(_ block: UInt16, count: Int) -> DataOutcome {
        guard !finished, block == TFTPSendWindow.wire(received + 1), count <= blockSize else { return .reacknowledge }
        received += 1
        sinceAck += 1
        if count < blockSize { finished = true }
        let due = finished || sinceAck >= windowSize
        if due { sinceAck = 0 }
        return .accept(block: received, ack: due)
    }

    /// The wire number to acknowledge.
    public var ackNumber: UInt16 { TFTPSendWindow.wire(received) }
}

/// netascii (RFC 764 as RFC 1350 uses it): lines end in CR LF, a bare CR is CR NUL.
public enum NetASCII {
    public static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 16)
        for byte in bytes {
            switch byte {
            case 0x0a: out += [0x0d, 0x0a]
            case 0x0d: out += [0x0d, 0x00]
            default: out.append(byte)
            }
        }
        return out
    }

    /// The local form: CR LF is LF, CR NUL is CR (a lone CR at the end is kept).
    public static func decode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0d, index + 1 < bytes.count {
                let next = bytes[index + 1]
                if next == 0x0a { out.append(0x0a); index += 2; continue }
                if next == 0x00 { out.append(0x0d); index += 2; continue }
            }
            out.append(byte)
            index += 1
        }
        return out
    }
}
