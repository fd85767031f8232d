import NIOCore

/// Turns a stored message (LF or CRLF line ends) into POP3's multi-line form (RFC 1939 3):
/// CRLF line ends, a dot doubled at the start of a line; for TOP, the headers, the blank line
/// and only the first `bodyLines` lines of the body.
struct POP3MessageEncoder {
    private var atLineStart = true
    private var inHeaders = true
    private var pendingCR = false
    private var bodyLinesLeft: Int?
    private(set) var finished = false

    init(bodyLines: Int? = nil) {
        bodyLinesLeft = bodyLines
    }

    mutating func encode(_ input: ByteBuffer, into out: inout ByteBuffer) {
        out.reserveCapacity(minimumWritableBytes: input.readableBytes + input.readableBytes / 16 + 16)
        for byte in input.readableBytesView {
            if finished { return }
            if pendingCR {
                pendingCR = false
                if byte == 0x0A {
                    endLine(into: &out)
                    continue
                }
                emit(0x0D, into: &out)
            }
            switch byte {
            case 0x0D: pendingCR = true
            case 0x0A: endLine(into: &out)
            default: emit(byte, into: &out)
            }
        }
    }

    /// Ends the last line if the file did not, and writes the terminating dot line.
    mutating func finish(into out: inout ByteBuffer) {
        if pendingCR, !finished {
            pendingCR = false
            emit(0x0D, into: &out)
        }
        if !atLineStart { out.writeStaticString("\r\n") }
        out.writeStaticString(".\r\n")
        finished = true
    }

    private mutating func emit(_ byte: UInt8, into out: inout ByteBuffer) {
        if atLineStart {
            if !inHeaders, bodyLinesLeft == 0 {
                finished = true
                return
            }
            if byte == UInt8(ascii: ".") { out.writeInteger(UInt8(ascii: ".")) }
            atLineStart = false
        }
        out.writeInteger(byte)
    }

    private mutating func endLine(into out: inout ByteBuffer) {
        if atLineStart, !inHeaders, bodyLinesLeft == 0 {
            finished = true
            return
        }
        out.writeStaticString("\r\n")
        if inHeaders {
            if atLineStart { inHeaders = false }
        } else if let left = bodyLinesLeft {
            bodyLinesLeft = left - 1
        }
        atLineStart = true
    }
}
