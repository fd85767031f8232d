import InetCore
import NIOCore

/// The conversation of each simple service over one TCP connection.
enum TCPExchange {
    struct Outcome: Sendable {
        var detail: String
        var sent: Int
        var received: Int
    }

    /// The most a one-shot answer (daytime, qotd, time) may be before it is a wrong reply.
    static let maximumAnswer = 4_096

    static func run(
        _ request: SimpleRequest,
        inbound: NIOAsyncChannelInboundStream<ByteBuffer>,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        allocator: ByteBufferAllocator
    ) async throws -> Outcome {
        switch request.kind {
        case .echo:
            let total = request.payload.count
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await write(request.payload, to: outbound, allocator: allocator)
                }
                var verifier = EchoVerifier(payload: request.payload)
                for try await buffer in inbound {
                    try verifier.check(buffer)
                    if verifier.received >= total { break }
                }
                try await group.waitForAll()
                guard verifier.received == total else {
                    throw SimpleClientError(description: "wrong reply: connection closed after \(verifier.received) of \(total) bytes echoed")
                }
                return Outcome(detail: "\(total) bytes echoed", sent: total, received: total)
            }
        case .discard:
            try await write(request.payload, to: outbound, allocator: allocator)
            outbound.finish()
            var received = 0
            for try await buffer in inbound { received += buffer.readableBytes }
            guard received == 0 else { throw SimpleClientError(description: "wrong reply: discard sent \(received) bytes back") }
            return Outcome(detail: "sent \(request.payload.count) bytes", sent: request.payload.count, received: 0)
        case .chargen:
            var checker = ChargenChecker()
            for try await buffer in inbound {
                try checker.check(buffer, upTo: request.chargenBytes)
                if checker.received >= request.chargenBytes { break }
            }
            guard checker.received >= request.chargenBytes else {
                throw SimpleClientError(description: "wrong reply: stream ended after \(checker.received) bytes")
            }
            return Outcome(detail: "\(checker.received) bytes, \(checker.lines) lines, pattern ok", sent: 0, received: checker.received)
        case .daytime, .qotd, .time:
            var answer = allocator.buffer(capacity: 64)
            for try await var buffer in inbound {
                answer.writeBuffer(&buffer)
                guard answer.readableBytes <= maximumAnswer else {
                    throw SimpleClientError(description: "wrong reply: answer longer than \(maximumAnswer) bytes")
                }
            }
            let detail = try ReplyCheck.answer(request.kind, answer)
            return Outcome(detail: detail, sent: 0, received: answer.readableBytes)
        }
    }

    /// Writes the payload in chunks of at most 64 KiB, waiting on backpressure.
    static func write(_ payload: SimpleRequest.Payload, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, allocator: ByteBufferAllocator) async throws {
        switch payload {
        case .message(let text):
            if !text.isEmpty { try await outbound.write(allocator.buffer(string: text)) }
        case .pattern(let count):
            let chunk = allocator.buffer(bytes: PatternStream.chunk)
            var offset = 0
            while offset < count {
                // Each chunk starts at a multiple of the pattern's length, so it is the same buffer.
                let size = min(PatternStream.chunk.count, count - offset)
                try await outbound.write(chunk.getSlice(at: chunk.readerIndex, length: size)!)
                offset += size
            }
        }
    }
}

/// The bytes echo and discard send for `--bytes N`: the chargen cycle, repeated.
enum PatternStream {
    static let cycle = ChargenService.pattern
    /// Nine cycles (63,270 bytes): the unit written at once.
    static let chunk: [UInt8] = Array(repeating: cycle, count: 9).flatMap { $0 }

    static func bytes(from offset: Int, count: Int) -> [UInt8] {
        (0..<count).map { cycle[(offset + $0) % cycle.count] }
    }
}

/// Checks, as it arrives, that the echo is exactly what was sent.
struct EchoVerifier {
    let payload: SimpleRequest.Payload
    private(set) var received = 0
    private let message: [UInt8]

    init(payload: SimpleRequest.Payload) {
        self.payload = payload
        if case .message(let text) = payload { message = Array(text.utf8) } else { message = [] }
    }

    mutating func check(_ buffer: ByteBuffer) throws {
        let total = payload.count
        let ok: Bool = buffer.withUnsafeReadableBytes { bytes in
            guard received + bytes.count <= total else { return false }
            switch payload {
            case .message:
                return bytes.elementsEqual(message[received..<(received + bytes.count)])
            case .pattern:
                let cycle = PatternStream.cycle
                var position = received % cycle.count
                for byte in bytes {
                    if byte != cycle[position] { return false }
                    position += 1
                    if position == cycle.count { position = 0 }
                }
                return true
            }
        }
        guard ok else {
            throw SimpleClientError(description: "wrong reply: echoed bytes differ from those sent (after \(received) bytes)")
        }
        received += buffer.readableBytes
    }
}

/// Checks a chargen stream: 72 printable characters and CRLF per line, each line starting
/// one character further along than the one before (RFC 864).
struct ChargenChecker {
    private(set) var received = 0
    private(set) var lines = 0
    private var column = 0
    private var lineStart: UInt8?
    private var previousStart: UInt8?

    mutating func check(_ buffer: ByteBuffer, upTo limit: Int) throws {
        let view = buffer.readableBytesView
        for byte in view.prefix(max(0, limit - received)) {
            try take(byte)
            received += 1
        }
    }

    private mutating func take(_ byte: UInt8) throws {
        let width = ChargenService.lineLength
        switch column {
        case 0..<width:
            guard (32...126).contains(byte) else { throw fail("character \(byte) is not printable") }
            if column == 0 {
                if let previousStart, byte != (previousStart == 126 ? 32 : previousStart + 1) {
                    throw fail("line does not rotate the pattern")
                }
                lineStart = byte
            }
        case width:
            guard byte == 13 else { throw fail("line is not 72 characters followed by CRLF") }
        default:
            guard byte == 10 else { throw fail("line is not 72 characters followed by CRLF") }
            previousStart = lineStart
            lines += 1
            column = 0
            return
        }
        column += 1
    }

    private func fail(_ why: String) -> SimpleClientError {
        SimpleClientError(description: "wrong reply: \(why) (at byte \(received))")
    }
}
